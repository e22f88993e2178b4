//! A plan's summary, kept in its manifest: what changes, counted, for people
//! and reports. Fields are in name order, the order the manifest always had.

use std::fmt;

use policy_sdk::migration::Phase;
use policy_sdk::scan::ScanKind;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanSummary {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helm: Option<Vec<ReleaseSummary>>,
    /// Per scan target (`images` for history: `scan { paths }` are here too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<ScanSummary>>,
    /// Migrations not yet run on the environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrations: Option<Vec<MigrationSummary>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terraform: Option<TerraformCounts>,
}

/// Terraform's resource changes by action.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerraformCounts {
    #[serde(default)]
    pub add: usize,
    #[serde(default)]
    pub change: usize,
    #[serde(default)]
    pub destroy: usize,
    /// Resources changed outside terraform since the last apply.
    #[serde(default)]
    pub drifted: usize,
    #[serde(default)]
    pub forget: usize,
    #[serde(default)]
    pub replace: usize,
    /// Every managed resource the plan changes, in the plan's order, for
    /// the approver to read (an empty list is not written).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourceChange>,
    #[serde(default)]
    pub terraform_version: Option<String>,
    #[serde(default)]
    pub unchanged: usize,
}

/// One resource a plan changes, as `terraform plan` summarises it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceChange {
    pub address: String,
    /// create, update, replace, delete, forget.
    pub action: String,
    /// Terraform's `action_reason`, e.g. `replace_because_cannot_update`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Where a `moved` block brought it from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_from: Option<String>,
    /// Top-level attributes whose value changes (updates and replacements),
    /// sensitive values masked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<AttributeChange>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeChange {
    pub name: String,
    pub before: serde_json::Value,
    pub after: serde_json::Value,
    /// The attribute is why terraform replaces the resource.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forces_replacement: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseSummary {
    pub chart: String,
    pub manifests: usize,
    pub namespace: String,
    pub release: String,
    #[serde(default)]
    pub version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanSummary {
    #[serde(default)]
    pub critical: usize,
    #[serde(default)]
    pub high: usize,
    pub kind: ScanKind,
    #[serde(default)]
    pub low: usize,
    #[serde(default)]
    pub medium: usize,
    #[serde(default)]
    pub misconfigurations: usize,
    #[serde(default)]
    pub secrets: usize,
    pub target: String,
    #[serde(default)]
    pub unknown: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationSummary {
    pub id: String,
    #[serde(default)]
    pub phase: Option<Phase>,
}

impl TerraformCounts {
    /// Whether applying it changes anything.
    pub fn changes_anything(&self) -> bool {
        self.add + self.change + self.replace + self.destroy > 0
    }
}

/// `3 to add, 1 to change, 1 to replace, 0 to destroy`.
impl fmt::Display for TerraformCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} to add, {} to change, {} to replace, {} to destroy",
            self.add, self.change, self.replace, self.destroy
        )
    }
}

impl PlanSummary {
    /// Each resource the plan changes (none without terraform).
    pub fn resources(&self) -> &[ResourceChange] {
        self.terraform
            .as_ref()
            .map(|tf| tf.resources.as_slice())
            .unwrap_or_default()
    }
}

/// The terraform counts, or that there are none.
impl fmt::Display for PlanSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.terraform {
            Some(t) => t.fmt(f),
            None => f.write_str("no terraform changes"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_line_counts_terraform_changes_or_says_there_are_none() {
        let mut s = PlanSummary::default();
        assert_eq!(s.to_string(), "no terraform changes");
        s.terraform = Some(TerraformCounts {
            add: 3,
            change: 1,
            replace: 1,
            ..TerraformCounts::default()
        });
        assert_eq!(
            s.to_string(),
            "3 to add, 1 to change, 1 to replace, 0 to destroy"
        );
    }

    #[test]
    fn a_summary_reads_back_in_the_shape_manifests_have() {
        let json = serde_json::json!({
            "helm": [{"chart": "charts/api", "manifests": 4, "namespace": "staging",
                      "release": "api", "version": null}],
            "migrations": [],
            "terraform": {"add": 1, "change": 0, "destroy": 0, "drifted": 0, "forget": 0,
                          "replace": 0, "terraform_version": "1.9.0", "unchanged": 2}
        });
        let s: PlanSummary = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(s.migrations, Some(Vec::new()));
        assert_eq!(serde_json::to_value(&s).unwrap(), json);
    }
}
