//! `opsdeploy promote FROM TO`: plan TO with exactly what is deployed and
//! healthy on FROM — the same images (by digest), chart versions, and only
//! migrations that already ran on FROM — or refuse, saying what differs.

use super::plan::{PlanOptions, Planned, plan_with};
use super::{ErrorClass, Project, WorkflowError, short};
use crate::store::records::{Deployed, PromotionData, PromotionStatus};
use crate::store::results::Decision;
use crate::store::{EntryData, NewEntry};
use serde::Serialize;

pub struct Promoted {
    pub planned: Planned,
    /// The environment promoted from, and the deployment running there.
    pub from: String,
    pub from_digest: String,
}

/// `promote --format json`.
#[derive(Debug, Serialize)]
pub struct PromotedOutput<'a> {
    pub digest: &'a str,
    pub from: &'a str,
    pub from_digest: &'a str,
    pub environment: &'a str,
    pub decisions: &'a [Decision],
}

impl Promoted {
    pub fn output(&self) -> PromotedOutput<'_> {
        PromotedOutput {
            digest: &self.planned.bundle.digest,
            from: &self.from,
            from_digest: &self.from_digest,
            environment: &self.planned.bundle.manifest.environment,
            decisions: &self.planned.results.decisions,
        }
    }
}

fn refuse(what: String, hint: String) -> WorkflowError {
    WorkflowError::Other {
        what,
        location: None,
        hint: Some(hint),
        class: ErrorClass::BlockedByPolicy,
    }
}

pub fn promote(project: &Project, from: &str, to: &str) -> Result<Promoted, WorkflowError> {
    project.config.require_environment(from)?;
    let to_env = project.config.require_environment(to)?;
    match &to_env.promote_from {
        Some(expected) if expected == from => {}
        Some(expected) => {
            return Err(WorkflowError::Other {
                what: format!("\"{to}\" promotes from \"{expected}\", not \"{from}\""),
                location: Some(format!("opsdeploy.hcl, environment \"{to}\"")),
                hint: Some(format!("run `opsdeploy promote {expected} {to}`")),
                class: ErrorClass::Usage,
            });
        }
        None => {
            return Err(WorkflowError::Other {
                what: format!("\"{to}\" does not promote from any environment"),
                location: Some(format!("opsdeploy.hcl, environment \"{to}\"")),
                hint: Some(format!(
                    "set `promote_from = \"{from}\"` in environment \"{to}\", or plan it with `opsdeploy plan {to}`"
                )),
                class: ErrorClass::Usage,
            });
        }
    }
    let history = project.history()?;
    let Some(current) = history.current(from) else {
        return Err(refuse(
            format!("nothing is deployed on \"{from}\" to promote"),
            format!("deploy to {from} first: `opsdeploy plan {from}`"),
        ));
    };
    if !current.healthy() {
        return Err(refuse(
            format!(
                "the deployment on \"{from}\" ({}) is not healthy; it cannot be promoted",
                short(&current.digest)
            ),
            format!("fix {from} and deploy it again; `opsdeploy status {from}` shows its state"),
        ));
    }
    let from_digest = current.digest.clone();
    let deployed = current.deployed().unwrap_or_default();
    let runs = history.migration_runs();
    let planned = plan_with(
        project,
        to,
        &PlanOptions {
            promoted_from: Some(from.to_string()),
        },
    )?;
    let differences = differences(&planned, &deployed, &runs, from);
    let promotion = PromotionData {
        from: from.to_string(),
        from_digest: from_digest.clone(),
        status: if differences.is_empty() {
            PromotionStatus::Planned
        } else {
            PromotionStatus::Refused
        },
        differences: differences.clone(),
    };
    project.record(
        NewEntry::new(&project.actor, to, EntryData::Promotion(promotion))
            .digest(&planned.bundle.digest),
    )?;
    if let Some(first) = differences.first() {
        let more = if differences.len() > 1 {
            format!(" (and {} more differences)", differences.len() - 1)
        } else {
            String::new()
        };
        return Err(refuse(
            format!(
                "plan {} for \"{to}\" is not what runs on \"{from}\": {first}{more}",
                short(&planned.bundle.digest)
            ),
            format!(
                "deploy the same artifacts to {from} first, then `opsdeploy promote {from} {to}` again"
            ),
        ));
    }
    Ok(Promoted {
        planned,
        from: from.to_string(),
        from_digest,
    })
}

/// What the TO plan deploys that FROM does not run.
fn differences(
    planned: &Planned,
    deployed: &Deployed,
    runs: &std::collections::BTreeMap<String, Vec<super::history::MigrationRun>>,
    from: &str,
) -> Vec<String> {
    let Ok(input) = planned.bundle.read("input.json") else {
        return vec!["the plan's input document is unreadable".into()];
    };
    let Ok(doc) = policy_sdk::Input::from_slice(&input) else {
        return vec!["the plan's input document is unreadable".into()];
    };
    let mut out = Vec::new();
    for report in doc.scans.iter().flat_map(|s| s.reports.iter()) {
        if report.kind != policy_sdk::scan::ScanKind::Image {
            continue;
        }
        let digest = report
            .report
            .metadata
            .as_ref()
            .and_then(|m| m.repo_digests.first())
            .and_then(|d| d.split_once('@').map(|(_, d)| d.to_string()));
        let same = deployed.images.iter().any(|i| match (&digest, &i.digest) {
            (Some(a), Some(b)) => a == b,
            _ => i.reference == report.target,
        });
        if !same {
            out.push(format!(
                "image {}{} is not deployed on {from}",
                report.target,
                digest.map(|d| format!(" ({d})")).unwrap_or_default()
            ));
        }
    }
    for release in &doc.helm {
        let same = deployed.charts.iter().any(|c| {
            c.chart == release.chart && c.version.as_deref() == release.chart_version.as_deref()
        });
        if !same {
            out.push(format!(
                "chart {} {} (release {}) is not deployed on {from}",
                release.chart,
                release.chart_version.as_deref().unwrap_or("(no version)"),
                release.release
            ));
        }
    }
    for m in &doc.migrations {
        let ran = runs.get(m.id.as_ref()).is_some_and(|r| {
            r.iter()
                .any(|r| r.environment == from && r.sha256 == m.sha256)
        });
        if !ran {
            out.push(format!(
                "migration {} has not run on {from} (as planned)",
                m.id
            ));
        }
    }
    out
}
