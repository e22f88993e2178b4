# Rego v1 in a namespace of its own (query data.terraform.security).
package terraform.security

import data.lib.tf
import rego.v1

violation contains {"msg": msg, "address": rc.address, "port": rule.from_port} if {
	some rc in tf.of_type(input, "aws_security_group")
	tf.creates(rc)
	some rule in rc.change.after.ingress
	"0.0.0.0/0" in rule.cidr_blocks
	msg := sprintf("%s accepts traffic from anywhere on port %d", [rc.address, rule.from_port])
}

deny_unencrypted_volume contains msg if {
	some rc in tf.of_type(input, "aws_ebs_volume")
	not rc.change.after.encrypted
	msg := sprintf("%s is not encrypted", [rc.address])
}

deny_public_key contains msg if {
	some rc in input.resource_changes
	rc.type == "aws_iam_access_key"
	tf.creates(rc)
	msg := sprintf("%s creates a long-lived access key", [rc.address])
}

# Tag keys are CamelCase words or the cloud's own (aws:...).
well_formed_keys(tags) if {
	every key, value in tags {
		regex.match(`^([A-Z][A-Za-z0-9]*|aws:.+)$`, key)
		is_string(value)
	}
}

warn_tag_keys contains msg if {
	some rc in input.resource_changes
	tags := object.get(rc.change.after, "tags", null)
	is_object(tags)
	not well_formed_keys(tags)
	msg := sprintf("%s has tag keys outside the convention: %s", [rc.address, json.marshal(object.keys(tags))])
}
