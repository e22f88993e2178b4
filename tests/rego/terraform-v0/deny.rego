# Rego v0, as most conftest policies for terraform plans are still written.
package main

tagged_types = {"aws_s3_bucket", "aws_instance", "aws_db_instance", "aws_ebs_volume"}

creates[rc] {
	rc := input.resource_changes[_]
	rc.change.actions[_] == "create"
}

tags(rc) = t {
	t := object.get(rc.change.after, "tags", {})
	is_object(t)
}

tags(rc) = {} {
	not is_object(object.get(rc.change.after, "tags", {}))
}

deny[msg] {
	rc := creates[_]
	tagged_types[rc.type]
	not tags(rc).Name
	msg := sprintf("%s is created without a Name tag", [rc.address])
}

deny[msg] {
	rc := creates[_]
	rc.type == "aws_db_instance"
	not rc.change.after.storage_encrypted
	msg := sprintf("%s stores its data unencrypted", [rc.address])
}

warn[msg] {
	rc := input.resource_changes[_]
	rc.type == "aws_s3_bucket"
	acl := object.get(rc.change.after, "acl", "private")
	acl != "private"
	msg := sprintf("%s has the ACL %q", [rc.address, acl])
}
