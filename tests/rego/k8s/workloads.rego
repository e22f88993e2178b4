# Per rendered manifest (input = "kubernetes").
package main

import data.lib.k8s
import rego.v1

deny contains msg if {
	some c in k8s.containers
	not c.resources.limits.memory
	msg := sprintf("%s: container %s has no memory limit", [k8s.name, c.name])
}

violation contains {"msg": msg, "container": c.name, "image": c.image} if {
	some c in k8s.containers
	mutable(c.image)
	msg := sprintf("%s: container %s runs the mutable image %s", [k8s.name, c.name, c.image])
}

mutable(image) if endswith(image, ":latest")

mutable(image) if not contains(image, ":")

deny_host_path contains msg if {
	k8s.is_workload
	some v in k8s.list(input.spec.template.spec, "volumes")
	v.hostPath
	msg := sprintf("%s mounts the host path %s", [k8s.name, v.hostPath.path])
}

warn contains msg if {
	input.kind == "Service"
	input.spec.type != "ClusterIP"
	msg := sprintf("%s is exposed as %s", [k8s.name, input.spec.type])
}

# Configuration shipped as YAML inside a ConfigMap is read, not just carried.
warn_embedded_config contains msg if {
	input.kind == "ConfigMap"
	is_object(input.data)
	some key, text in input.data
	endswith(key, ".yml")
	config := yaml.unmarshal(text)
	config.disabled == false
	exporters := {name | some p in k8s.list(config.tracer_provider, "processors"); some name, _ in p.batch.exporter}
	msg := sprintf("%s: %s traces to %s", [k8s.name, key, json.marshal(sort(exporters))])
}

ports := [p.port | some p in k8s.list(input.spec, "ports")]

warn_many_ports contains msg if {
	input.kind == "Service"
	count(ports) > 2
	msg := sprintf("%s opens %d ports", [k8s.name, count(ports)])
}
