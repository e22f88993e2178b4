#!/bin/sh
# Smoke test after a deploy: the app answers on its health and main endpoints.
set -eu
base="$1"
curl -fsS --max-time 10 "$base/healthz" >/dev/null
curl -fsS --max-time 10 "$base/" >/dev/null
echo "smoke ok: $base"
