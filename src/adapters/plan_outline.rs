//! What the host itself needs from a terraform plan — its shape, the change
//! counts and the values terraform marks sensitive — read by one typed,
//! borrowed pass: attribute values stay raw JSON (`&RawValue`) and only the
//! ones a `*_sensitive` / `sensitive_values` / `sensitive` marker covers are
//! decoded, string by string (`crate::redact` follows the markers). No tree
//! of the plan is built.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;

use policy_sdk::terraform::{Change, Configuration, RelevantAttribute, ResourceChange, Variable};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use super::plan_view::ChangeValue;
use crate::redact::{marked, strings};

/// The plan as `policy_sdk::terraform::Plan` reads it (the same fields, the
/// same types, so a plan this accepts is one every policy can parse), with
/// planned values and prior state typed down to their sensitive markers.
#[derive(Deserialize)]
pub(crate) struct Outline<'a> {
    #[serde(borrow, default)]
    pub format_version: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub terraform_version: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    variables: BTreeMap<Cow<'a, str>, Variable<'a>>,
    #[serde(borrow, default)]
    pub resource_changes: Vec<ResourceChange<'a>>,
    #[serde(borrow, default)]
    pub resource_drift: Vec<ResourceChange<'a>>,
    #[serde(borrow, default)]
    output_changes: BTreeMap<Cow<'a, str>, Change<'a>>,
    #[serde(borrow, default)]
    pub planned_values: Option<Values<'a>>,
    #[serde(borrow, default)]
    prior_state: Option<State<'a>>,
    #[serde(borrow, default)]
    pub configuration: Option<Configuration<'a>>,
    // Read only so the plan's shape is checked as the SDK checks it.
    #[serde(borrow, default, rename = "relevant_attributes")]
    _relevant_attributes: Vec<RelevantAttribute<'a>>,
    #[serde(borrow, default, rename = "checks")]
    _checks: Option<&'a RawValue>,
    #[serde(default, rename = "applyable")]
    _applyable: Option<bool>,
    #[serde(default, rename = "complete")]
    _complete: Option<bool>,
    #[serde(default, rename = "errored")]
    _errored: Option<bool>,
    #[serde(borrow, default, rename = "timestamp")]
    _timestamp: Option<Cow<'a, str>>,
    /// Only state documents (`terraform show -json` without a plan) have it.
    #[serde(default)]
    pub values: Option<IgnoredAny>,
}

#[derive(Deserialize)]
pub(crate) struct Values<'a> {
    #[serde(borrow, default)]
    root_module: Option<Module<'a>>,
    #[serde(borrow, default)]
    outputs: BTreeMap<Cow<'a, str>, Output<'a>>,
}

#[derive(Deserialize)]
struct State<'a> {
    #[serde(borrow, default)]
    values: Option<Values<'a>>,
}

#[derive(Deserialize)]
struct Module<'a> {
    #[serde(borrow, default)]
    resources: Vec<ResourceValues<'a>>,
    #[serde(borrow, default)]
    child_modules: Vec<Module<'a>>,
}

#[derive(Deserialize)]
struct ResourceValues<'a> {
    #[serde(borrow, default)]
    values: Option<&'a RawValue>,
    #[serde(borrow, default)]
    sensitive_values: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Output<'a> {
    #[serde(default)]
    sensitive: bool,
    #[serde(borrow, default)]
    value: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct VariableDecl {
    #[serde(default)]
    sensitive: Option<bool>,
}

impl Outline<'_> {
    /// Every value the plan marks sensitive: resource values (`before`/`after`
    /// with their `*_sensitive` markers, planned values and prior state with
    /// `sensitive_values`), outputs, and the values of variables declared
    /// `sensitive = true`.
    pub fn sensitive_values(&self) -> Vec<String> {
        let mut found = Vec::new();
        for change in self
            .resource_changes
            .iter()
            .map(|rc| &rc.change)
            .chain(self.output_changes.values())
        {
            marked(change.before, change.before_sensitive, &mut found);
            marked(change.after, change.after_sensitive, &mut found);
        }
        let states = [
            self.planned_values.as_ref(),
            self.prior_state.as_ref().and_then(|s| s.values.as_ref()),
        ];
        for values in states.into_iter().flatten() {
            if let Some(module) = &values.root_module {
                module_values(module, &mut found);
            }
            for output in values.outputs.values().filter(|o| o.sensitive) {
                strings(output.value, &mut found);
            }
        }
        let declared = self
            .configuration
            .as_ref()
            .and_then(|c| c.root_module.as_ref())
            .and_then(|m| m.variables)
            .and_then(|v| serde_json::from_str::<BTreeMap<Cow<str>, VariableDecl>>(v.get()).ok())
            .unwrap_or_default();
        for (name, decl) in declared {
            if decl.sensitive == Some(true) {
                strings(self.variables.get(&name).and_then(|v| v.value), &mut found);
            }
        }
        found
    }
}

