#!/usr/bin/env bash
# The quickstart, fully offline: create a project from the quickstart template,
# deploy it to staging, promote it to production, watch a release that does
# not start fail on staging and be rolled back for real (terraform included),
# then watch a policy refuse a dangerous change. terraform_data stands in for
# cloud resources, a small Python app for the service, SQLite for its database.
# Production approvals are signed with throwaway SSH keys made here for alice
# and bob.
#
# The test suite runs this script as it is (tests/it/quickstart.rs) with
# OPSDEPLOY_BIN, a binary already built (no setup, no build), and
# QUICKSTART_PORTS="STAGING PRODUCTION", free ports for the two apps
# instead of 18081 and 18082.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${OPSDEPLOY_BIN:-}" ]; then
  opsdeploy="$OPSDEPLOY_BIN"
else
  scripts/setup.sh
  cargo build --quiet --locked
  opsdeploy="$PWD/target/debug/opsdeploy"
fi
read -r staging_port production_port <<<"${QUICKSTART_PORTS:-18081 18082}"

work="$(mktemp -d)"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
# expect_exit CODE WHAT COMMAND...: runs COMMAND and stops the quickstart
# unless it exits with CODE.
expect_exit() {
  local code="$1" what="$2" status=0
  shift 2
  "$@" || status=$?
  if [ "$status" -ne "$code" ]; then
    echo "quickstart: expected $what (exit $code), got exit $status" >&2
    exit 1
  fi
}

step "opsdeploy init $work/shop"
"$opsdeploy" init "$work/shop"
cd "$work/shop"
export TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1
sed -i "s/18081/$staging_port/g; s/18082/$production_port/g" opsdeploy.hcl

# The "deployed app" of each environment answers /healthz: 200 while terraform
# has deployed the web image it is (registry.example.com/shop/web:1.4.2).
python3 scripts/app.py "$staging_port" staging & pids+=($!)
python3 scripts/app.py "$production_port" production & pids+=($!)
deployed_image() {
  python3 -c 'import json,sys
for r in json.load(open(sys.argv[1]))["resources"]:
    if r["name"] == "web": print(r["instances"][0]["attributes"]["input"]["value"]["image"])' "infra/$1/terraform.tfstate"
}

export OPSDEPLOY_USER=alice@example.com
step "alice: opsdeploy plan staging"
"$opsdeploy" plan staging
step "alice: opsdeploy approve staging (staging allows self-approval)"
"$opsdeploy" approve staging --comment "quickstart"
step "alice: opsdeploy apply staging"
"$opsdeploy" apply staging --yes

step "throwaway ed25519 keys for alice and bob; deploy/allowed_signers lists them"
command -v ssh-keygen >/dev/null || { echo "quickstart: ssh-keygen not found; install openssh-client" >&2; exit 1; }
mkdir -p "$work/keys"
for who in alice bob; do
  ssh-keygen -q -t ed25519 -N '' -C "$who@example.com" -f "$work/keys/$who"
  echo "$who@example.com namespaces=\"opsdeploy\" $(cat "$work/keys/$who.pub")" >>deploy/allowed_signers
done
grep -v '^#' deploy/allowed_signers

step "alice: opsdeploy promote staging production"
"$opsdeploy" promote staging production
step "alice: opsdeploy apply production (refused: no approval yet, exit 4)"
expect_exit 4 "a refusal" "$opsdeploy" apply production --yes
step "alice's key claiming to be bob: refused (exit 4)"
expect_exit 4 "alice's key to be refused as bob" \
  env OPSDEPLOY_USER=bob@example.com "$opsdeploy" approve production --key "$work/keys/alice"
export OPSDEPLOY_USER=bob@example.com
step "bob: opsdeploy approve production --key (signed: the approver is who the key belongs to)"
"$opsdeploy" approve production --key "$work/keys/bob" --comment "staging healthy"
step "bob: opsdeploy apply production (rolling, then a monitor window)"
"$opsdeploy" apply production --yes

step "a release that does not start: staging gets web 1.5.0, which no app here is"
sed -i 's|shop/web:1.4.2|shop/web:1.5.0|' infra/modules/app/main.tf
"$opsdeploy" plan staging
"$opsdeploy" approve staging --comment "web 1.5.0"
expect_exit 5 "the failed deploy to be rolled back" "$opsdeploy" apply staging --yes
step "terraform is back at the last good release; status says what was undone"
image="$(deployed_image staging)"
echo "staging's terraform state deploys: $image"
if [ "$image" != "registry.example.com/shop/web:1.4.2" ]; then
  echo "quickstart: terraform was not returned to web 1.4.2" >&2
  exit 1
fi
"$opsdeploy" status staging
sed -i 's|shop/web:1.5.0|shop/web:1.4.2|' infra/modules/app/main.tf

step "a dangerous change: a new database engine version replaces the database"
sed -i 's/engine_version = 15/engine_version = 16/' infra/staging/main.tf
expect_exit 3 "protected-deletes to block the plan" "$opsdeploy" plan staging

step "opsdeploy status; opsdeploy audit verify (chain, signatures, PROJECT_STATE.md's checkpoint)"
"$opsdeploy" status
"$opsdeploy" audit verify
echo
echo "quickstart done: staging and production deployed; a failed release rolled back (exit 5); the database replacement was refused (exit 3)."
