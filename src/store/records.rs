//! What each audit log entry records: one typed payload per entry kind.
//!
//! On disk an entry keeps the shape it always had, `"kind"` beside the other
//! content fields and the payload under `"data"` (see `audit.rs`); in memory
//! the two are one [`EntryData`], so a payload is written and read as a type,
//! never by key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::audit::EntryKind;
use super::results::Decision;
use super::summary::PlanSummary;
use crate::config::Enforcement;
use crate::engine::FailureKind;

/// An entry's payload, tagged by its kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data", rename_all = "snake_case")]
pub enum EntryData {
    Plan(PlanData),
    PolicyResults(PolicyResultsData),
    Approval(ApprovalData),
    Override(OverrideData),
    ApplyStart(ApplyStartData),
    ApplyStep(StepData),
    ApplyFinish(ApplyFinishData),
    /// A check of the running deployment (health, smoke test, monitor).
    Health(StepData),
    Rollback(RollbackData),
    Promotion(PromotionData),
    Incident(IncidentData),
    LockTakeover(LockTakeoverData),
}

impl EntryData {
    pub fn kind(&self) -> EntryKind {
        match self {
            EntryData::Plan(_) => EntryKind::Plan,
            EntryData::PolicyResults(_) => EntryKind::PolicyResults,
            EntryData::Approval(_) => EntryKind::Approval,
            EntryData::Override(_) => EntryKind::Override,
            EntryData::ApplyStart(_) => EntryKind::ApplyStart,
            EntryData::ApplyStep(_) => EntryKind::ApplyStep,
            EntryData::ApplyFinish(_) => EntryKind::ApplyFinish,
            EntryData::Health(_) => EntryKind::Health,
            EntryData::Rollback(_) => EntryKind::Rollback,
            EntryData::Promotion(_) => EntryKind::Promotion,
            EntryData::Incident(_) => EntryKind::Incident,
            EntryData::LockTakeover(_) => EntryKind::LockTakeover,
        }
    }

    /// The payload as stored under `"data"`.
    pub(super) fn to_wire(&self) -> serde_json::Value {
        let mut tagged = serde_json::to_value(self).expect("audit data serializes");
        tagged["data"].take()
    }

    /// The payload of an entry of `kind` stored as `data` (absent: `{}`).
    pub(super) fn from_wire(
        kind: EntryKind,
        data: serde_json::Value,
    ) -> Result<EntryData, serde_json::Error> {
        let data = match data {
            serde_json::Value::Null => serde_json::json!({}),
            data => data,
        };
        serde_json::from_value(serde_json::json!({"kind": kind, "data": data}))
    }
}

/// `plan`: a plan bundle was sealed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanData {
    /// The one-line summary, e.g. `3 to add, 0 to change, 0 to replace, 0 to destroy`.
    pub summary: String,
    /// The manifest's summary: counts and lists of what changes.
    #[serde(default)]
    pub counts: PlanSummary,
    #[serde(default)]
    pub git_revision: Option<String>,
    /// The allowed_signers the plan was made with (`approval { signers }`):
    /// who may approve what is then in the log itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signers: Option<PlannedSigners>,
    /// Built-in safety policies turned off for the plan, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies_off: Vec<crate::config::DisabledPolicy>,
}

/// An allowed_signers file as a plan read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedSigners {
    /// As configured, relative to the project.
    pub path: String,
    pub sha256: String,
    pub text: String,
}

/// When a set of policy results was evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvaluatedAt {
    Plan,
    Apply,
    /// A return to an earlier terraform configuration, judged before it runs.
    Rollback,
}

/// `policy_results`: every module's sha256 and verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyResultsData {
    pub at: EvaluatedAt,
    /// `pass`, or `blocked by NAME, NAME`.
    pub verdict: String,
    #[serde(default)]
    pub policies: Vec<PolicyVerdict>,
}

impl PolicyResultsData {
    /// The record of a set of decisions: every module's sha256 and verdict.
    pub fn of(decisions: &[Decision], at: EvaluatedAt) -> PolicyResultsData {
        let blocking: Vec<&str> = decisions
            .iter()
            .filter(|d| d.blocks)
            .map(|d| d.policy.as_str())
            .collect();
        PolicyResultsData {
            at,
            verdict: if blocking.is_empty() {
                "pass".to_string()
            } else {
                format!("blocked by {}", blocking.join(", "))
            },
            policies: decisions
                .iter()
                .map(|d| PolicyVerdict {
                    policy: d.policy.clone(),
                    sha256: d.sha256.clone(),
                    enforcement: d.enforcement,
                    denied: d.denied,
                    blocks: d.blocks,
                    overridden_by: d.overridden_by.clone(),
                    violations: d.violations.len(),
                    fuel_used: d.evaluation.fuel_used,
                    duration_ms: Some(d.evaluation.duration_ms.as_secs_f64() * 1e3),
                    failure: d.failure().map(|f| f.kind),
                    deployed_sha256: None,
                })
                .collect(),
        }
    }

