//! What of a terraform plan a policy is given: the top-level keys it reads
//! and, of every resource change, the values it reads (its metadata's
//! `terraform_plan` and `terraform_change_values`). The plan stays as
//! terraform wrote it; a view is pieces of that text, with the members a
//! policy does not read cut out — never a re-serialized plan.

use std::ops::Range;

/// A value of a resource change (`policy_sdk::terraform::CHANGE_VALUES`):
/// the resource's attributes before and after, or their markers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeValue {
    Before,
    After,
    AfterUnknown,
    BeforeSensitive,
    AfterSensitive,
}

impl ChangeValue {
    pub const ALL: [ChangeValue; 5] = [
        ChangeValue::Before,
        ChangeValue::After,
        ChangeValue::AfterUnknown,
        ChangeValue::BeforeSensitive,
        ChangeValue::AfterSensitive,
    ];

    pub fn as_str(self) -> &'static str {
        policy_sdk::terraform::CHANGE_VALUES[self as usize]
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == name)
    }

    /// Every set of values a policy may declare (all 32), for the tests that
    /// try each.
    pub fn every_set() -> impl Iterator<Item = Vec<ChangeValue>> {
        (0..1u32 << Self::ALL.len()).map(|mask| {
            Self::ALL
                .into_iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, v)| v)
                .collect()
        })
    }
}

/// Plan keys every policy reading `terraform` gets, whatever it declares.
const ALWAYS_PLAN_KEYS: [&str; 2] = ["format_version", "terraform_version"];

/// What a policy reads of a plan; `None` means all of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanView {
    /// Top-level keys (format and terraform versions always).
    pub keys: Option<Vec<String>>,
    /// Values of each entry of `resource_changes` and `resource_drift`.
    pub change_values: Option<Vec<ChangeValue>>,
}

impl PlanView {
    pub fn wants_key(&self, key: &str) -> bool {
        ALWAYS_PLAN_KEYS.contains(&key)
            || self
                .keys
                .as_ref()
                .is_none_or(|k| k.iter().any(|k| k == key))
    }

    pub fn wants_value(&self, value: ChangeValue) -> bool {
        self.change_values
            .as_ref()
            .is_none_or(|v| v.contains(&value))
    }
}

/// The byte ranges of `text` to leave out so that none of the change values
/// `values` lists (each `(kind, range of the value)`, in document order)
/// that `drop` names remains, each taken with its key and the comma that
/// separated it, so what is left is valid JSON. `text` must be JSON the host
/// checked and the ranges values of object members in it; a range that is
/// not is kept (a policy then gets more than it asked for, never less).
pub fn cuts(
    text: &str,
    values: &[(ChangeValue, Range<usize>)],
    drop: impl Fn(ChangeValue) -> bool,
) -> Vec<Range<usize>> {
    let b = text.as_bytes();
    let mut out: Vec<Range<usize>> = Vec::new();
    for (_, value) in values.iter().filter(|(kind, _)| drop(*kind)) {
        let Some(key) = key_start(b, value.start) else {
            continue;
        };
        let (Some(before), Some(after)) = (last_token(b, key), next_token(b, value.end)) else {
            continue;
        };
        // The comma before the member, unless the previous cut took it
        // (that member was the first of this object).
        let comma_free = out.last().is_none_or(|c| c.end <= before);
        let cut = if b[before] == b',' && comma_free {
            before..value.end
        } else if b[after] == b',' {
            key..next_token(b, after + 1).unwrap_or(after + 1)
        } else {
            key..value.end
        };
        out.push(cut);
    }
    out
}

/// Where the key of the member whose value starts at `value` starts (its
/// opening quote).
fn key_start(b: &[u8], value: usize) -> Option<usize> {
    let colon = last_token(b, value)?;
    if b[colon] != b':' {
        return None;
    }
    let close = last_token(b, colon)?;
    if b[close] != b'"' {
        return None;
    }
    // The opening quote: the nearest `"` not escaped (preceded by an even
    // number of backslashes); a checked key holds no other.
    let mut i = close;
    while i > 0 {
        i -= 1;
        if b[i] == b'"' {
            let backslashes = b[..i].iter().rev().take_while(|&&c| c == b'\\').count();
            if backslashes % 2 == 0 {
                return Some(i);
            }
        }
    }
    None
}

/// The last byte before `at` that is not JSON whitespace.
fn last_token(b: &[u8], at: usize) -> Option<usize> {
    b[..at]
        .iter()
        .rposition(|c| !matches!(c, b' ' | b'\n' | b'\t' | b'\r'))
}

/// The first byte from `at` that is not JSON whitespace.
fn next_token(b: &[u8], at: usize) -> Option<usize> {
    b.get(at..)?
        .iter()
        .position(|c| !matches!(c, b' ' | b'\n' | b'\t' | b'\r'))
        .map(|p| at + p)
}

