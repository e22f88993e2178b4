#!/usr/bin/env bash
# Runs every test opsdeploy has, after installing what they need. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
# The third-party corpus the tests read is kept outside the repository:
# OPSDEPLOY_CORPUS, else ../shared/corpus (scripts/fetch-corpus.sh downloads it).
export OPSDEPLOY_CORPUS="${OPSDEPLOY_CORPUS:-$(cd .. && pwd)/shared/corpus}"
scripts/fetch-corpus.sh --verify "$OPSDEPLOY_CORPUS"
# trivy installed by setup.sh comes first.
export PATH="$PWD/.tools/bin:$PATH"
# A throwaway PostgreSQL for the team-mode tests, stopped and removed on exit;
# with OPSDEPLOY_REQUIRE_PG a test that finds no server fails instead of skipping.
pg="$(mktemp -d)"
trap 'scripts/pg.sh destroy "$pg/server"; rm -rf "$pg"' EXIT
eval "$(scripts/pg.sh start "$pg/server")"
export OPSDEPLOY_REQUIRE_PG=1
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
# The built-in policies' fixtures, through the real CLI: the binary the tests
# above ran (`cargo run` would rebuild dependencies with the binary's narrower
# feature set, minutes on a clean runner).
"${CARGO_TARGET_DIR:-target}/debug/opsdeploy" policy test policies/
