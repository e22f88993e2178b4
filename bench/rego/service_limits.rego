# The benchmark's Rego policy (BENCHMARKS.md, "Rego"), conftest style over a
# terraform plan (input = terraform.plan). bench/policies/service-limits is the
# same policy in Rust.
package main

import rego.v1

services contains rc if {
	some rc in input.resource_changes
	rc.type == "terraform_data"
	"create" in rc.change.actions
}

mebibytes(quantity) := to_number(trim_suffix(quantity, "Mi")) if endswith(quantity, "Mi")

deny contains msg if {
	some rc in services
	some c in rc.change.after.input.containers
	mebibytes(c.resources.limits.memory) > 512
	msg := sprintf("%s: container %s may use %s, over 512Mi", [rc.address, c.name, c.resources.limits.memory])
}

deny contains msg if {
	some rc in services
	some c in rc.change.after.input.containers
	not startswith(c.image, "registry.example.com/")
	msg := sprintf("%s: container %s runs %s from outside the registry", [rc.address, c.name, c.image])
}

warn contains msg if {
	some rc in services
	rc.change.after.input.enabled == false
	msg := sprintf("%s is created disabled", [rc.address])
}
