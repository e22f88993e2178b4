#!/usr/bin/env bash
# Policy engine and plan parse benchmarks (bench/engine/benches/policy_engine.rs; issues 2
# and 3) on real 1,000- and 10,000-resource terraform plans. Not in CI.
#
# Generates the plans (cached under target/bench-data), runs the criterion
# bench, which ends with the medians of this run (criterion's
# target/criterion/*/new/estimates.json) and the ratios against their targets.
# Extra arguments go to criterion, e.g. a filter: bench/policy-engine.sh plan_parse
set -euo pipefail
cd "$(dirname "$0")/.."

bench/gen-plans.sh 1000 > /dev/null
bench/gen-plans.sh 10000 > /dev/null
# The dev profile, as the tests build it: dependencies (wasmtime, serde_json)
# and the bench package at opt-level 2, opsdeploy's own code unoptimised;
# policy modules are always release builds. CI keeps one build profile, a
# release build of wasmtime takes minutes here.
cargo bench --locked --profile dev -p opsdeploy-bench --bench policy_engine -- "$@"
