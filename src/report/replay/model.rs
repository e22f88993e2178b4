//! A policy replay's result (`opsdeploy policy replay`): each replayed
//! bundle's verdict then and now and the findings that differ. The workflow
//! computes it (`workflow::replay`); this module writes it in every format.

use serde::Serialize;

use crate::config::Enforcement;
use crate::store::results::Decision;

/// Which bundles to replay over.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Selection {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// RFC 3339 UTC: bundles planned at or after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Only the newest N of those selected otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last: Option<usize>,
}

/// A replay: the result of `opsdeploy policy replay`.
#[derive(Debug, Clone, Serialize)]
pub struct Replay {
    pub mode: Mode,
    /// The policies evaluated now.
    pub policies: Vec<ReplayedPolicy>,
    pub selection: Selection,
    /// Oldest first.
    pub bundles: Vec<BundleReplay>,
    /// Bundles that could not be replayed, each with the reason.
    pub skipped: Vec<Skipped>,
    pub summary: Summary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Policy,
    Config,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReplayedPolicy {
    pub name: String,
    /// A path or `builtin:NAME`.
    pub origin: String,
    pub sha256: String,
    /// The level it is judged at.
    pub enforcement: Enforcement,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settings: Option<serde_json::Value>,
    /// The environments it applies to (`--config`); all when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub environments: Vec<String>,
}

/// Whether a plan may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Blocked,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Blocked => "blocked",
        }
    }

    /// The verdict of a set of decisions, and the policies that block.
    pub fn of(decisions: &[Decision]) -> (Verdict, Vec<String>) {
        let blocking: Vec<String> = decisions
            .iter()
            .filter(|d| d.blocks)
            .map(|d| d.policy.clone())
            .collect();
        let verdict = if blocking.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Blocked
        };
        (verdict, blocking)
    }
}

/// What became of a bundle, from the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Applied {
    /// Never applied.
    No,
    Succeeded,
    Failed,
    RolledBack,
    RollbackFailed,
    /// An apply started and never finished.
    Interrupted,
}

impl Applied {
    pub fn as_str(self) -> &'static str {
        match self {
            Applied::No => "no",
            Applied::Succeeded => "yes",
            Applied::Failed => "failed",
            Applied::RolledBack => "rolled back",
            Applied::RollbackFailed => "rollback failed",
            Applied::Interrupted => "interrupted",
        }
    }
}

/// One replayed bundle: the verdict then and now, and the findings that differ.
#[derive(Debug, Clone, Serialize)]
pub struct BundleReplay {
    pub digest: String,
    pub environment: String,
    pub planned_at: String,
    pub planned_by: String,
    pub applied: Applied,
    pub then: Verdict,
    pub now: Verdict,
    pub blocked_by_then: Vec<String>,
    pub blocked_by_now: Vec<String>,
    /// Findings the replayed policies report now and did not then.
    pub new: Vec<Change>,
    /// Findings they reported then and do not now.
    pub gone: Vec<Change>,
}

impl BundleReplay {
    pub fn newly_blocked(&self) -> bool {
        self.then == Verdict::Pass && self.now == Verdict::Blocked
    }

    pub fn unblocked(&self) -> bool {
        self.then == Verdict::Blocked && self.now == Verdict::Pass
    }

    pub fn verdict_changed(&self) -> bool {
        self.then != self.now
    }
}

/// A finding that appeared or went, with the policy that reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub policy: String,
    #[serde(flatten)]
    pub violation: policy_sdk::Violation,
}

#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub digest: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub planned_at: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Bundles replayed (not counting the skipped).
    pub replayed: usize,
    pub skipped: usize,
    /// Passed then, blocked now.
    pub newly_blocked: usize,
    /// Blocked then, passing now.
    pub unblocked: usize,
    /// Same verdict, different findings.
    pub findings_changed: usize,
}

impl Replay {
    /// Some bundle's verdict differs (what `--fail-on-change` refuses).
    pub fn verdicts_changed(&self) -> bool {
        self.bundles.iter().any(BundleReplay::verdict_changed)
    }
}
