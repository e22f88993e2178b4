#!/usr/bin/env bash
# Runs opsdeploy's accuracy yardsticks (tests/it/accuracy_*.rs) and the peers on the
# very same cases, and prints the table BENCHMARKS.md keeps: trivy 0.59 (.tools/bin,
# scripts/setup.sh), detect-secrets and CredSweeper (PyPI) on the secrets; squawk
# (PyPI squawk-cli) on the migrations. Not CI: it installs the peers into a private
# virtualenv and takes minutes. Usage: bench/accuracy/peers.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
out=${1:-$(mktemp -d)}
mkdir -p "$out"
export OPSDEPLOY_CORPUS=${OPSDEPLOY_CORPUS:-$repo/../shared/corpus}

# The yardsticks and opsdeploy's verdicts, exported by the ignored tests.
OPSDEPLOY_YARDSTICK_DIR=$out cargo test --quiet --locked --test it export_ -- --ignored >/dev/null

# The peers, pinned, in a virtualenv of their own.
venv=${PEERS_VENV:-$out/venv}
if [ ! -x "$venv/bin/credsweeper" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet detect-secrets==1.5.0 credsweeper==1.19.5 squawk-cli==2.70.0
fi
trivy=$repo/.tools/bin/trivy
[ -x "$trivy" ] || { echo "error: $trivy missing; run scripts/setup.sh" >&2; exit 1; }

files=$out/secrets/files
"$trivy" fs --quiet --scanners secret --format json --cache-dir "$out/trivy-cache" "$files" >"$out/trivy.json"
(cd "$files" && "$venv/bin/detect-secrets" scan --all-files .) >"$out/detect-secrets.json"
"$venv/bin/credsweeper" --path "$files" --save-json "$out/credsweeper.json" >/dev/null

# squawk lints each migration on its own; a finding is its verdict "breaks".
: >"$out/squawk.txt"
for d in "$out"/migrations/case-*; do
  if "$venv/bin/squawk" "$d/migration.sql" >/dev/null 2>&1; then
    echo "$(basename "$d") ok" >>"$out/squawk.txt"
  else
    echo "$(basename "$d") flagged" >>"$out/squawk.txt"
  fi
done

{
  echo "trivy $("$trivy" --version | head -1 | awk '{print $2}'), detect-secrets $("$venv/bin/detect-secrets" --version),"
  echo "CredSweeper $("$venv/bin/credsweeper" --version | awk '{print $2}'), squawk $("$venv/bin/squawk" --version | awk '{print $2}')"
} >"$out/versions.txt"
python3 "$repo/bench/accuracy/score.py" "$out"
