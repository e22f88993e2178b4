//! Terraform's machine-readable plan (`terraform show -json PLANFILE`), format 0.x and 1.x.
//!
//! Strings borrow from the input where they can and the bulky values
//! (`before`, `after`, configuration expressions) stay as raw JSON until a
//! policy asks for them, so a policy that reads only addresses and actions does
//! not pay for building trees of every attribute. Unknown fields are skipped:
//! newer terraform releases add fields, and the raw document keeps them.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::input::tree;

/// The top-level keys of [`Plan`]: what a policy may name in
/// `terraform_plan: [...]` (see [`export_policy!`](crate::export_policy)).
pub const PLAN_KEYS: [&str; 15] = [
    "format_version",
    "terraform_version",
    "variables",
    "resource_changes",
    "resource_drift",
    "output_changes",
    "planned_values",
    "prior_state",
    "configuration",
    "relevant_attributes",
    "checks",
    "applyable",
    "complete",
    "errored",
    "timestamp",
];

/// The values of a resource change a policy may name in `change_values:
/// [...]` (see [`export_policy!`](crate::export_policy)): the members of
/// [`Change`] that hold the resource's attributes or their markers. A policy
/// that declares the ones it reads gets every entry of `resource_changes` and
/// `resource_drift` without the others (they read as absent); everything else
/// of a change (`actions`, `replace_paths`, ...) it always gets.
pub const CHANGE_VALUES: [&str; 5] = [
    "before",
    "after",
    "after_unknown",
    "before_sensitive",
    "after_sensitive",
];

/// The plan as `terraform show -json` prints it. A policy that declares the
/// keys it reads (`terraform_plan: [...]`) gets only those (and the format
/// and terraform versions); the others read as absent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan<'a> {
    #[serde(borrow, default)]
    pub format_version: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub terraform_version: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub variables: BTreeMap<Cow<'a, str>, Variable<'a>>,
    #[serde(borrow, default)]
    pub resource_changes: Vec<ResourceChange<'a>>,
    /// Changes made outside terraform since the last apply; *not* planned actions.
    #[serde(borrow, default)]
    pub resource_drift: Vec<ResourceChange<'a>>,
    #[serde(borrow, default)]
    pub output_changes: BTreeMap<Cow<'a, str>, Change<'a>>,
    #[serde(borrow, default)]
    pub planned_values: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub prior_state: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub configuration: Option<Configuration<'a>>,
    #[serde(borrow, default)]
    pub relevant_attributes: Vec<RelevantAttribute<'a>>,
    #[serde(borrow, default)]
    pub checks: Option<&'a RawValue>,
    #[serde(default)]
    pub applyable: Option<bool>,
    #[serde(default)]
    pub complete: Option<bool>,
    #[serde(default)]
    pub errored: Option<bool>,
    #[serde(borrow, default)]
    pub timestamp: Option<Cow<'a, str>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Variable<'a> {
    #[serde(borrow, default)]
    pub value: Option<&'a RawValue>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RelevantAttribute<'a> {
    #[serde(borrow)]
    pub resource: Cow<'a, str>,
    #[serde(borrow)]
    pub attribute: &'a RawValue,
}

/// One entry of `resource_changes` (or `resource_drift`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResourceChange<'a> {
    /// Empty only in `resource_drift` entries of terraform 1.0, which omit it.
    #[serde(borrow, default)]
    pub address: Cow<'a, str>,
    /// Where the resource was before a `moved` block; a move is not a delete.
    #[serde(borrow, default)]
    pub previous_address: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub module_address: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub mode: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "type")]
    pub resource_type: Cow<'a, str>,
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    /// `count` index (number) or `for_each` key (string).
    #[serde(borrow, default)]
    pub index: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub deposed: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub provider_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub change: Change<'a>,
    /// Why terraform chose the action, e.g. `replace_because_cannot_update`.
    #[serde(borrow, default)]
    pub action_reason: Option<Cow<'a, str>>,
}

impl ResourceChange<'_> {
    /// `data` sources are read, never changed.
    pub fn is_managed(&self) -> bool {
        self.mode.as_deref() != Some("data")
    }
}

/// A planned change: what terraform will do and the values before and after.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Change<'a> {
    pub actions: Actions,
    #[serde(borrow, default)]
    pub before: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub after: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub after_unknown: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub before_sensitive: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub after_sensitive: Option<&'a RawValue>,
    /// Attribute paths that force the replacement.
    #[serde(borrow, default)]
    pub replace_paths: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub importing: Option<&'a RawValue>,
}

impl Change<'_> {
    /// `before` as a JSON tree (null when the resource does not exist yet).
    pub fn before_value(&self) -> serde_json::Value {
        self.before
            .map_or(serde_json::Value::Null, |r| tree(r.get(), "change.before"))
    }

    /// `after` as a JSON tree; attributes unknown until apply are absent.
    pub fn after_value(&self) -> serde_json::Value {
        self.after
            .map_or(serde_json::Value::Null, |r| tree(r.get(), "change.after"))
    }
}

/// One element of `change.actions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    NoOp,
    Create,
    Read,
    Update,
    Delete,
    /// Removed from state without being destroyed (`removed` block, terraform 1.7+).
    Forget,
    /// An action this SDK does not know yet (a newer terraform).
    #[serde(other)]
    Unknown,
}

/// The action list of a change, with the shapes terraform uses named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Actions(pub Vec<Action>);

impl Actions {
    fn has(&self, a: Action) -> bool {
        self.0.contains(&a)
    }

