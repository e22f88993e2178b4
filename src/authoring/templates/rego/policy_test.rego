package main

import rego.v1

production := {"environment": {"name": "production"}, "settings": {"floors": {"production": 3}}}

test_one_replica_is_below_a_floor_of_three if {
	some v in deny with input as {"kind": "Deployment", "metadata": {"name": "api"}, "spec": {"replicas": 1}}
		with data.opsdeploy as production
	v.msg == "Deployment/api has 1 replicas; production needs at least 3"
}

test_a_configmap_is_not_a_workload if {
	count(deny) == 0 with input as {"kind": "ConfigMap", "metadata": {"name": "api"}}
		with data.opsdeploy as production
}
