#!/usr/bin/env bash
# The quickstart: build opsdeploy, plan real terraform changes offline, and gate
# them with the built-in protected-deletes policy.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cargo build --quiet --locked
opsdeploy="$PWD/target/debug/opsdeploy"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp infra-templates/quickstart/infra/main.tf "$work/"
cd "$work"
export TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1

echo "==> terraform apply (version 15 of the database)"
terraform init -input=false -no-color >/dev/null
terraform apply -input=false -auto-approve -no-color -var engine_version=15 >/dev/null

echo "==> terraform plan (version 16 replaces the database)"
terraform plan -input=false -no-color -var engine_version=16 -out=tfplan >/dev/null
terraform show -json tfplan >plan.json

echo "==> opsdeploy policy eval builtin:protected-deletes"
set +e
"$opsdeploy" policy eval builtin:protected-deletes --terraform-plan plan.json --env production \
  --settings '{"extra_types": ["terraform_data"], "addresses": []}'
status=$?
set -e
if [ "$status" -ne 3 ]; then
  echo "quickstart: expected the replacement to be denied (exit 3), got exit $status" >&2
  exit 1
fi
echo "==> denied as expected (exit 3): the database would be destroyed and recreated"
