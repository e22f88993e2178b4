//! Secret values a report must never show, and their removal.
//!
//! Policies and tools are supposed to report keys and locations, never values,
//! but a careless policy message or a tool's excerpt can still echo one. The
//! values terraform itself marks sensitive are known at report time, so every
//! string of a report is scrubbed of them before any format is written.
//!
//! Which values those are is read from the plan's own markers without a tree
//! of the plan: attribute values stay raw JSON and only what a `true` marker
//! covers is decoded, string by string ([`marked`], [`strings`];
//! `adapters::plan_outline` finds the markers in one borrowed pass).

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

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
    /// A redactor for these values (e.g. what a terraform plan marks
    /// sensitive, `adapters::terraform::PlanJson::sensitive_values`).
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

/// The strings of `values` under markers that are `true` (terraform's
/// `*_sensitive` / `sensitive_values`), walking objects and arrays in
/// parallel. Markers are small; values are only decoded where a marker
/// covers them.
pub(crate) fn marked(values: Option<&RawValue>, marks: Option<&RawValue>, found: &mut Vec<String>) {
    let (Some(values), Some(marks)) = (values, marks) else {
        return;
    };
    // Most markers hold no `true` at all (`{}`, `false`, lists of `false`).
    if !marks.get().contains("true") {
        return;
    }
    let Ok(marks) = serde_json::from_str::<serde_json::Value>(marks.get()) else {
        return;
    };
    walk_marked(values, &marks, found);
}

fn walk_marked(values: &RawValue, marks: &serde_json::Value, found: &mut Vec<String>) {
    use serde_json::Value;
    match marks {
        Value::Bool(true) => strings(Some(values), found),
        Value::Object(m) => {
            if let Ok(fields) = serde_json::from_str::<BTreeMap<Cow<str>, &RawValue>>(values.get())
            {
                for (k, mark) in m {
                    if let Some(v) = fields.get(k.as_str()) {
                        walk_marked(v, mark, found);
                    }
                }
            }
        }
        Value::Array(m) => {
            if let Ok(items) = serde_json::from_str::<Vec<&RawValue>>(values.get()) {
                for (v, mark) in items.iter().zip(m) {
                    walk_marked(v, mark, found);
                }
            }
        }
        _ => {}
    }
}

/// Every string leaf of a value (keys excluded), decoded one by one.
pub(crate) fn strings(value: Option<&RawValue>, found: &mut Vec<String>) {
    if let Some(value) = value {
        let mut de = serde_json::Deserializer::from_str(value.get());
        // The text passed the host's JSON check; a failure here only loses nothing.
        let _ = de.deserialize_any(Strings(found));
    }
}

/// Collects the strings of a value, keys excluded, without a tree.
struct Strings<'f>(&'f mut Vec<String>);

impl<'de> serde::de::DeserializeSeed<'de> for Strings<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strings<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, s: &str) -> Result<(), E> {
        self.0.push(s.to_string());
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Strings(self.0))?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value_seed(Strings(self.0))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_string()).unwrap()
    }

    fn marked_strings(values: &str, marks: &str) -> Vec<String> {
        let mut found = Vec::new();
        marked(Some(&raw(values)), Some(&raw(marks)), &mut found);
        found.sort();
        found
    }

    #[test]
    fn only_what_a_true_marker_covers_is_taken() {
        let values = r#"{"password": "hunter2", "tags": ["public", "nested-secret"], "port": 5432,
            "list": [{"k": "not-this"}, {"k": "but-this", "o": "and-not"}], "whole": {"a": ["x-1234", 7]}}"#;
        let marks = r#"{"password": true, "tags": [false, true], "list": [{}, {"k": true}],
            "absent": true, "port": true, "whole": true}"#;
        assert_eq!(
            marked_strings(values, marks),
            ["but-this", "hunter2", "nested-secret", "x-1234"]
        );
        assert!(marked_strings(values, r#"{"password": false, "tags": [false]}"#).is_empty());
    }

    #[test]
    fn escaped_strings_are_decoded_and_keys_are_not_values() {
        assert_eq!(
            marked_strings(r#"{"p": {"key-name": "pa\"ss\u00e9"}}"#, r#"{"p": true}"#),
            ["pa\"ssé"]
        );
    }

    #[test]
    fn values_that_do_not_match_their_markers_give_nothing_rather_than_fail() {
        assert!(marked_strings(r#""a-string""#, r#"{"k": true}"#).is_empty());
        assert!(marked_strings(r#"{"k": "v-123"}"#, "[true]").is_empty());
        let mut found = Vec::new();
        marked(None, Some(&raw("true")), &mut found);
        marked(Some(&raw(r#""s-123""#)), None, &mut found);
        assert!(found.is_empty());
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
