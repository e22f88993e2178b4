#!/usr/bin/env bash
# Usage: bench/gen-plans.sh N [OUT_DIR]
#
# Generates a real terraform plan of N `terraform_data` resources, each with a
# nested `input` shaped like a service definition (labels, three containers
# with env maps, ports, probes, network rules): about 9.4 KB of plan JSON per
# resource, so N=1000 gives ~9.4 MB and N=10000 ~94 MB. terraform_data is
# built into terraform, so init/plan need no provider download (offline).
#
# Writes OUT_DIR/tf-N/ (default OUT_DIR: target/bench-data):
#   opsdeploy.hcl            a project planning environment `staging` with the
#                            built-in protected-deletes (bench/adapter-overhead.sh)
#   infra/main.tf, infra/terraform.tfvars (n = N)
#   plan.json                `terraform show -json` of the saved plan
#   terraform.log            terraform's messages (the plan listing itself is dropped)
# A rerun with the same N and template only prints the path: a 10k-resource
# plan takes terraform minutes on the shared 2-core machine.
set -euo pipefail

n="${1:?usage: bench/gen-plans.sh N [OUT_DIR]}"
out="${2:-$(cd "$(dirname "$0")/.." && pwd)/target/bench-data}"
[[ "$n" =~ ^[0-9]+$ ]] || { echo "error: N must be a number, got \`$n\`" >&2; exit 2; }

dir="$out/tf-$n"
mkdir -p "$dir/infra"

# `count = var.n` rather than a list built with range(): range() stops at 1024
# elements, count does not. The inner range()s are small.
main_tf='variable "n" {
  type = number
}

locals {
  teams = ["payments", "search", "checkout", "identity", "catalog", "ledger", "growth", "platform"]
  tiers = ["web", "api", "worker", "batch"]
}

resource "terraform_data" "service" {
  count = var.n
  input = {
    name        = format("svc-%05d", count.index)
    tier        = local.tiers[count.index % 4]
    owner       = format("%s@example.com", local.teams[count.index % 8])
    enabled     = count.index % 7 != 0
    description = format("Service %05d of team %s (%s tier), deployed by opsdeploy from the platform monorepo", count.index, local.teams[count.index % 8], local.tiers[count.index % 4])
    labels = {
      team        = local.teams[count.index % 8]
      environment = "staging"
      cost_center = format("cc-%03d", count.index % 97)
      app         = format("app-%04d", count.index)
      managed_by  = "opsdeploy"
      revision    = format("r%06d-%s", count.index * 7919 % 1000000, local.teams[(count.index + 3) % 8])
    }
    containers = [for c in range(3) : {
      name  = format("container-%d", c)
      image = format("registry.example.com/%s/app-%04d:1.%d.%d", local.teams[count.index % 8], count.index, c, count.index % 13)
      args  = ["--port", tostring(8080 + c), "--log-format", "json", "--metrics"]
      env   = { for k in range(12) : format("SETTING_%02d", k) => format("value-%05d-%02d-%s", count.index, k, local.tiers[k % 4]) }
      ports = [for p in range(2) : { name = format("port-%d", p), container_port = 8080 + p, protocol = "TCP" }]
      resources = {
        limits   = { cpu = "500m", memory = format("%dMi", 256 * (c + 1)) }
        requests = { cpu = "250m", memory = format("%dMi", 128 * (c + 1)) }
      }
      probes = {
        liveness  = { path = "/healthz", port = 8080 + c, period_seconds = 10, failure_threshold = 3 }
        readiness = { path = "/ready", port = 8080 + c, period_seconds = 5, failure_threshold = 6 }
      }
    }]
    network = {
      vpc     = format("vpc-%08x", count.index % 16)
      subnets = [for s in range(3) : format("subnet-%08x", count.index * 3 + s)]
      ingress = [for r in range(4) : { from_port = 443, to_port = 443, cidr = format("10.%d.%d.0/24", count.index % 256, r) }]
    }
  }
}
'

opsdeploy_hcl='project = "bench"

policy "protected-deletes" {
  builtin     = true
  enforcement = "hard-mandatory"
  settings    = { types = ["terraform_data"] }
}

environment "staging" {
  terraform { dir = "infra" }
  approval { self_approve = true }
}
'

stamp="$(printf '%s\n%s\n%s' "$n" "$main_tf" "$opsdeploy_hcl" | sha256sum | cut -d' ' -f1)"
if [[ -s "$dir/plan.json" && "$(cat "$dir/.stamp" 2>/dev/null)" == "$stamp" ]]; then
  echo "$dir/plan.json"
  exit 0
fi
rm -f "$dir/.stamp" "$dir/plan.json"
printf '%s' "$main_tf" > "$dir/infra/main.tf"
printf 'n = %s\n' "$n" > "$dir/infra/terraform.tfvars"
printf '%s' "$opsdeploy_hcl" > "$dir/opsdeploy.hcl"

echo "generating a plan of $n terraform_data resources in $dir" >&2
(
  cd "$dir/infra"
  terraform init -input=false -no-color > /dev/null
  terraform plan -input=false -no-color -out=tfplan > /dev/null
) 2> "$dir/terraform.log" || { echo "error: terraform failed, see $dir/terraform.log" >&2; exit 1; }
(cd "$dir/infra" && terraform show -json -no-color tfplan) > "$dir/plan.json.tmp" 2>> "$dir/terraform.log"
mv "$dir/plan.json.tmp" "$dir/plan.json"
echo "$stamp" > "$dir/.stamp"
echo "$dir/plan.json"
