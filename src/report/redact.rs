//! Secret values a report must never show, and their removal.
//!
//! Policies and tools are supposed to report keys and locations, never values,
//! but a careless policy message or a tool's excerpt can still echo one. The
//! values terraform itself marks sensitive are known at report time, so every
//! string of a report is scrubbed of them before any format is written.

use serde_json::Value;

use policy_sdk::Violation;

use crate::engine::{Evaluation, Outcome};
use crate::workflow::policies::Decision;

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

    /// `text` with every secret replaced by `****` and its length, as STYLE.md
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

    /// Decisions with their violations and the free text of their recorded
    /// evaluation (violations, failure reason, logs) scrubbed.
    pub fn scrub_decisions(&self, decisions: &[Decision]) -> Vec<Decision> {
        let mut decisions = decisions.to_vec();
        if self.is_empty() {
            return decisions;
        }
        for d in &mut decisions {
            self.scrub_violations(&mut d.violations);
            let e = &mut d.evaluation;
            self.scrub_at(&mut e["reason"]);
            for v in e["violations"].as_array_mut().into_iter().flatten() {
                for field in ["message", "address", "path"] {
                    self.scrub_at(&mut v[field]);
                }
            }
            for log in e["logs"].as_array_mut().into_iter().flatten() {
                self.scrub_at(&mut log["message"]);
            }
        }
        decisions
    }

    /// Scrubs `value` if it is a string (a missing field stays missing).
    pub fn scrub_at(&self, value: &mut Value) {
        if let Value::String(s) = value {
            *s = self.scrub(s);
        }
    }

    /// An evaluation with its violations, failure reason and logs scrubbed.
    pub fn scrub_evaluation(&self, e: &Evaluation) -> Evaluation {
        let mut e = e.clone();
        if self.is_empty() {
            return e;
        }
        match &mut e.outcome {
            Outcome::Completed { violations } => self.scrub_violations(violations),
            Outcome::Failed(f) => f.reason = self.scrub(&f.reason),
        }
        for log in &mut e.logs {
            log.message = self.scrub(&log.message);
        }
        e
    }
}

/// How a secret is shown: `****` and its length in characters.
fn mask(secret: &str) -> String {
    format!("****({} chars)", secret.chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_secret_containing_another_is_replaced_whole() {
        let r = Redactor::from_values(["abcd".to_string(), "abcdefgh".to_string(), "ab".into()]);
        assert_eq!(
            r.scrub("x abcdefgh y abcd ab"),
            "x ****(8 chars) y ****(4 chars) ab"
        );
    }

    #[test]
    fn short_secrets_mask_free_text_but_never_hashes_names_or_enum_words() {
        // Sensitive values that also occur in a sha256, a policy name and the
        // severity and status words of the record.
        let r = Redactor::from_values(["cafe", "deny", "secrets", "failed"].map(String::from));
        let mut v = Violation::deny("rule", "password cafe is in the clear");
        v.address = Some("aws_db_instance.cafe".into());
        let d = Decision {
            policy: "no-secrets".into(),
            enforcement: crate::config::Enforcement::HardMandatory,
            sha256: format!("{}cafe", "0".repeat(60)),
            denied: true,
            overridden_by: None,
            override_reason: None,
            blocks: true,
            evaluation: json!({"policy": "no-secrets", "status": "failed", "reason": "trap near cafe",
                "logs": [{"level": "info", "message": "saw cafe"}]}),
            violations: vec![v],
        };
        let out = r.scrub_decisions(std::slice::from_ref(&d)).remove(0);
        assert_eq!(out.policy, "no-secrets");
        assert_eq!(out.sha256, d.sha256);
        assert_eq!(out.violations[0].severity, policy_sdk::Severity::Deny);
        assert_eq!(
            out.violations[0].message,
            "password ****(4 chars) is in the clear"
        );
        assert_eq!(
            out.violations[0].address.as_deref(),
            Some("aws_db_instance.****(4 chars)")
        );
        assert_eq!(out.evaluation["status"], "failed");
        assert_eq!(out.evaluation["reason"], "trap near ****(4 chars)");
        assert_eq!(out.evaluation["logs"][0]["message"], "saw ****(4 chars)");
    }
}
