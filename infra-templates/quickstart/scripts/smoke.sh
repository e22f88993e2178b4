#!/bin/sh
# Smoke test: the app answers and the orders table exists.
set -eu
env="$1"
port="$2"
curl -fsS "http://127.0.0.1:${port}/healthz" >/dev/null
python3 - "$env" <<'PY'
import pathlib, sqlite3, sys
db = pathlib.Path(f"{sys.argv[1]}.db")
with sqlite3.connect(db) as c:
    c.execute("SELECT count(*) FROM orders").fetchone()
PY
echo "smoke test passed for $env"
