//! A plan bundle's policy results (`results.json`): what each policy said,
//! its enforcement level, and whether it blocks. Kept beside the manifest and
//! not part of the digest: results are derived, and re-evaluated at apply.

use serde::{Deserialize, Serialize};

use crate::config::Enforcement;

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
    pub evaluation: serde_json::Value,
    pub violations: Vec<policy_sdk::Violation>,
}

/// `results.json` of a bundle.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    pub digest: String,
    pub evaluated_at: String,
    pub decisions: Vec<Decision>,
}

impl Results {
    pub fn blocking(&self) -> Vec<&Decision> {
        self.decisions.iter().filter(|d| d.blocks).collect()
    }
}
