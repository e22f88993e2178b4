#!/usr/bin/env bash
# Installs what opsdeploy's build and tests need on a fresh machine; safe to re-run.
set -euo pipefail

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "error: $1 not found on PATH; $2" >&2; exit 1; }
}

need cargo "install Rust with rustup (https://rustup.rs)"
need rustup "install Rust with rustup (https://rustup.rs)"
need terraform "install terraform 1.x (the tests plan and apply terraform_data resources offline)"

# Policies compile to wasm32-unknown-unknown; the built-in ones are embedded at build time.
rustup target add wasm32-unknown-unknown >/dev/null
rustup component add clippy rustfmt >/dev/null 2>&1 || true
