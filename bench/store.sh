#!/usr/bin/env bash
# Store benchmark (benches/store.rs) against a throwaway PostgreSQL; not in CI.
# Prints a Markdown table for BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."

pg="$(mktemp -d)"
trap 'scripts/pg.sh destroy "$pg/server"; rm -rf "$pg"' EXIT
eval "$(scripts/pg.sh start "$pg/server")"
# The dev profile (dependencies at opt-level 2, as the tests build them): the
# figures are fsync and round-trip bound, and it needs no second full build.
cargo bench --locked --profile dev --bench store
