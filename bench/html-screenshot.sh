#!/usr/bin/env bash
# Renders the HTML report of a real plan bundle (the one the integration test
# `reports::html_is_one_self_contained_file...` builds: real terraform, trivy
# reports from the test corpus, a careless policy) and takes a headless Chromium
# screenshot of it, to look at: bench/artifacts/report.png.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null; then
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi

out=bench/artifacts
mkdir -p "$out"
OPSDEPLOY_REPORT_HTML="$PWD/$out/report.html" \
  cargo test --quiet --locked --test it -- --exact \
  reports::html_is_one_self_contained_file_with_counts_chart_and_redacted_secrets

# No network: the report must render from the file alone.
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
  --no-proxy-server --proxy-server='http://0.0.0.0:1' \
  --screenshot="$PWD/$out/report.png" --window-size=1280,2000 \
  "file://$PWD/$out/report.html" 2>/dev/null
echo "wrote $out/report.html and $out/report.png"
