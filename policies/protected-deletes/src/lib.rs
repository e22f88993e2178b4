//! protected-deletes: deny the destruction of resources a team cannot get back
//! (databases, buckets, keys, DNS zones), whether by a plain delete or by a
//! replacement terraform plans because an argument cannot change in place.

use policy_sdk::prelude::*;
use policy_sdk::text::glob_match;
use serde::Deserialize;

/// Types protected when the settings name none: data stores, keys and zones.
pub const DEFAULT_TYPES: &[&str] = &[
    "aws_db_instance",
    "aws_rds_cluster",
    "aws_dynamodb_table",
    "aws_s3_bucket",
    "aws_efs_file_system",
    "aws_kms_key",
    "aws_route53_zone",
    "aws_secretsmanager_secret",
    "google_sql_database_instance",
    "google_storage_bucket",
    "google_kms_crypto_key",
    "google_dns_managed_zone",
    "azurerm_mssql_database",
    "azurerm_postgresql_flexible_server",
    "azurerm_storage_account",
    "azurerm_key_vault",
    "azurerm_dns_zone",
];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Resource types to protect; replaces the default list when given.
    types: Option<Vec<String>>,
    /// Extra types, added to the defaults.
    #[serde(default)]
    extra_types: Vec<String>,
    /// Address patterns (`*` matches any run of characters).
    #[serde(default)]
    addresses: Vec<String>,
    /// Tags that mark a resource protected, `key` or `key=value`.
    #[serde(default)]
    tags: Vec<String>,
}

impl Settings {
    fn protects(&self, rc: &ResourceChange) -> Option<String> {
        let ty = &*rc.resource_type;
        let by_type = match &self.types {
            Some(types) => types.iter().any(|t| t == ty),
            None => DEFAULT_TYPES.contains(&ty),
        } || self.extra_types.iter().any(|t| t == ty);
        if by_type {
            return Some(format!("type {ty} is protected"));
        }
        if let Some(p) = self.addresses.iter().find(|p| glob_match(p, &rc.address)) {
            return Some(format!("address matches protected pattern `{p}`"));
        }
        if !self.tags.is_empty() {
            let before = rc.change.before_value();
            for tags_key in ["tags", "labels", "tags_all"] {
                if let Some(tags) = before.get(tags_key).and_then(|t| t.as_object()) {
                    for wanted in &self.tags {
                        let (key, value) = match wanted.split_once('=') {
                            Some((k, v)) => (k, Some(v)),
                            None => (wanted.as_str(), None),
                        };
                        let hit = tags
                            .get(key)
                            .is_some_and(|v| value.is_none_or(|want| v.as_str() == Some(want)));
                        if hit {
                            return Some(format!("it is tagged `{wanted}`"));
                        }
                    }
                }
            }
        }
        None
    }
}

pub fn evaluate(input: &Input) -> Vec<Violation> {
    let settings: Settings = match input.settings() {
        Ok(s) => s,
        Err(e) => {
            return vec![Violation::deny(
                "invalid-settings",
                format!("protected-deletes settings are invalid: {e}"),
            )];
        }
    };
    let Some(plan) = input.plan() else {
        return Vec::new();
    };
    plan.resource_changes
        .iter()
        .filter(|rc| rc.is_managed() && rc.change.actions.destroys())
        .filter_map(|rc| {
            let why = settings.protects(rc)?;
            let violation = if rc.change.actions.is_replace() {
                let reason = rc
                    .action_reason
                    .as_deref()
                    .map(|r| format!(" ({})", r.replace('_', " ")))
                    .unwrap_or_default();
                let paths = rc
                    .change
                    .replace_paths
                    .map(|p| format!("; forced by {}", p.get()))
                    .unwrap_or_default();
                Violation::deny(
                    "protected-replace",
                    format!(
                        "{} would be destroyed and recreated{reason}{paths}: {why}",
                        rc.address
                    ),
                )
            } else {
                Violation::deny(
                    "protected-delete",
                    format!("{} would be destroyed: {why}", rc.address),
                )
            };
            Some(violation.at_address(&*rc.address))
        })
        .collect()
}

policy_sdk::export_policy! {
    name: "protected-deletes",
    description: "Deny delete or replace of protected resources (databases, buckets, keys, DNS zones)",
    reads: [terraform],
    terraform_plan: [resource_changes],
    // `before` for the tags; never what a resource becomes.
    change_values: [before],
    settings_schema: r#"{"type":"object","additionalProperties":false,"properties":{"types":{"type":"array","items":{"type":"string"}},"extra_types":{"type":"array","items":{"type":"string"}},"addresses":{"type":"array","items":{"type":"string"}},"tags":{"type":"array","items":{"type":"string"}}}}"#,
    evaluate: evaluate,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(actions: &str, ty: &str, settings: &str) -> String {
        format!(
            r#"{{"schema_version":1,"environment":{{"name":"prod","project":"p"}},"settings":{settings},
            "terraform":{{"dir":".","plan":{{"format_version":"1.2","resource_changes":[
            {{"address":"{ty}.main","type":"{ty}","name":"main","mode":"managed",
              "change":{{"actions":{actions},"before":{{"tags":{{"protected":"true"}}}},"after":null}},
              "action_reason":"replace_because_cannot_update"}}]}}}}}}"#
        )
    }

    fn run(actions: &str, ty: &str, settings: &str) -> Vec<Violation> {
        let json = doc(actions, ty, settings);
        evaluate(&Input::from_json(&json).unwrap())
    }

    #[test]
    fn deleting_a_default_protected_type_is_denied() {
        let v = run(r#"["delete"]"#, "aws_db_instance", "null");
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].rule, "protected-delete");
        assert_eq!(v[0].address.as_deref(), Some("aws_db_instance.main"));
    }

    #[test]
    fn replacement_names_terraforms_reason() {
        let v = run(r#"["delete","create"]"#, "aws_s3_bucket", "null");
        assert_eq!(v[0].rule, "protected-replace");
        assert!(
            v[0].message.contains("replace because cannot update"),
            "{}",
            v[0].message
        );
    }

    #[test]
    fn forget_update_and_unprotected_types_pass() {
        assert!(run(r#"["forget"]"#, "aws_db_instance", "null").is_empty());
        assert!(run(r#"["update"]"#, "aws_db_instance", "null").is_empty());
        assert!(run(r#"["delete"]"#, "aws_instance", "null").is_empty());
    }

    #[test]
    fn settings_protect_by_type_address_and_tag() {
        let types = r#"{"types":["terraform_data"]}"#;
        assert_eq!(run(r#"["delete"]"#, "terraform_data", types).len(), 1);
        assert!(run(r#"["delete"]"#, "aws_db_instance", types).is_empty());
        let addr = r#"{"types":[],"addresses":["aws_instance.*"]}"#;
        assert_eq!(run(r#"["delete"]"#, "aws_instance", addr).len(), 1);
        let tag = r#"{"types":[],"tags":["protected=true"]}"#;
        assert_eq!(run(r#"["delete"]"#, "aws_instance", tag).len(), 1);
    }

    #[test]
    fn bad_settings_are_a_denial_not_a_pass() {
        let v = run(r#"["delete"]"#, "aws_instance", r#"{"typo":1}"#);
        assert_eq!(v[0].rule, "invalid-settings");
    }
}