/// `text[range]` as pieces, without what `cuts` (sorted, disjoint) removes.
pub fn pieces<'a>(
    text: &'a str,
    range: Range<usize>,
    cuts: &[Range<usize>],
    out: &mut Vec<&'a [u8]>,
) {
    let first = cuts.partition_point(|c| c.end <= range.start);
    let mut at = range.start;
    for cut in cuts[first..].iter().take_while(|c| c.start < range.end) {
        out.push(&text.as_bytes()[at..cut.start]);
        at = cut.end;
    }
    out.push(&text.as_bytes()[at..range.end]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The change values of every `change` object of `text`, as the host's
    /// outline finds them (borrowed raw values, located by address).
    fn located(text: &str) -> Vec<(ChangeValue, Range<usize>)> {
        #[derive(serde::Deserialize)]
        struct Rc<'a> {
            #[serde(borrow)]
            change: policy_sdk::terraform::Change<'a>,
        }
        let rcs: Vec<Rc> = serde_json::from_str(text).unwrap();
        let base = text.as_ptr() as usize;
        let mut out = Vec::new();
        for rc in &rcs {
            let c = &rc.change;
            let all = [
                c.before,
                c.after,
                c.after_unknown,
                c.before_sensitive,
                c.after_sensitive,
            ];
            for (kind, raw) in ChangeValue::ALL.into_iter().zip(all) {
                if let Some(raw) = raw {
                    let start = raw.get().as_ptr() as usize - base;
                    out.push((kind, start..start + raw.get().len()));
                }
            }
        }
        out.sort_by_key(|(_, r)| r.start);
        out
    }

    fn view(text: &str, keep: &[ChangeValue]) -> String {
        let values = located(text);
        let cuts = cuts(text, &values, |v| !keep.contains(&v));
        let mut out = Vec::new();
        pieces(text, 0..text.len(), &cuts, &mut out);
        String::from_utf8(out.concat()).unwrap()
    }

    /// What the view must equal: the same changes, parsed, without the members.
    fn expected(text: &str, keep: &[ChangeValue]) -> serde_json::Value {
        let mut v: serde_json::Value = serde_json::from_str(text).unwrap();
        for rc in v.as_array_mut().unwrap() {
            let change = rc["change"].as_object_mut().unwrap();
            for kind in ChangeValue::ALL.into_iter().filter(|k| !keep.contains(k)) {
                // `null` reads as absent in the SDK and is not cut: keep it.
                if change.get(kind.as_str()).is_some_and(|v| !v.is_null()) {
                    change.remove(kind.as_str());
                }
            }
        }
        v
    }

    const CHANGES: &str = r#"[
      {"address":"a.b","change":{"before":{"k":"v"},"after":{"k":"w"},"actions":["update"],"after_unknown":{},"before_sensitive":{},"after_sensitive":{"k":true}}},
      {"change" : { "actions" : ["create"] , "before" : null , "after" : {"s":"\"after\":{}"} , "after_unknown" : {"x":true} }, "address":"c.d"},
      {"address":"e.f","change":{"after_sensitive":false,"before_sensitive":false,"after_unknown":{},"after":[1,{"before":2}],"before":"x","actions":["delete"]}},
      {"address":"g.h","change":{"be\u0066ore":{"esc":"\\\""},"actions":["no-op"],"a\"fter":1}},
      {"address":"i.j","change":{"after":{},"actions":[]}},
      {"address":"m.n","change":{"actions":[],"after":{}}},
      {"address":"k.l","change":{"actions":[],"after_sensitive":{}}}
    ]"#;

    #[test]
    fn every_subset_of_change_values_leaves_valid_json_without_the_others() {
        // All 32 subsets: members first, last, alone, adjacent, spaced out,
        // keys written with escapes, values holding what looks like a key.
        for keep in ChangeValue::every_set() {
            let got = view(CHANGES, &keep);
            let parsed: serde_json::Value = serde_json::from_str(&got)
                .unwrap_or_else(|e| panic!("keeping {keep:?}: {e}\n{got}"));
            assert_eq!(parsed, expected(CHANGES, &keep), "keeping {keep:?}");
        }
    }

    #[test]
    fn keeping_everything_cuts_nothing() {
        assert_eq!(view(CHANGES, &ChangeValue::ALL), CHANGES);
    }

    #[test]
    fn the_names_are_the_sdks() {
        let names: Vec<&str> = ChangeValue::ALL
            .into_iter()
            .map(ChangeValue::as_str)
            .collect();
        assert_eq!(names, policy_sdk::terraform::CHANGE_VALUES);
        assert_eq!(
            ChangeValue::parse("after_unknown"),
            Some(ChangeValue::AfterUnknown)
        );
        assert_eq!(ChangeValue::parse("afterr"), None);
    }

    #[test]
    fn a_range_that_is_not_a_members_value_is_kept() {
        let text = r#"["after",{"after":1}]"#;
        // The string at 1..8 is an array element, not a member's value.
        let cuts = cuts(text, &[(ChangeValue::After, 1..8)], |_| true);
        assert!(cuts.is_empty());
    }
}
