package lib.k8s

import rego.v1

workload_kinds := {"Deployment", "StatefulSet", "DaemonSet", "Job"}

is_workload if input.kind in workload_kinds

containers contains c if {
	is_workload
	some c in input.spec.template.spec.containers
}

containers contains c if {
	is_workload
	some c in input.spec.template.spec.initContainers
}

name := sprintf("%s/%s", [input.kind, input.metadata.name])
