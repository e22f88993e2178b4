package lib.tf

import rego.v1

# A change that creates the resource (a replace creates it too).
creates(rc) if "create" in rc.change.actions

of_type(plan, t) := [rc | some rc in plan.resource_changes; rc.type == t]
