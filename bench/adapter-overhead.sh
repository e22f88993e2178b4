#!/usr/bin/env bash
# Usage: bench/adapter-overhead.sh [RUNS]   (default 3)
#
# What `opsdeploy plan` adds to terraform's own work on the 1,000-resource
# project from bench/gen-plans.sh (issue 3): terraform `plan -out` + `show
# -json` alone against `opsdeploy plan staging` (which runs terraform init,
# plan, show and version, then reads the plan, builds the input document and
# the bundle, and evaluates protected-deletes). Runs alternate so drift on the
# shared machine hits both; medians are printed, with the terraform commands
# opsdeploy runs besides plan+show (init, version) timed too, so the adapter's
# own share can be told apart from them.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"

project="$(dirname "$(bench/gen-plans.sh 1000)")"
# The profile the tests and the other benches use (dependencies optimised,
# this crate's own code not): no second full build.
cargo build --locked --quiet --bin opsdeploy
opsdeploy="$PWD/target/debug/opsdeploy"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export OPSDEPLOY_CACHE_DIR="$work/cache" OPSDEPLOY_USER="bench@example.com"

now() { date +%s.%N; }
# Seconds COMMAND... takes; its output is discarded, a failure stops the script.
timed() {
  local t0
  t0="$(now)"
  "$@" > /dev/null 2>> "$work/stderr" || { echo "error: $* failed:" >&2; tail -20 "$work/stderr" >&2; exit 1; }
  echo "$(now) - $t0" | bc -l
}
tf() { terraform -chdir="$project/infra" "$@"; }
tf_plan_show() { tf plan -input=false -no-color -out="$work/tfplan" && tf show -json -no-color "$work/tfplan"; }
od_plan() {
  # 0: allowed; 3: blocked by a policy. Both are a full plan.
  "$opsdeploy" -C "$project" plan staging --format json || [[ $? == 3 ]]
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# Warm-up, not counted: page cache, the policy module cache.
timed od_plan > /dev/null
for _ in $(seq "$runs"); do
  timed tf_plan_show >> "$work/tf"
  timed od_plan >> "$work/od"
  timed tf init -input=false -no-color >> "$work/init"
  timed tf version -json >> "$work/version"
done

tf_m="$(median < "$work/tf")"
od_m="$(median < "$work/od")"
init_m="$(median < "$work/init")"
version_m="$(median < "$work/version")"
echo "runs: $runs (1,000 resources, $(du -h "$project/plan.json" | cut -f1) of plan JSON)"
echo "terraform plan -out + show -json: $(paste -sd' ' "$work/tf") s -> median $tf_m s"
echo "opsdeploy plan staging:           $(paste -sd' ' "$work/od") s -> median $od_m s"
echo "terraform init (run by opsdeploy plan): median $init_m s; terraform version -json: median $version_m s"
awk -v tf="$tf_m" -v od="$od_m" -v init="$init_m" -v ver="$version_m" 'BEGIN {
  printf "opsdeploy plan adds %.1f%% to terraform plan+show (target < 5%%)\n", (od - tf) / tf * 100
  own = od - tf - init - ver
  printf "of which terraform init + version: %.2f s; the adapter path itself: %.2f s = %.1f%%\n", init + ver, own, own / tf * 100
}'
