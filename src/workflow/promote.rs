//! `opsdeploy promote FROM TO`: plan TO with exactly what is deployed and
//! healthy on FROM — the same terraform configuration (by fingerprint:
//! `tfconfig`), images (by digest), chart versions, and only migrations that
//! already ran on FROM — or refuse, saying what differs. FROM's deployment
//! must have passed a health check (or TO must accept an unverified source:
//! `promote { allow_unverified = true }`), and FROM must answer it now.

use super::history::History;
use super::plan::{PlanOptions, Planned, plan_with};
use super::{Project, WorkflowError, short};
use crate::report::rollout::PolicyChange;
use crate::store::EntryData;
use crate::store::bundle::Manifest;
use crate::store::records::{Deployed, Health, PromotionData, PromotionStatus};
use crate::store::results::Decision;
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
    /// What the plan changes, for the approver.
    pub manifest: &'a Manifest,
    /// How approvals of it are judged.
    pub approvals: &'a [String],
    /// Policies whose module is not the one in force at TO's last deployment.
    pub policy_changes: &'a [PolicyChange],
}

impl Promoted {
    pub fn output(&self) -> PromotedOutput<'_> {
        PromotedOutput {
            digest: &self.planned.bundle.digest,
            from: &self.from,
            from_digest: &self.from_digest,
            environment: &self.planned.bundle.manifest.environment,
            decisions: &self.planned.results.decisions,
            manifest: &self.planned.bundle.manifest,
            approvals: &self.planned.trust,
            policy_changes: &self.planned.policy_changes,
        }
    }
}

pub fn promote(project: &Project, from: &str, to: &str) -> Result<Promoted, WorkflowError> {
    project.config.require_environment(from)?;
    let to_env = project.config.require_environment(to)?;
    match &to_env.promote_from {
        Some(expected) if expected == from => {}
        Some(expected) => {
            return Err(WorkflowError::PromotesFromAnother {
                from: from.to_string(),
                to: to.to_string(),
                expected: expected.clone(),
            });
        }
        None => {
            return Err(WorkflowError::PromotesFromNone {
                from: from.to_string(),
                to: to.to_string(),
            });
        }
    }
    let history = project.history()?;
    let Some(current) = history.current(from) else {
        return Err(WorkflowError::NothingToPromote {
            from: from.to_string(),
        });
    };
    let allow_unverified = match current.finished_health() {
        Health::Healthy => false,
        Health::Unverified if to_env.promote.allow_unverified => true,
        Health::Unverified => {
            return Err(WorkflowError::SourceUnverified {
                from: from.to_string(),
                to: to.to_string(),
                digest: current.digest.clone(),
            });
        }
        Health::Unhealthy => {
            return Err(WorkflowError::NotHealthy {
                from: from.to_string(),
                digest: current.digest.clone(),
            });
        }
    };
    let from_env = project.config.require_environment(from)?;
    if let Some(h) = &from_env.health
        && let Err(e) = crate::adapters::health::wait_healthy(
            &h.url.replace("{color}", &live_color(&history, from_env)),
            h.expect_status,
            h.timeout,
            h.interval,
        )
    {
        return Err(WorkflowError::SourceDown {
            from: from.to_string(),
            source: Box::new(e),
        });
    }
    let from_digest = current.digest.clone();
    let from_terraform = super::tfconfig::read(&{
        project.store.fetch_bundle(&from_digest)?;
        crate::store::bundle::Bundle::open(&project.store.bundles_dir(), &from_digest)?
    })?;
    let deployed = current.deployed().unwrap_or_default();
    let runs = history.migration_runs();
    let planned = plan_with(
        project,
        to,
        &PlanOptions {
            promoted_from: Some(from.to_string()),
        },
    )?;
    let mut differences =
        terraform_differences(&history, &planned, from_terraform.as_ref(), from, to)?;
    differences.extend(self::differences(&planned, &deployed, &runs, from));
    let promotion = PromotionData {
        from: from.to_string(),
        from_digest: from_digest.clone(),
        status: if differences.is_empty() {
            PromotionStatus::Planned
        } else {
            PromotionStatus::Refused
        },
        differences: differences.clone(),
        allow_unverified,
    };
    project.log(to, &planned.bundle.digest, EntryData::Promotion(promotion))?;
    if !differences.is_empty() {
        return Err(WorkflowError::NotWhatRuns {
            from: from.to_string(),
            to: to.to_string(),
            digest: planned.bundle.digest.clone(),
            differences,
        });
    }
    Ok(Promoted {
        planned,
        from: from.to_string(),
        from_digest,
    })
}

/// The colour serving on `env` (blue-green), for a `{color}` health URL.
fn live_color(history: &History, env: &crate::config::Environment) -> String {
    history
        .live_releases(&env.name)
        .and_then(|l| env.helm.iter().find_map(|r| l.colors.get(&r.name).cloned()))
        .unwrap_or_default()
}

/// How the terraform configuration TO plans differs from the one FROM runs,
/// and what became of FROM's last deploy of TO's configuration.
fn terraform_differences(
    history: &History,
    planned: &Planned,
    from_terraform: Option<&super::tfconfig::Snapshot>,
    from: &str,
    to: &str,
) -> Result<Vec<String>, WorkflowError> {
    let Some(ours) = super::tfconfig::read(&planned.bundle)? else {
        return Ok(Vec::new());
    };
    let Some(theirs) = from_terraform else {
        return Ok(vec![format!(
            "the terraform configuration: {from}'s deployment keeps none to compare with"
        )]);
    };
    let mut out: Vec<String> = ours
        .fingerprint
        .differences(&theirs.fingerprint, to, from)
        .into_iter()
        .map(|d| format!("terraform: {d}"))
        .collect();
    if !out.is_empty() {
        let attempt = history.applies(from).into_iter().rev().find(|a| {
            matches!(&a.start.data, EntryData::ApplyStart(s)
                if s.terraform_config.as_deref() == Some(ours.fingerprint.digest.as_str()))
        });
        if let Some(a) = attempt {
            out.insert(
                0,
                format!(
                    "terraform: {from}'s deploy of this configuration (plan {}, {}) {}",
                    short(&a.digest),
                    a.start.at,
                    match a.status() {
                        Some(s) => format!("ended {}", s.as_str()),
                        None => "was interrupted".into(),
                    }
                ),
            );
        }
    }
    Ok(out)
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
