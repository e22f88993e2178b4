#!/bin/sh
# CI: install opsdeploy and the tools it drives. Pin the versions your team
# tested; opsdeploy records each tool's version in every plan bundle.
set -eu
cargo install --locked --git https://github.com/opsdeploy/opsdeploy opsdeploy
command -v terraform >/dev/null || { echo "install terraform (hashicorp/setup-terraform)" >&2; exit 1; }
command -v helm >/dev/null || { echo "install helm (azure/setup-helm)" >&2; exit 1; }
command -v trivy >/dev/null || { echo "install trivy (aquasecurity/setup-trivy)" >&2; exit 1; }
