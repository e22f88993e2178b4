//! A plan bundle's policy results (`results.json`): what each policy said,
//! its enforcement level, and whether it blocks. One of the bundle's files,
//! covered by the digest, so a report or an override can trust them (apply
//! re-evaluates anyway).

use serde::{Deserialize, Serialize};

use super::bundle::{Bundle, BundleBuilder, BundleError, RESULTS};
use super::records::OverrideRecord;
use crate::config::Enforcement;
use crate::engine::{Evaluation, Failure};
use crate::redact::Redactor;

/// One policy's verdict on one plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Decision {
    pub policy: String,
    pub enforcement: Enforcement,
    pub sha256: String,
    /// A deny violation, or the policy failed (fail closed).
    pub denied: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overridden_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_reason: Option<String>,
    /// Denied and mandatory and not overridden: the deploy may not go ahead.
    pub blocks: bool,
    pub evaluation: Evaluation,
    pub violations: Vec<policy_sdk::Violation>,
}

/// `results.json` of a bundle.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    /// The bundle's digest; not in the file, which the digest itself covers.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub digest: String,
    pub evaluated_at: String,
    pub decisions: Vec<Decision>,
}

impl Decision {
    /// A policy's verdict at its enforcement level: a denial blocks unless the
    /// policy is advisory or in shadow, or soft-mandatory with an override
    /// logged.
    pub fn new(
        policy: &str,
        enforcement: Enforcement,
        evaluation: Evaluation,
        overrides: &[OverrideRecord],
    ) -> Decision {
        let denied = evaluation.denies();
        let mut decision = Decision {
            policy: policy.to_string(),
            enforcement,
            sha256: evaluation.sha256.clone(),
            denied,
            overridden_by: None,
            override_reason: None,
            blocks: denied && !matches!(enforcement, Enforcement::Advisory | Enforcement::Shadow),
            violations: evaluation.violations(),
            evaluation,
        };
        decision.apply_overrides(overrides);
        decision
    }

    /// An override an approver logged for this policy lifts a soft-mandatory
    /// denial (the first one logged says by whom and why); it lifts nothing
    /// else.
    pub fn apply_overrides(&mut self, overrides: &[OverrideRecord]) {
        if self.enforcement != Enforcement::SoftMandatory {
            return;
        }
        let Some(o) = overrides.iter().find(|o| o.policy == self.policy) else {
            return;
        };
        self.overridden_by.get_or_insert_with(|| o.approver.clone());
        self.override_reason.get_or_insert_with(|| o.reason.clone());
        self.blocks = false;
    }

    /// Why the policy could not run, when it could not: a denial (fail
    /// closed), reported as `failed` rather than as a verdict of the policy.
    pub fn failure(&self) -> Option<&Failure> {
        self.evaluation.failure()
    }

    /// Scrubs the free text of the violations and of the recorded evaluation.
    /// Only free text: a short secret (`cafe`, `2024`) would otherwise also
    /// mask part of a module's sha256, a policy name or an enum word.
    pub fn scrub(&mut self, redactor: &Redactor) {
        redactor.scrub_violations(&mut self.violations);
        self.evaluation.scrub(redactor);
    }
}

/// The decisions with their free text scrubbed of the redactor's secrets.
pub fn scrubbed(decisions: &[Decision], redactor: &Redactor) -> Vec<Decision> {
    let mut decisions = decisions.to_vec();
    if !redactor.is_empty() {
        decisions.iter_mut().for_each(|d| d.scrub(redactor));
    }
    decisions
}

impl Results {
    pub fn blocking(&self) -> Vec<&Decision> {
        self.decisions.iter().filter(|d| d.blocks).collect()
    }
}

impl BundleBuilder {
    /// Adds the policy results to the bundle being written; their `digest`
    /// is the bundle's, known only once it is sealed ([`Bundle::read_results`]
    /// fills it in).
    pub fn add_results(&mut self, results: &Results) -> Result<(), BundleError> {
        let json = serde_json::to_vec_pretty(results).expect("results serialize");
        self.add_file(RESULTS, &json)
    }
}

