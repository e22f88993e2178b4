package lib.k8s

import rego.v1

workload_kinds := {"Deployment", "StatefulSet", "DaemonSet", "Job"}

is_workload if input.kind in workload_kinds

# The array at obj[key]; empty when it is absent or null (rendered YAML
# often holds `volumes:` with nothing under it).
list(obj, key) := value if {
	value := object.get(obj, key, [])
	is_array(value)
} else := []

containers contains c if {
	is_workload
	some key in ["containers", "initContainers"]
	some c in list(input.spec.template.spec, key)
}

name := sprintf("%s/%s", [input.kind, input.metadata.name])
