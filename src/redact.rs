//! Secret values a report must never show, and their removal.
//!
//! Policies and tools are supposed to report keys and locations, never values,
//! but a careless policy message or a tool's excerpt can still echo one. The
//! values terraform itself marks sensitive are known at report time, so every
//! string of a report is scrubbed of them before any format is written.

use serde_json::Value;

use policy_sdk::Violation;

/// Shorter values are not scrubbed: replacing every `on` or `80` in a report
/// would destroy it, and such values are not credentials.
const MIN_SECRET_LEN: usize = 4;

/// The secret values of one deployment.
#[derive(Debug, Default, Clone)]
pub struct Redactor {
    /// Longest first, so a secret containing another is replaced whole.
    secrets: Vec<String>,
}

impl Redactor {
    /// Every value a terraform plan JSON marks sensitive: resource values
    /// (`before`/`after` with their `*_sensitive` markers, planned values and
    /// prior state with `sensitive_values`), outputs, and the values of
    /// variables declared `sensitive = true`.
    pub fn from_terraform_plan(plan: &Value) -> Self {
        let mut found = Vec::new();
        for rc in plan["resource_changes"].as_array().into_iter().flatten() {
            let change = &rc["change"];
            marked(&change["before"], &change["before_sensitive"], &mut found);
            marked(&change["after"], &change["after_sensitive"], &mut found);
        }
        for oc in plan["output_changes"].as_object().into_iter().flatten() {
            let change = oc.1;
            marked(&change["before"], &change["before_sensitive"], &mut found);
            marked(&change["after"], &change["after_sensitive"], &mut found);
        }
        for module in [
            &plan["planned_values"]["root_module"],
            &plan["prior_state"]["values"]["root_module"],
        ] {
            module_values(module, &mut found);
        }
        for values in [
            &plan["planned_values"]["outputs"],
            &plan["prior_state"]["values"]["outputs"],
        ] {
            for output in values.as_object().into_iter().flatten().map(|o| o.1) {
                if output["sensitive"] == Value::Bool(true) {
                    leaves(&output["value"], &mut found);
                }
            }
        }
        let declared = &plan["configuration"]["root_module"]["variables"];
        for (name, decl) in declared.as_object().into_iter().flatten() {
            if decl["sensitive"] == Value::Bool(true) {
                leaves(&plan["variables"][name]["value"], &mut found);
            }
        }
        Self::from_values(found)
    }

    pub fn from_values(values: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<String> = values
            .into_iter()
            .filter(|s| s.chars().count() >= MIN_SECRET_LEN)
            .collect();
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        Redactor { secrets }
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// `text` with every secret replaced by `****` and its length, as docs/style.md
    /// shows a secret.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), &mask(s));
            }
        }
        out
    }

    /// Scrubs the free text of violations: message, address and path. Only
    /// free text is scrubbed anywhere: a short secret (`cafe`, `2024`) would
    /// otherwise also mask part of a module's sha256, a policy name or an
    /// enum word, and corrupt the record.
    pub fn scrub_violations(&self, violations: &mut [Violation]) {
        for v in violations {
            v.message = self.scrub(&v.message);
            v.address = v.address.as_deref().map(|a| self.scrub(a));
            v.path = v.path.as_deref().map(|p| self.scrub(p));
        }
    }
}

/// How a secret is shown: `****` and its length in characters.
fn mask(secret: &str) -> String {
    format!("****({} chars)", secret.chars().count())
}

/// Values under `marks` = `true`, walking objects and arrays in parallel.
fn marked(values: &Value, marks: &Value, found: &mut Vec<String>) {
    match marks {
        Value::Bool(true) => leaves(values, found),
        Value::Object(m) => {
            for (k, mark) in m {
                marked(&values[k.as_str()], mark, found);
            }
        }
        Value::Array(m) => {
            for (i, mark) in m.iter().enumerate() {
                marked(&values[i], mark, found);
            }
        }
        _ => {}
    }
}

/// Resources of a module (and its children) with `sensitive_values` markers.
fn module_values(module: &Value, found: &mut Vec<String>) {
    for r in module["resources"].as_array().into_iter().flatten() {
        marked(&r["values"], &r["sensitive_values"], found);
    }
    for child in module["child_modules"].as_array().into_iter().flatten() {
        module_values(child, found);
    }
}

/// Every string leaf of a value.
fn leaves(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::String(s) => found.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| leaves(v, found)),
        Value::Object(map) => map.values().for_each(|v| leaves(v, found)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_terraform_marks_sensitive_are_found_and_scrubbed() {
        let plan = json!({
            "variables": {"db_password": {"value": "hunter2-variable"}, "region": {"value": "eu-west-1"}},
            "configuration": {"root_module": {"variables": {
                "db_password": {"sensitive": true}, "region": {}
            }}},
            "resource_changes": [{
                "address": "aws_db_instance.main",
                "change": {
                    "before": null,
                    "after": {"password": "hunter2-after", "tags": ["public", "nested-secret"], "port": 5432},
                    "before_sensitive": false,
                    "after_sensitive": {"password": true, "tags": [false, true]}
                }
            }],
            "output_changes": {"dsn": {"after": "postgres://u:pw-in-output@db", "after_sensitive": true}},
            "planned_values": {"root_module": {"child_modules": [{"resources": [{
                "values": {"token": "child-module-token"}, "sensitive_values": {"token": true}
            }]}]}}
        });
        let r = Redactor::from_terraform_plan(&plan);
        let text = "hunter2-variable hunter2-after nested-secret postgres://u:pw-in-output@db \
                    child-module-token public eu-west-1 5432";
        let scrubbed = r.scrub(text);
        for secret in [
            "hunter2",
            "nested-secret",
            "pw-in-output",
            "child-module-token",
        ] {
            assert!(!scrubbed.contains(secret), "{secret} in {scrubbed}");
        }
        assert!(scrubbed.contains("public eu-west-1 5432"), "{scrubbed}");
        assert!(scrubbed.contains("****(16 chars)"), "{scrubbed}");
    }

    #[test]
    fn a_secret_containing_another_is_replaced_whole() {
        let r = Redactor::from_values(["abcd".to_string(), "abcdefgh".to_string(), "ab".into()]);
        assert_eq!(
            r.scrub("x abcdefgh y abcd ab"),
            "x ****(8 chars) y ****(4 chars) ab"
        );
    }
}
