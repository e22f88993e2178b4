#!/usr/bin/env bash
# Usage: bench/compare.sh [RUNS] [RUNS_10K]   (defaults 5 and 3)
#
# Whole-process comparison of `opsdeploy policy eval` with the same rule done
# by a native Rust program, by regorus and by OPA (issue 19), on the real
# 1,000- and 10,000-resource terraform plans of bench/gen-plans.sh. Release
# builds; every side is a fresh process measured the same way (wall time and
# peak RSS from wait4, bench/native/src/bin/measure.rs), its output
# discarded; runs alternate between the sides so load on the shared machine
# hits all of them. Prints medians and the ratios from this run.
#
#   opsdeploy  policy eval builtin:RULE --terraform-plan P [--settings ...]
#              (module cache warm: the cached load is part of the process)
#   native     bench/native/src/bin/floor.rs: serde_json::Value of the plan
#              (mimalloc) and the policy's own rule functions, natively
#   regorus    bench/native/src/bin/rego.rs with bench/rego/RULE.rego
#   opa        bench/native/src/bin/opa.rs: OPA's Go engine through the C ABI
#              of libopabridge.so from the PyPI wheel opa-golib-python-bindings
#              (skipped, and said so, when the wheel cannot be fetched)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"
runs_10k="${2:-3}"

plan_1k="$(bench/gen-plans.sh 1000)"
plan_10k="$(bench/gen-plans.sh 10000)"

cargo build --locked --quiet --release --bin opsdeploy
CARGO_TARGET_DIR="$PWD/target/bench-native" \
  cargo build --locked --quiet --release --manifest-path bench/native/Cargo.toml
native="$PWD/target/bench-native/release"
opsdeploy="$PWD/target/release/opsdeploy"

# OPA: the Go c-shared library inside the wheel (the wheel is a zip).
opa_dir="$PWD/target/bench-tools/opa"
opa_lib="$opa_dir/opa_bindings/libopabridge.so"
if [[ ! -s "$opa_lib" ]]; then
  mkdir -p "$opa_dir"
  if python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.14 \
      --dest "$opa_dir" opa-golib-python-bindings==0.4.4 2>> "$opa_dir/pip.log"; then
    python3 -m zipfile -e "$opa_dir"/opa_golib_python_bindings-*.whl "$opa_dir"
  fi
fi
[[ -s "$opa_lib" ]] || { echo "note: OPA unavailable (see $opa_dir/pip.log); its column is empty" >&2; opa_lib=""; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export OPSDEPLOY_CACHE_DIR="$work/cache"

settings_for() { [[ "$1" == protected-deletes ]] && echo '{"addresses":["*"]}' || echo '{}'; }
rego_name() { echo "${1//-/_}"; }

# The command of SIDE for RULE on PLAN.
cmd() {
  local side="$1" rule="$2" plan="$3" r
  r="$(rego_name "$rule")"
  case "$side" in
    opsdeploy) echo "$opsdeploy" policy eval "builtin:$rule" --terraform-plan "$plan" --settings "$(settings_for "$rule")" --format json ;;
    native) echo "$native/floor" "$rule" "$plan" ;;
    regorus) echo "$native/rego" "bench/rego/$r.rego" "data.$r.violations" "$plan" ;;
    opa) echo "$native/opa" "$opa_lib" "bench/rego/$r.rego" "data.$r.violations" "$plan" ;;
  esac
}
sides=(opsdeploy native regorus)
[[ -n "$opa_lib" ]] && sides+=(opa)

violations() {
  # opsdeploy prints an evaluation; the others {"violations": N}.
  python3 -c 'import json,sys; v=json.load(sys.stdin)["violations"]; print(len(v) if isinstance(v, list) else v)'
}

# Warm-up, not counted: the module cache, the page cache; and the answers,
# which must agree (a rule the Rego subset reads differently is printed).
for rule in protected-deletes no-secrets; do
  for plan in "$plan_1k" "$plan_10k"; do
    for side in "${sides[@]}"; do
      # Word splitting of $(cmd) is intended; the settings hold no spaces.
      # shellcheck disable=SC2046
      n="$(set +e; $(cmd "$side" "$rule" "$plan") 2>/dev/null | violations)"
      echo "answer: $rule $(basename "$(dirname "$plan")") $side: $n violations" >&2
    done
  done
done

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "load before: $(uptime)"
for plan in "$plan_1k" "$plan_10k"; do
  size="$(basename "$(dirname "$plan")")"
  n="$runs"
  [[ "$size" == tf-10000 ]] && n="$runs_10k"
  for rule in protected-deletes no-secrets; do
    for _ in $(seq "$n"); do
      for side in "${sides[@]}"; do
        # shellcheck disable=SC2046
        read -r wall rss code cpu < <("$native/measure" $(cmd "$side" "$rule" "$plan"))
        [[ "$code" == 0 || ( "$side" == opsdeploy && "$code" == 3 ) ]] \
          || { echo "error: $side $rule $size exited $code" >&2; exit 1; }
        echo "$wall" >> "$work/$size.$rule.$side.time"
        echo "$cpu" >> "$work/$size.$rule.$side.cpu"
        echo "$rss" >> "$work/$size.$rule.$side.rss"
      done
    done
  done
done
echo "load after: $(uptime)"

bytes_1k="$(stat -c %s "$plan_1k")"
bytes_10k="$(stat -c %s "$plan_10k")"
echo
echo "| rule | plan | side | wall, runs (s) | wall median | CPU median (user+sys) | peak RSS (median) | RSS / plan JSON | opsdeploy / side, wall | opsdeploy / side, CPU |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for size in tf-1000 tf-10000; do
  bytes="$bytes_1k"
  [[ "$size" == tf-10000 ]] && bytes="$bytes_10k"
  for rule in protected-deletes no-secrets; do
    od="$(median < "$work/$size.$rule.opsdeploy.time")"
    odc="$(median < "$work/$size.$rule.opsdeploy.cpu")"
    for side in "${sides[@]}"; do
      t="$(median < "$work/$size.$rule.$side.time")"
      c="$(median < "$work/$size.$rule.$side.cpu")"
      rss="$(median < "$work/$size.$rule.$side.rss")"
      runs_list="$(paste -sd' ' "$work/$size.$rule.$side.time")"
      awk -v rule="$rule" -v size="$size" -v side="$side" -v runs="$runs_list" -v t="$t" -v od="$od" \
          -v c="$c" -v odc="$odc" -v rss="$rss" -v bytes="$bytes" 'BEGIN {
        rel = (side == "opsdeploy") ? "-" : sprintf("%.2fx", od / t)
        relc = (side == "opsdeploy") ? "-" : sprintf("%.2fx", odc / c)
        printf "| %s | %s | %s | %s | %.3f s | %.3f s | %.0f MiB | %.2fx | %s | %s |\n", rule, size, side, runs, t, c, rss / 1024, rss * 1024 / bytes, rel, relc
      }'
    done
  done
done
