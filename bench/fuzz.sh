#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time; not in CI.
#
#   bench/fuzz.sh [SECONDS] [TARGET...]    SECONDS per target, default 60
#
# Corpora are kept in fuzz/corpus/<target> (gitignored) and grow from run to
# run; an empty one is seeded from the test corpus ($OPSDEPLOY_CORPUS, else
# ../shared/corpus; scripts/fetch-corpus.sh downloads it) (plan JSON, trivy reports, by
# the manifest's category) or fuzz/seeds/<target>. Crashing inputs land in
# fuzz/artifacts/<target>; reproduce one with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run -s none --features opsdeploy TARGET FILE
# (run in fuzz/). Prints, per target: runs, corpus files, seconds, crashes.
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`). On a stable
# toolchain RUSTC_BOOTSTRAP=1 lets it pass its -Z flags. No sanitizer by
# default (FUZZ_SANITIZER=address to use ASan): the targets are safe Rust,
# where panics, not memory errors, are what there is to find, and ASan would
# double the instrumented build of wasmtime the opsdeploy targets link.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

seconds="${1:-60}"
shift || true
all=(plan_sdk trivy_sdk policy_output plan_json trivy_report config_hcl audit_log)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed: cargo install cargo-fuzz --locked" >&2
    exit 2
fi
rustc --version | grep -q nightly || export RUSTC_BOOTSTRAP=1
# The machine is shared; one compile job at a time unless told otherwise.
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}"
# Only the targets that link opsdeploy build it (and wasmtime).
fuzz_args() {
    case "$1" in
        plan_sdk | trivy_sdk | policy_output) echo -s "${FUZZ_SANITIZER:-none}" ;;
        *) echo -s "${FUZZ_SANITIZER:-none}" --features opsdeploy ;;
    esac
}

# Seed files from the test corpus by manifest category. Files over 64 KiB are
# left out: libFuzzer sizes inputs up to the largest seed, and megabyte inputs
# cut executions per second a hundredfold without reaching new code.
corpus="${OPSDEPLOY_CORPUS:-$root/../shared/corpus}"
seed_from_manifest() {
    python3 - "$1" "$2" "$corpus" <<'EOF'
import json, shutil, sys, os
category, dest, corpus = sys.argv[1], sys.argv[2], sys.argv[3]
for e in json.load(open(os.path.join(corpus, "manifest.json"))):
    if e["category"] == category and e["size"] <= 64 * 1024:
        src = os.path.join(corpus, e["file"])
        shutil.copy(src, os.path.join(dest, e["file"].replace("/", "__")))
EOF
}

seed() {
    local target="$1" dir="fuzz/corpus/$1"
    mkdir -p "$dir"
    [ -z "$(ls -A "$dir")" ] || return 0
    case "$target" in
        plan_sdk | plan_json) seed_from_manifest "Terraform plan JSON" "$dir" ;;
        trivy_sdk | trivy_report) seed_from_manifest "Trivy reports" "$dir" ;;
        *) cp "fuzz/seeds/$target/"* "$dir/" ;;
    esac
}

build_start=$(date +%s)
for t in "${targets[@]}"; do
    echo "building $t: cargo fuzz build $(fuzz_args "$t") $t" >&2
    # shellcheck disable=SC2046 # the arguments are words by design
    (cd fuzz && cargo fuzz build $(fuzz_args "$t") "$t") >&2
done
echo "built in $(($(date +%s) - build_start)) s" >&2

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
results=()
status=0
for t in "${targets[@]}"; do
    seed "$t"
    mkdir -p "fuzz/artifacts/$t"
    before=$(find "fuzz/artifacts/$t" -type f | wc -l)
    start=$(date +%s.%N)
    # -timeout: an input that takes 25 s is a hang worth an artifact. The JSON
    # dictionary helps every target: HCL and audit lines share its tokens.
    # shellcheck disable=SC2046
    (cd fuzz && cargo fuzz run $(fuzz_args "$t") "$t" "corpus/$t" -- \
        -max_total_time="$seconds" -timeout=25 -dict="$root/fuzz/dict/json.dict" \
        -print_final_stats=1) >"$logs/$t.log" 2>&1 || status=1
    end=$(date +%s.%N)
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$logs/$t.log" | grep -o '[0-9]*$' || true)
    files=$(find "fuzz/corpus/$t" -type f | wc -l)
    crashes=$(($(find "fuzz/artifacts/$t" -type f | wc -l) - before))
    secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.0f", b - a }')
    results+=("$(printf '%-14s %10s %8s %6s %7s' "$t" "${runs:-?}" "$files" "$secs" "$crashes")")
    if [ "$crashes" -gt 0 ] || ! grep -q 'Done [0-9]* runs' "$logs/$t.log"; then
        # The panic message, not the input's bytes (cargo-fuzz prints them
        # all on one line) nor the backtrace.
        echo "--- $t: the libFuzzer log's end, long lines cut" >&2
        grep -v '^ *[0-9]*: \|^ *at ' "$logs/$t.log" | tail -n 30 | cut -c1-300 >&2
    fi
done

printf '%-14s %10s %8s %6s %7s\n' target runs corpus seconds crashes
printf '%s\n' "${results[@]}"
exit "$status"