impl Outline<'_> {
    /// Where, in `text` (the text this outline borrows from), each change
    /// value of `resource_changes` and `resource_drift` lies, in document
    /// order.
    pub fn change_values(&self, text: &str) -> Vec<(ChangeValue, Range<usize>)> {
        let base = text.as_ptr() as usize;
        let mut out = Vec::new();
        for change in self
            .resource_changes
            .iter()
            .chain(&self.resource_drift)
            .map(|rc| &rc.change)
        {
            let values = [
                change.before,
                change.after,
                change.after_unknown,
                change.before_sensitive,
                change.after_sensitive,
            ];
            for (kind, raw) in ChangeValue::ALL.into_iter().zip(values) {
                // Borrowed from `text`, so its address locates it.
                let Some(raw) = raw else { continue };
                let start = (raw.get().as_ptr() as usize).checked_sub(base);
                let end = start.and_then(|s| s.checked_add(raw.get().len()));
                if let (Some(start), Some(end)) = (start, end)
                    && end <= text.len()
                {
                    out.push((kind, start..end));
                }
            }
        }
        out.sort_by_key(|(_, r)| r.start);
        out
    }
}

/// Resources of a module (and its children) with `sensitive_values` markers.
fn module_values(module: &Module, found: &mut Vec<String>) {
    for r in &module.resources {
        marked(r.values, r.sensitive_values, found);
    }
    for child in &module.child_modules {
        module_values(child, found);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(plan: &str) -> Vec<String> {
        let mut s = serde_json::from_str::<Outline>(plan)
            .unwrap()
            .sensitive_values();
        s.sort();
        s
    }

    #[test]
    fn every_kind_of_marker_is_followed_and_nothing_else() {
        let plan = r#"{
            "variables": {"db_password": {"value": "hunter2-variable"}, "region": {"value": "eu-west-1"}},
            "configuration": {"root_module": {"variables": {
                "db_password": {"sensitive": true}, "region": {}
            }}},
            "resource_changes": [{
                "address": "aws_db_instance.main", "type": "aws_db_instance", "name": "main",
                "change": {
                    "actions": ["update"],
                    "before": {"password": "old-password", "port": 5432},
                    "after": {"password": "hunter2-after", "tags": ["public", "nested-secret"], "port": 5432,
                              "list": [{"k": "not-this"}, {"k": "but-this", "o": "and-not"}]},
                    "before_sensitive": {"password": true},
                    "after_sensitive": {"password": true, "tags": [false, true], "list": [{}, {"k": true}], "absent": true}
                }
            }],
            "output_changes": {"dsn": {"actions": ["create"], "after": "postgres://u:pw-in-output@db", "after_sensitive": true}},
            "planned_values": {
                "outputs": {"token": {"sensitive": true, "value": {"a": ["output-token"]}}, "open": {"value": "open-output"}},
                "root_module": {"child_modules": [{"resources": [{
                    "values": {"token": "child-module-token", "name": "visible"}, "sensitive_values": {"token": true}
                }]}]}},
            "prior_state": {"values": {"root_module": {"resources": [{
                "values": {"key": "prior-key"}, "sensitive_values": {"key": true}}]}}}
        }"#;
        assert_eq!(
            secrets(plan),
            [
                "but-this",
                "child-module-token",
                "hunter2-after",
                "hunter2-variable",
                "nested-secret",
                "old-password",
                "output-token",
                "postgres://u:pw-in-output@db",
                "prior-key",
            ]
        );
    }
}
