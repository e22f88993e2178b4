//! What a terraform plan changes, resource by resource, as an approver reads
//! it (the way `terraform plan` summarises): address, action (with
//! terraform's reason for a replacement), and for updates and replacements
//! the attributes that change, sensitive values masked.

use serde_json::Value;

use crate::store::summary::{AttributeChange, ResourceChange};

/// Shown instead of a value terraform marks sensitive.
pub const SENSITIVE: &str = "(sensitive value)";
/// Shown for a value terraform knows only after the apply.
pub const UNKNOWN: &str = "(known after apply)";

/// Whether a `*_sensitive` / `after_unknown` marker says anything: `true`,
/// or a structure with `true` somewhere inside.
fn marked(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::Array(a)) => a.iter().any(|v| marked(Some(v))),
        Some(Value::Object(o)) => o.values().any(|v| marked(Some(v))),
        _ => false,
    }
}

fn raw(r: Option<&serde_json::value::RawValue>) -> Value {
    r.and_then(|r| serde_json::from_str(r.get()).ok())
        .unwrap_or(Value::Null)
}

/// Every managed resource the plan changes (no-ops and reads left out), in
/// the plan's order.
pub fn resource_changes(plan: &policy_sdk::terraform::Plan) -> Vec<ResourceChange> {
    plan.resource_changes
        .iter()
        .filter(|rc| {
            rc.is_managed() && !rc.change.actions.is_no_op() && !rc.change.actions.is_read()
        })
        .map(|rc| {
            let actions = &rc.change.actions;
            let changed = if actions.is_update() || actions.is_replace() {
                attribute_changes(&rc.change)
            } else {
                Vec::new()
            };
            ResourceChange {
                address: rc.address.to_string(),
                action: actions.summary().to_string(),
                reason: rc.action_reason.as_deref().map(String::from),
                moved_from: rc
                    .previous_address
                    .as_deref()
                    .filter(|p| *p != rc.address)
                    .map(String::from),
                changed,
            }
        })
        .collect()
}

fn attribute_changes(change: &policy_sdk::terraform::Change) -> Vec<AttributeChange> {
    let before = raw(change.before);
    let after = raw(change.after);
    let (before_s, after_s) = (raw(change.before_sensitive), raw(change.after_sensitive));
    let unknown = raw(change.after_unknown);
    let forcing: Vec<String> = raw(change.replace_paths)
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.get(0).and_then(|f| f.as_str()).map(String::from))
        .collect();
    let empty = serde_json::Map::new();
    let b = before.as_object().unwrap_or(&empty);
    let a = after.as_object().unwrap_or(&empty);
    let mut names: Vec<&String> = b.keys().chain(a.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|name| {
            let is_unknown = marked(unknown.get(name));
            let (old, new) = (b.get(name), a.get(name));
            if old == new && !is_unknown {
                return None;
            }
            let sensitive = marked(before_s.get(name)) || marked(after_s.get(name));
            let shown = |v: Option<&Value>, known: bool| match (sensitive, known) {
                (true, _) => Value::from(SENSITIVE),
                (false, false) => Value::from(UNKNOWN),
                (false, true) => v.cloned().unwrap_or(Value::Null),
            };
            Some(AttributeChange {
                name: name.clone(),
                before: shown(old, true),
                after: shown(new, !is_unknown),
                forces_replacement: forcing.iter().any(|f| f == name),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_list_changed_attributes_with_sensitive_and_unknown_values_masked() {
        let plan = r#"{"resource_changes":[
          {"address":"aws_db_instance.main","type":"aws_db_instance","name":"main","mode":"managed",
           "change":{"actions":["update"],
             "before":{"instance_class":"db.t3.small","password":"hunter2","tags":{"a":"1"},"id":"x"},
             "after":{"instance_class":"db.t3.large","password":"hunter3","tags":{"a":"1"}},
             "after_unknown":{"id":true},
             "before_sensitive":{"password":true},"after_sensitive":{"password":true}}},
          {"address":"aws_instance.web","type":"aws_instance","name":"web","mode":"managed",
           "action_reason":"replace_because_cannot_update",
           "change":{"actions":["delete","create"],"before":{"ami":"a-1"},"after":{"ami":"a-2"},
             "replace_paths":[["ami"]]}},
          {"address":"data.aws_ami.x","type":"aws_ami","name":"x","mode":"data","change":{"actions":["read"]}},
          {"address":"aws_s3_bucket.logs","type":"aws_s3_bucket","name":"logs","mode":"managed","change":{"actions":["no-op"]}},
          {"address":"aws_s3_bucket.old","type":"aws_s3_bucket","name":"old","mode":"managed","change":{"actions":["delete"]}}
        ]}"#;
        let plan: policy_sdk::terraform::Plan = serde_json::from_str(plan).unwrap();
        let changes = resource_changes(&plan);
        let summary: Vec<(&str, &str)> = changes
            .iter()
            .map(|c| (c.address.as_str(), c.action.as_str()))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("aws_db_instance.main", "update"),
                ("aws_instance.web", "replace"),
                ("aws_s3_bucket.old", "delete")
            ]
        );
        let update = &changes[0].changed;
        let names: Vec<&str> = update.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, vec!["id", "instance_class", "password"]);
        assert_eq!(update[0].after, UNKNOWN);
        assert_eq!(update[2].before, SENSITIVE);
        assert_eq!(update[2].after, SENSITIVE);
        let text = serde_json::to_string(&changes).unwrap();
        assert!(!text.contains("hunter"), "{text}");
        assert_eq!(
            changes[1].reason.as_deref(),
            Some("replace_because_cannot_update")
        );
        assert!(changes[1].changed[0].forces_replacement);
    }
}
