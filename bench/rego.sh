#!/usr/bin/env bash
# The Rego benchmark of BENCHMARKS.md: bench/rego/service_limits.rego on the
# 1,000-resource plan, sandboxed vs regorus natively vs the same policy in Rust
# (bench/engine/benches/rego.rs). Release build (`--profile release`, the artifacts the other bench scripts use). Not in CI.
# OPSDEPLOY_BENCH_ROUNDS sets the rounds (default 15).
set -euo pipefail
cd "$(dirname "$0")/.."
plan="$(bench/gen-plans.sh 1000)"
OPSDEPLOY_BENCH_PLAN="$plan" cargo bench --locked --profile release -p opsdeploy-bench --bench rego
