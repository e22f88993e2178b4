#!/usr/bin/env bash
# Usage: bench/replay.sh [RUNS]   (default 5)
#
# Policy replay throughput (issue 18), release build. Two stores, each made
# once under target/bench-data/replay from one real plan:
#   quickstart  the quickstart project's staging plan, cloned to 1,000 bundles;
#   tf-1000     bench/gen-plans.sh's 1,000-resource plan, cloned to 100.
# For each, bench/engine/benches/replay.rs times (RUNS times, alternating)
# evaluating every stored input document as `policy eval` does, on one thread
# and on every core, and `opsdeploy::workflow::replay::replay`; then the
# release CLI, `opsdeploy policy replay ... --format json`, is timed RUNS
# times as a whole process. Medians are printed; state the machine's load.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"

cargo build --release --locked --quiet --bin opsdeploy
cargo bench --locked --profile release -p opsdeploy-bench --bench replay --no-run
opsdeploy="$PWD/target/release/opsdeploy"
work="$PWD/target/bench-data/replay"
mkdir -p "$work"
export OPSDEPLOY_CACHE_DIR="$work/cache" OPSDEPLOY_USER="bench@example.com"
settings='{"types":["terraform_data"]}'

if [[ ! -d "$work/quickstart/.opsdeploy/bundles" ]]; then
  rm -rf "$work/quickstart"
  "$opsdeploy" init "$work/quickstart" --template quickstart > /dev/null
  "$opsdeploy" -C "$work/quickstart" plan staging -q
fi
if [[ ! -d "$work/tf-1000/.opsdeploy/bundles" ]]; then
  big="$(dirname "$(bench/gen-plans.sh 1000)")"
  rm -rf "$work/tf-1000"
  mkdir -p "$work/tf-1000"
  cp -r "$big/opsdeploy.hcl" "$big/infra" "$work/tf-1000/"
  # Exit 3 (blocked: the project has no PROJECT_STATE.md for gates) still
  # stores the bundle, and replay reads every stored bundle.
  "$opsdeploy" -C "$work/tf-1000" plan staging -q || [[ $? == 3 ]]
fi

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
now() { date +%s.%N; }
for store in "quickstart 1000" "tf-1000 100"; do
  read -r name n <<< "$store"
  echo "== $name, $n bundles (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  cargo bench --locked --profile release -p opsdeploy-bench --bench replay -- "$work/$name" "$n" "$runs"
  cli="$(for _ in $(seq "$runs"); do
    t0="$(now)"
    "$opsdeploy" -C "$work/$name" policy replay "builtin:protected-deletes" --settings "$settings" --format json > /dev/null
    echo "$(now) - $t0" | bc -l
  done | median)"
  echo "opsdeploy policy replay (release CLI, whole process), median of $runs: $cli s"
  echo "   (load average after: $(cut -d' ' -f1-3 /proc/loadavg))"
done
