#!/usr/bin/env bash
# Runs every test opsdeploy has, after installing what they need. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
# trivy installed by setup.sh comes first.
export PATH="$PWD/.tools/bin:$PATH"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
# The built-in policies' fixtures, through the real CLI.
cargo run --quiet --locked -- policy test policies/