    pub fn blocked(&self) -> bool {
        self.policies.iter().any(|p| p.blocks)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyVerdict {
    pub policy: String,
    pub sha256: String,
    pub enforcement: Enforcement,
    pub denied: bool,
    pub blocks: bool,
    #[serde(default)]
    pub overridden_by: Option<String>,
    /// How many violations it reported.
    pub violations: usize,
    /// What the evaluation cost, for `status --policies` (absent in entries
    /// written before it was recorded).
    #[serde(default)]
    pub fuel_used: Option<u64>,
    #[serde(default)]
    pub duration_ms: Option<f64>,
    /// Why the policy could not run, when it could not.
    #[serde(default)]
    pub failure: Option<FailureKind>,
    /// At a plan whose module differs from the one evaluated at the
    /// environment's last deployment: that one's sha256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed_sha256: Option<String>,
}

/// `approval`: the actor approved the entry's digest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// With `approval { signers }`: the statement the approver signed.
    #[serde(flatten)]
    pub signed: Option<SignedStatement>,
}

/// `override`: the actor lifted a soft-mandatory denial for the entry's digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverrideData {
    pub policy: String,
    pub reason: String,
    /// A signed override's comment (its statement carries one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(flatten)]
    pub signed: Option<SignedStatement>,
}

/// A signed approval or override: the statement's exact text, its SSH
/// signature, and the key that made it (checked before it was logged).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedStatement {
    pub statement: String,
    pub signature: String,
    /// `SHA256:...` of the signing key.
    #[serde(default)]
    pub key: String,
}

/// `apply_start`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyStartData {
    #[serde(default)]
    pub summary: String,
    /// Fingerprint of the terraform configuration this apply tried, for
    /// promotion's account of what failed where.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terraform_config: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Succeeded,
    Failed,
}

impl StepStatus {
    pub fn from_ok(ok: bool) -> StepStatus {
        if ok {
            StepStatus::Succeeded
        } else {
            StepStatus::Failed
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
        }
    }
}

/// `apply_step` and `health`: one deploy step or check and how it went; the
/// optional fields are those of the step that has them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepData {
    pub step: String,
    pub status: StepStatus,
    #[serde(default)]
    pub detail: String,
    /// The `seq` of the apply's `apply_start` entry.
    #[serde(default)]
    pub apply_seq: Option<u64>,
    /// The check, on `health` entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<policy_sdk::migration::Phase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_revision: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_secs: Option<u64>,
}

impl StepData {
    /// A step with none of the optional fields set.
    pub fn new(step: &str, ok: bool, detail: String, apply_seq: u64) -> StepData {
        StepData {
            step: step.to_string(),
            status: StepStatus::from_ok(ok),
            detail,
            apply_seq: Some(apply_seq),
            check: None,
            migration: None,
            sha256: None,
            phase: None,
            release: None,
            previous_revision: None,
            url: None,
            color: None,
            window_secs: None,
        }
    }
}

/// How an apply ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplyStatus {
    Succeeded,
    /// Failed before changing anything.
    Failed,
    RolledBack,
    RollbackFailed,
}

impl ApplyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ApplyStatus::Succeeded => "succeeded",
            ApplyStatus::Failed => "failed",
            ApplyStatus::RolledBack => "rolled_back",
            ApplyStatus::RollbackFailed => "rollback_failed",
        }
    }
}

/// How a deployment was last found: a health check answered (`Healthy`),
/// every configured check passed but the environment has no health check
/// (`Unverified`), or a check failed (`Unhealthy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Healthy,
    Unverified,
    Unhealthy,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Unverified => "unverified",
            Health::Unhealthy => "unhealthy",
        }
    }
}

/// `apply_finish`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplyFinishData {
    pub status: ApplyStatus,
    #[serde(default)]
    pub healthy: bool,
    /// How the deploy was found (older entries have only `healthy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
    /// The `seq` of the apply's `apply_start` entry.
    #[serde(default)]
    pub apply_seq: Option<u64>,
    /// What a successful apply put in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed: Option<Deployed>,
    /// What failed, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

impl ApplyFinishData {
    /// Its `health`, else what the older `healthy` flag says.
    pub fn health(&self) -> Health {
        self.health.unwrap_or(if self.healthy {
            Health::Healthy
        } else {
            Health::Unhealthy
        })
    }
}

/// Helm releases as opsdeploy last left them: the revision of each release
/// and, blue-green, the colour serving.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveReleases {
    #[serde(default)]
    pub helm_revisions: BTreeMap<String, u64>,
    #[serde(default)]
    pub colors: BTreeMap<String, String>,
}

