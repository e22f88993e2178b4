# replica-floor: deny a Deployment or StatefulSet whose replica count is below
# the floor this environment sets (settings {"floors": {"production": 3}}).
# Evaluated once per rendered Kubernetes manifest (input = "kubernetes"); the
# environment and the policy's settings are in data.opsdeploy.
package main

import rego.v1

workloads := {"Deployment", "StatefulSet"}

environment := data.opsdeploy.environment.name

floor := data.opsdeploy.settings.floors[environment]

# Kubernetes runs one replica when spec.replicas is not set.
replicas := object.get(input, ["spec", "replicas"], 1)

whole(n) if {
	is_number(n)
	round(n) == n
}

deny contains violation if {
	input.kind in workloads
	whole(floor)
	whole(replicas)
	replicas < floor
	address := sprintf("%s/%s", [input.kind, input.metadata.name])
	violation := {
		"rule": "replica-floor",
		"msg": sprintf("%s has %d replicas; %s needs at least %d", [address, replicas, environment, floor]),
	}
}
