#!/bin/sh
# CI: puts opsdeploy on PATH and checks the tools it drives, printing their
# versions (every plan bundle records them too). terraform, helm and trivy
# come from their setup actions in .github/workflows/deploy.yml, at the
# versions pinned there. opsdeploy comes from wherever your organisation keeps
# it: set the CI variable OPSDEPLOY_INSTALL to the command that installs it
# (for example `cargo install --locked --path tools/opsdeploy` for a vendored
# checkout, or a download from your artifact store). Nothing is fetched from
# an address this script would have to guess.
set -eu
if ! command -v opsdeploy >/dev/null 2>&1; then
  if [ -z "${OPSDEPLOY_INSTALL:-}" ]; then
    echo "error: opsdeploy is not on PATH and OPSDEPLOY_INSTALL is not set" >&2
    echo "hint: set the CI variable OPSDEPLOY_INSTALL to the command that installs opsdeploy" >&2
    exit 1
  fi
  sh -c "$OPSDEPLOY_INSTALL"
fi
for tool in opsdeploy terraform helm trivy; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "error: $tool is not on PATH" >&2
    echo "hint: keep its setup step in .github/workflows/deploy.yml before this script" >&2
    exit 1
  fi
done
opsdeploy --version
terraform version
helm version --short
trivy --version
