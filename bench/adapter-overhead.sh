#!/usr/bin/env bash
# Usage: bench/adapter-overhead.sh [RUNS] [N]   (defaults 3 and 1000)
#
# What `opsdeploy plan` adds to terraform's own work on the N-resource project
# from bench/gen-plans.sh (issues 3 and 19), with all six built-in policies
# configured (protected-deletes and no-secrets read the plan). Release build.
# Per run, alternating so load on the shared machine hits every side:
#   1. terraform `plan -out` + `show -json` alone;
#   2. `opsdeploy plan staging` end to end (it runs terraform init, plan, show
#      and version, then reads the plan, builds the input document and the
#      bundle, and evaluates the policies, in parallel);
#   3. the same with terraform replayed by a stub printing the saved plan and
#      its JSON: the adapter path alone, measured directly rather than as the
#      difference of two figures that vary by more than 5% here.
# Medians are printed.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
n="${2:-1000}"

generated="$(dirname "$(bench/gen-plans.sh "$n")")"
cargo build --locked --quiet --release --bin opsdeploy
opsdeploy="$PWD/target/release/opsdeploy"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export OPSDEPLOY_CACHE_DIR="$work/cache" OPSDEPLOY_USER="bench@example.com"

# The generated terraform root module, in a project of its own that
# configures every built-in policy.
project="$work/project"
mkdir -p "$project"
# A copy, not a symlink: opsdeploy refuses files that resolve outside the project.
cp -r "$generated/infra" "$project/infra"
cat > "$project/opsdeploy.hcl" <<'HCL'
project = "bench"

policy "protected-deletes" {
  builtin     = true
  enforcement = "hard-mandatory"
  settings    = { types = ["terraform_data"] }
}
policy "no-secrets" { builtin = true }
policy "expand-contract" { builtin = true }
policy "gates" { builtin = true }
policy "image-scan" { builtin = true }
policy "promotion" { builtin = true }

environment "staging" {
  terraform { dir = "infra" }
  approval { self_approve = true }
}
HCL

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
  # 0: allowed; 3: blocked by a policy. Both are a full plan. `-vv` logs
  # each terraform command's own time (`finished ... millis=N`).
  "$opsdeploy" -vv -C "$project" plan staging --format json 2> "$work/od.log" || [[ $? == 3 ]]
}
# Seconds the terraform commands of the last `od_plan` took, by its own log.
terraform_in_od() {
  sed -n 's/.*finished command=terraform .* millis=\([0-9]*\).*/\1/p' "$work/od.log" \
    | awk '{ s += $1 } END { printf "%.3f\n", s / 1000 }'
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# Terraform replayed: the saved plan for `plan -out=FILE`, its JSON for `show`,
# nothing for `init`.
mkdir -p "$work/replay"
cat > "$work/replay/terraform" <<STUB
#!/bin/sh
case "\$1" in
  plan) for a; do case "\$a" in -out=*) cp "$work/tfplan" "\${a#-out=}" ;; esac; done ;;
  show) cat "$generated/plan.json" ;;
  version) echo '{"terraform_version":"replayed"}' ;;
esac
STUB
chmod +x "$work/replay/terraform"
od_replayed() { PATH="$work/replay:$PATH" od_plan; }

# Warm-up, not counted: page cache, the policy module cache, a saved plan.
timed tf_plan_show > /dev/null
timed od_plan > /dev/null
for _ in $(seq "$runs"); do
  timed tf_plan_show >> "$work/tf"
  t="$(timed od_plan)"
  echo "$t" >> "$work/od"
  # opsdeploy's own time in the same run: the whole minus its terraform commands.
  echo "$t - $(terraform_in_od)" | bc -l >> "$work/own"
  terraform_in_od >> "$work/tf_in_od"
  timed od_replayed >> "$work/adapter"
done

tf_m="$(median < "$work/tf")"
od_m="$(median < "$work/od")"
ad_m="$(median < "$work/adapter")"
own_m="$(median < "$work/own")"
tfod_m="$(median < "$work/tf_in_od")"
echo "runs: $runs ($n resources, $(du -h "$generated/plan.json" | cut -f1) of plan JSON)"
echo "terraform plan -out + show -json:            $(paste -sd' ' "$work/tf") s -> median $tf_m s"
echo "opsdeploy plan staging:                      $(paste -sd' ' "$work/od") s -> median $od_m s"
echo "opsdeploy plan staging, terraform replayed:  $(paste -sd' ' "$work/adapter") s -> median $ad_m s"
echo "  its terraform commands, by its -vv log:    $(paste -sd' ' "$work/tf_in_od") s -> median $tfod_m s"
echo "  the rest, opsdeploy's own time:            $(paste -sd' ' "$work/own") s -> median $own_m s"
awk -v tf="$tf_m" -v od="$od_m" -v ad="$ad_m" -v own="$own_m" -v tfod="$tfod_m" 'BEGIN {
  printf "adapter path: %.2f s = %.1f%% of terraform plan+show (target < 5%%)\n", ad, ad / tf * 100
  printf "end to end, the time opsdeploy adds in the same runs: %.2f s = %.1f%% of its terraform commands\n", own, own / tfod * 100
  printf "end to end (difference of medians, includes terraform init + version): %+.1f%%\n", (od - tf) / tf * 100
}'