/// What a successful apply put in place, recorded in its `apply_finish` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployed {
    #[serde(default)]
    pub images: Vec<DeployedImage>,
    #[serde(default)]
    pub charts: Vec<DeployedChart>,
    #[serde(default)]
    pub migrations: Vec<String>,
    /// Helm revision per release after the apply (for rollback).
    #[serde(default)]
    pub helm_revisions: BTreeMap<String, u64>,
    /// Blue-green: the colour now serving, per release.
    #[serde(default)]
    pub colors: BTreeMap<String, String>,
    /// Fingerprint of the terraform configuration deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terraform_config: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployedImage {
    pub reference: String,
    #[serde(default)]
    pub digest: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployedChart {
    pub release: String,
    pub chart: String,
    #[serde(default)]
    pub version: Option<String>,
}

/// `rollback`: a failed apply undoing its steps, or `opsdeploy rollback`
/// restoring an earlier deployment (the entry's digest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackData {
    pub status: StepStatus,
    /// Why a failed apply rolled back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `opsdeploy rollback`: the deployment it rolled back from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// `opsdeploy rollback`, when it succeeded: the deployment that runs now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored: Option<String>,
    #[serde(default)]
    pub steps: Vec<RollbackStep>,
    /// Older entries: what was left in place.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_rolled_back: Vec<String>,
    /// What was undone, kept as compatible by design, and not undone.
    #[serde(default)]
    pub undone: Vec<String>,
    #[serde(default)]
    pub kept: Vec<String>,
    #[serde(default)]
    pub not_undone: Vec<String>,
    /// How the environment answered after the rollback, when checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
    /// The helm releases as the rollback left them (what drift compares).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveReleases>,
    /// `opsdeploy rollback`: which approval rule let it run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_seq: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackStep {
    pub step: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromotionStatus {
    Planned,
    Refused,
}

/// `promotion`: a plan of the entry's environment repeating what runs on `from`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromotionData {
    pub from: String,
    pub from_digest: String,
    pub status: PromotionStatus,
    /// What the plan deploys that `from` does not run (refused when any).
    #[serde(default)]
    pub differences: Vec<String>,
    /// `promote { allow_unverified = true }` let an unverified source through.
    #[serde(default)]
    pub allow_unverified: bool,
}

/// `incident`: a failed deploy or rollback, as the continuity file records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentData {
    pub what: String,
    #[serde(default)]
    pub details: Vec<String>,
}

/// `lock_takeover`: a lock left by a dead process was taken over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockTakeoverData {
    pub previous: String,
    pub since: String,
}

/// An approval of a digest, as read from its entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRecord {
    /// The audit entry it was logged as.
    pub seq: u64,
    pub approver: String,
    pub at: String,
    pub comment: Option<String>,
}

/// An override for a digest, as read from its entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverrideRecord {
    /// The audit entry it was logged as.
    pub seq: u64,
    pub policy: String,
    pub approver: String,
    pub reason: String,
    pub at: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_keep_the_shape_entries_always_had() {
        let data = EntryData::Approval(ApprovalData {
            comment: Some("ok".into()),
            signed: None,
        });
        assert_eq!(data.to_wire(), serde_json::json!({"comment": "ok"}));
        assert_eq!(
            EntryData::from_wire(EntryKind::Approval, serde_json::json!({"comment": "ok"}))
                .unwrap(),
            data
        );
        // An approval without a comment may have been written with no data.
        assert_eq!(
            EntryData::from_wire(EntryKind::Approval, serde_json::Value::Null).unwrap(),
            EntryData::Approval(ApprovalData::default())
        );
        let finish = serde_json::json!({"status": "succeeded", "healthy": true, "apply_seq": 4,
            "deployed": {"images": [{"reference": "api:1", "digest": "sha256:1"}]}});
        let EntryData::ApplyFinish(f) =
            EntryData::from_wire(EntryKind::ApplyFinish, finish).unwrap()
        else {
            panic!("an apply_finish entry reads as one");
        };
        assert_eq!((f.status, f.apply_seq), (ApplyStatus::Succeeded, Some(4)));
        assert_eq!(f.deployed.unwrap().images[0].reference, "api:1");
    }

    #[test]
    fn a_signed_override_keeps_its_statement_beside_policy_and_reason() {
        let wire = serde_json::json!({"policy": "cost-guard", "reason": "one-off",
            "statement": "{...}\n", "signature": "-----BEGIN SSH SIGNATURE-----", "key": "SHA256:x"});
        let data = EntryData::from_wire(EntryKind::Override, wire.clone()).unwrap();
        let EntryData::Override(o) = &data else {
            panic!("an override entry reads as one");
        };
        assert_eq!(o.signed.as_ref().unwrap().key, "SHA256:x");
        assert_eq!(data.to_wire(), wire);
        // Without a signature the entry reads as unsigned.
        let unsigned = serde_json::json!({"policy": "cost-guard", "reason": "one-off"});
        let EntryData::Override(o) = EntryData::from_wire(EntryKind::Override, unsigned).unwrap()
        else {
            panic!("an override entry reads as one");
        };
        assert_eq!(o.signed, None);
    }

    #[test]
    fn a_payload_of_the_wrong_shape_is_refused() {
        let err = EntryData::from_wire(EntryKind::Override, serde_json::json!({"policy": 3}));
        assert!(err.is_err());
    }
}