    pub fn is_no_op(&self) -> bool {
        self.0 == [Action::NoOp]
    }

    pub fn is_create(&self) -> bool {
        self.0 == [Action::Create]
    }

    pub fn is_read(&self) -> bool {
        self.0 == [Action::Read]
    }

    pub fn is_update(&self) -> bool {
        self.0 == [Action::Update]
    }

    /// A pure delete (`["delete"]`), not a replacement.
    pub fn is_delete(&self) -> bool {
        self.0 == [Action::Delete]
    }

    pub fn is_forget(&self) -> bool {
        self.0 == [Action::Forget]
    }

    /// Delete-then-create or create-then-delete (`create_before_destroy`).
    pub fn is_replace(&self) -> bool {
        self.0.len() == 2 && self.has(Action::Create) && self.has(Action::Delete)
    }

    /// The existing object is destroyed: a delete or either kind of replacement.
    pub fn destroys(&self) -> bool {
        self.has(Action::Delete)
    }

    /// Short name as terraform's plan summary says it.
    pub fn summary(&self) -> &'static str {
        if self.is_replace() {
            "replace"
        } else {
            match self.0.as_slice() {
                [Action::NoOp] => "no-op",
                [Action::Create] => "create",
                [Action::Read] => "read",
                [Action::Update] => "update",
                [Action::Delete] => "delete",
                [Action::Forget] => "forget",
                _ => "unknown",
            }
        }
    }
}

/// `configuration`: enough to map resources to modules and providers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Configuration<'a> {
    #[serde(borrow, default)]
    pub provider_config: BTreeMap<Cow<'a, str>, ProviderConfig<'a>>,
    #[serde(borrow, default)]
    pub root_module: Option<ConfigModule<'a>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProviderConfig<'a> {
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    #[serde(borrow, default)]
    pub full_name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub alias: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub module_address: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub version_constraint: Option<Cow<'a, str>>,
    /// Provider arguments; hard-coded credentials show up here as `constant_value`.
    #[serde(borrow, default)]
    pub expressions: Option<&'a RawValue>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfigModule<'a> {
    #[serde(borrow, default)]
    pub resources: Vec<ConfigResource<'a>>,
    #[serde(borrow, default)]
    pub module_calls: BTreeMap<Cow<'a, str>, ModuleCall<'a>>,
    #[serde(borrow, default)]
    pub outputs: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub variables: Option<&'a RawValue>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModuleCall<'a> {
    #[serde(borrow, default)]
    pub source: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub module: Option<ConfigModule<'a>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfigResource<'a> {
    #[serde(borrow)]
    pub address: Cow<'a, str>,
    #[serde(borrow, default)]
    pub mode: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "type")]
    pub resource_type: Cow<'a, str>,
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    #[serde(borrow, default)]
    pub provider_config_key: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub expressions: Option<&'a RawValue>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actions(json: &str) -> Actions {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn plan_keys_are_the_plans_fields() {
        let plan: Plan = serde_json::from_str("{}").unwrap();
        let value = serde_json::to_value(&plan).unwrap();
        let mut fields: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        let mut keys = PLAN_KEYS.to_vec();
        fields.sort();
        keys.sort();
        assert_eq!(fields, keys);
    }

    #[test]
    fn action_shapes_are_named_as_terraform_does() {
        assert!(actions(r#"["delete","create"]"#).is_replace());
        assert!(actions(r#"["create","delete"]"#).is_replace());
        assert!(actions(r#"["delete"]"#).is_delete());
        assert!(!actions(r#"["forget"]"#).destroys());
        assert!(actions(r#"["create","delete"]"#).destroys());
        assert_eq!(actions(r#"["no-op"]"#).summary(), "no-op");
        assert_eq!(actions(r#"["teleport"]"#).0, vec![Action::Unknown]);
    }

    #[test]
    fn escaped_strings_are_owned_and_plain_ones_borrowed() {
        let json = r#"{"address":"module.files.local_file.foo[\"a\"]","type":"local_file","name":"foo","change":{"actions":["create"],"before":null,"after":{"x":1}}}"#;
        let rc: ResourceChange = serde_json::from_str(json).unwrap();
        assert_eq!(rc.address, "module.files.local_file.foo[\"a\"]");
        assert!(matches!(rc.address, Cow::Owned(_)));
        assert!(matches!(rc.resource_type, Cow::Borrowed(_)));
        assert!(rc.change.before.is_none());
        assert_eq!(rc.change.after_value()["x"], 1);
    }

    fn change(after: &str) -> ResourceChange<'_> {
        serde_json::from_str(after).unwrap()
    }

    #[test]
    fn a_number_just_below_the_largest_float_is_read_as_the_host_reads_it() {
        // Not correctly rounded, serde_json makes this one infinite and refuses
        // it; the host's check finds it finite and lets it through.
        let json = r#"{"address":"a.b","type":"a","name":"b","change":{"actions":["create"],"after":{"password":"p","n":1.7976931348623158e308}}}"#;
        let after = change(json).change.after_value();
        assert_eq!(after["n"].as_f64(), Some(f64::MAX));
        assert_eq!(after["password"], "p");
    }

    #[test]
    #[should_panic(expected = "change.after cannot be read")]
    fn a_value_the_policy_cannot_read_fails_it_instead_of_reading_null() {
        // A raw value is not range-checked; 1e400 is no float at all.
        let json = r#"{"address":"a.b","type":"a","name":"b","change":{"actions":["create"],"after":{"password":"p","n":1e400}}}"#;
        change(json).change.after_value();
    }
}