impl Bundle {
    /// The policy results sealed in the bundle; results the digest does not
    /// cover (a bundle made by an older opsdeploy) are refused, naming the file.
    pub fn read_results(&self) -> Result<Results, BundleError> {
        if !self.manifest.files.iter().any(|f| f.path == RESULTS) {
            return Err(self.unreadable(
                RESULTS,
                "it is not covered by the plan's digest (a plan made by an older opsdeploy); plan again",
            ));
        }
        let mut results: Results = serde_json::from_slice(&self.read(RESULTS)?)
            .map_err(|e| self.unreadable(RESULTS, e))?;
        results.digest = self.digest.clone();
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{FailureKind, LogLevel, LogLine, Outcome};
    use policy_sdk::Violation;

    fn evaluation(denies: bool) -> Evaluation {
        let v = if denies {
            Violation::deny("rule", "denied")
        } else {
            Violation::warn("rule", "noted")
        };
        Evaluation {
            policy: "p".into(),
            sha256: "0".repeat(64),
            outcome: Outcome::Completed {
                violations: vec![v],
            },
            fuel_used: Some(0),
            duration_ms: std::time::Duration::ZERO,
            logs: Vec::new(),
        }
    }

    #[test]
    fn a_denial_blocks_unless_advisory_or_shadow_and_an_override_lifts_only_a_soft_mandatory_one() {
        let ov = OverrideRecord {
            seq: 1,
            policy: "p".into(),
            approver: "bob@example.com".into(),
            reason: "accepted".into(),
            at: "2026-01-01T00:00:00Z".into(),
        };
        let other = OverrideRecord {
            policy: "q".into(),
            ..ov.clone()
        };
        let blocks = |e: Enforcement, denies: bool, overrides: &[OverrideRecord]| {
            Decision::new("p", e, evaluation(denies), overrides).blocks
        };
        assert!(!blocks(Enforcement::Advisory, true, &[]));
        assert!(!blocks(Enforcement::Shadow, true, &[]));
        assert!(blocks(Enforcement::SoftMandatory, true, &[]));
        assert!(blocks(Enforcement::HardMandatory, true, &[]));
        assert!(!blocks(Enforcement::SoftMandatory, false, &[]));
        assert!(!blocks(
            Enforcement::SoftMandatory,
            true,
            std::slice::from_ref(&ov)
        ));
        assert!(blocks(
            Enforcement::SoftMandatory,
            true,
            std::slice::from_ref(&other)
        ));
        assert!(blocks(
            Enforcement::HardMandatory,
            true,
            std::slice::from_ref(&ov)
        ));

        // An override logged after the plan lifts the stored decision the same way.
        let mut planned = Decision::new("p", Enforcement::SoftMandatory, evaluation(true), &[]);
        planned.apply_overrides(&[ov]);
        assert!(!planned.blocks && planned.denied);
        assert_eq!(planned.overridden_by.as_deref(), Some("bob@example.com"));
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
            enforcement: Enforcement::HardMandatory,
            sha256: format!("{}cafe", "0".repeat(60)),
            denied: true,
            overridden_by: None,
            override_reason: None,
            blocks: true,
            evaluation: Evaluation {
                policy: "no-secrets".into(),
                sha256: format!("{}cafe", "0".repeat(60)),
                outcome: Outcome::Failed(Failure {
                    kind: FailureKind::Trap,
                    reason: "trap near cafe".into(),
                }),
                fuel_used: Some(0),
                duration_ms: std::time::Duration::ZERO,
                logs: vec![LogLine {
                    level: LogLevel::Info,
                    message: "saw cafe".into(),
                }],
            },
            violations: vec![v],
        };
        let out = scrubbed(std::slice::from_ref(&d), &r).remove(0);
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
        assert_eq!(out.evaluation.sha256, d.sha256);
        assert_eq!(out.failure().unwrap().reason, "trap near ****(4 chars)");
        assert_eq!(out.evaluation.logs[0].message, "saw ****(4 chars)");
        // And the record still reads back as what it is.
        let json = serde_json::to_string(&out).unwrap();
        let back: Decision = serde_json::from_str(&json).unwrap();
        assert_eq!(back.evaluation, out.evaluation);
    }
}
