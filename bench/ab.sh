#!/usr/bin/env bash
# Usage: bench/ab.sh OLD_OPSDEPLOY NEW_OPSDEPLOY [RUNS] [RUNS_10K]   (defaults 5 and 3)
#
# Two release builds of opsdeploy side by side on the plans of bench/compare.sh:
# protected-deletes and no-secrets at 1k and 10k, runs alternating between the
# builds, each a fresh process measured by bench/native's `measure` (wall, CPU,
# peak RSS). Prints the medians, the new/old ratio and each build's fuel — the
# guest's instruction count, which does not move with the machine's load: equal
# fuel means a time difference is the host or the machine, not the policy.
set -euo pipefail
old="$(realpath "${1:?old opsdeploy binary}")"
new="$(realpath "${2:?new opsdeploy binary}")"
runs="${3:-5}"
runs_10k="${4:-3}"
cd "$(dirname "$0")/.."

CARGO_TARGET_DIR="$PWD/target/bench-native" \
  cargo build --locked --quiet --release --manifest-path bench/native/Cargo.toml
measure="$PWD/target/bench-native/release/measure"
export OPSDEPLOY_CACHE_DIR="${OPSDEPLOY_CACHE_DIR:-$PWD/target/bench-ab-cache}"

median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

compare() { # RUNS SIZE RULE [SETTINGS]
  local n=$1 size=$2 rule=$3 plan
  plan="$(bench/gen-plans.sh "$size")"
  local args=(policy eval "builtin:$rule" --terraform-plan "$plan")
  [[ -n "${4:-}" ]] && args+=(--settings "$4")
  local side bin fuel_old fuel_new
  # Compile and cache both modules first; the fuel line is the same each run.
  fuel_old="$("$old" "${args[@]}" 2>&1 | grep -oE 'fuel [0-9,]+' || true)"
  fuel_new="$("$new" "${args[@]}" 2>&1 | grep -oE 'fuel [0-9,]+' || true)"
  local log; log="$(mktemp)"
  for _ in $(seq "$n"); do
    for side in old new; do
      bin=$old; [[ $side == new ]] && bin=$new
      echo "$side $("$measure" "$bin" "${args[@]}")" >> "$log"
    done
  done
  local col what o w
  for col in 2 5 3; do
    case $col in 2) what="wall s";; 5) what="cpu s";; 3) what="peak KiB";; esac
    o="$(awk -v c="$col" '$1=="old"{print $c}' "$log" | median)"
    w="$(awk -v c="$col" '$1=="new"{print $c}' "$log" | median)"
    printf '%-18s %-6s %-9s old %-10s new %-10s new/old %.3f\n' \
      "$rule" "$size" "$what" "$o" "$w" "$(awk -v a="$w" -v b="$o" 'BEGIN{print a/b}')"
  done
  printf '%-18s %-6s fuel      old %s   new %s\n' "$rule" "$size" "${fuel_old#fuel }" "${fuel_new#fuel }"
  rm -f "$log"
}

echo "# $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg); medians of $runs (1k) and $runs_10k (10k)"
compare "$runs" 1000 protected-deletes '{"addresses":["*"]}'
compare "$runs" 1000 no-secrets
compare "$runs_10k" 10000 protected-deletes '{"addresses":["*"]}'
compare "$runs_10k" 10000 no-secrets
