#!/usr/bin/env bash
# A throwaway PostgreSQL for the tests: loopback only, trust auth, all in DIR.
#
#   scripts/pg.sh start DIR   initdb (first time) and start; prints
#                             `export OPSDEPLOY_TEST_DATABASE_URL=...` for eval
#   scripts/pg.sh stop DIR    stop it (fast shutdown); DIR stays for a restart
#   scripts/pg.sh destroy DIR stop it and remove DIR
#
# initdb refuses to run as root: as root, the server runs as the `postgres` user.
set -euo pipefail

cmd="${1:-}"
dir="${2:-}"
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "usage: scripts/pg.sh start|stop|destroy DIR" >&2
  exit 2
fi

bindir="${PG_BINDIR:-}"
if [ -z "$bindir" ]; then
  # The newest installed server (Debian keeps each major under /usr/lib/postgresql).
  bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
fi
if [ ! -x "$bindir/pg_ctl" ]; then
  echo "error: no PostgreSQL server binaries found (looked in /usr/lib/postgresql/*/bin)" >&2
  echo "hint: apt-get install postgresql-15, or set PG_BINDIR" >&2
  exit 1
fi

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# The server's own files live in a directory of their own under the system
# temp dir, owned by the user it runs as (DIR may sit in a directory that user
# cannot enter, such as a test's private temp dir); DIR records where.
home() {
  if [ ! -f "$dir/home" ]; then
    mkdir -p "$dir"
    mktemp -d "${TMPDIR:-/tmp}/opsdeploy-pg.XXXXXX" >"$dir/home"
    if [ "$(id -u)" -eq 0 ]; then
      chown postgres: "$(cat "$dir/home")"
    fi
  fi
  cat "$dir/home"
}

case "$cmd" in
  start)
    pghome="$(home)"
    data="$pghome/data"
    log="$pghome/server.log"
    if [ ! -f "$data/PG_VERSION" ]; then
      as_owner "$bindir/initdb" -D "$data" -U postgres -A trust -E UTF8 --no-instructions >"$pghome/initdb.log" 2>&1 ||
        { cat "$pghome/initdb.log" >&2; exit 1; }
    fi
    # The port is chosen once and kept, so a restarted server has the same URL.
    if [ ! -f "$dir/port" ]; then
      python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' >"$dir/port"
    fi
    port="$(cat "$dir/port")"
    as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1 ||
      as_owner "$bindir/pg_ctl" -D "$data" -l "$log" -w -t 60 \
      -o "-p $port -k $pghome -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null ||
        { cat "$log" >&2; exit 1; }
    echo "export OPSDEPLOY_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:$port/postgres"
    ;;
  stop | destroy)
    if [ -f "$dir/home" ]; then
      pghome="$(cat "$dir/home")"
      if [ -f "$pghome/data/postmaster.pid" ]; then
        as_owner "$bindir/pg_ctl" -D "$pghome/data" -m fast -w -t 60 stop >/dev/null || true
      fi
      if [ "$cmd" = destroy ]; then
        rm -rf "$pghome"
      fi
    fi
    if [ "$cmd" = destroy ]; then
      rm -rf "$dir"
    fi
    ;;
  *)
    echo "usage: scripts/pg.sh start|stop|destroy DIR" >&2
    exit 2
    ;;
esac
