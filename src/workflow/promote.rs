//! `opsdeploy promote FROM TO`: plan TO with exactly what is deployed and
//! healthy on FROM — the same terraform configuration (by fingerprint:
//! `tfconfig`), images (by digest), chart versions, and only migrations that
//! already ran on FROM — or refuse, saying what differs. FROM's deployment
//! must have passed a health check (or TO must accept an unverified source:
//! `promote { allow_unverified = true }`), and FROM must answer it now.

use serde_json::json;

use super::history::{Deployed, Health, History};
use super::plan::{PlanOptions, Planned, plan_with};
use super::{ErrorClass, Project, WorkflowError, short};
use crate::store::{EntryKind, NewEntry};

pub struct Promoted {
    pub planned: Planned,
    pub from_digest: String,
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
    let allow_unverified = match current.finished_health() {
        Health::Healthy => false,
        Health::Unverified if to_env.promote.allow_unverified => true,
        Health::Unverified => {
            return Err(refuse(
                format!(
                    "the deployment on \"{from}\" ({}) is unverified: \"{from}\" has no health check, so nothing showed it healthy",
                    short(&current.digest)
                ),
                format!(
                    "add a `health {{ url = ... }}` block to \"{from}\" and deploy it again, or accept it in \"{to}\" with `promote {{ allow_unverified = true }}`"
                ),
            ));
        }
        Health::Unhealthy => {
            return Err(refuse(
                format!(
                    "the deployment on \"{from}\" ({}) is not healthy; it cannot be promoted",
                    short(&current.digest)
                ),
                format!(
                    "fix {from} and deploy it again; `opsdeploy status {from}` shows its state"
                ),
            ));
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
        return Err(refuse(
            format!("\"{from}\" does not answer its health check now: {e}"),
            format!(
                "find out why {from} is down (`opsdeploy status {from}`), fix it, then promote again"
            ),
        ));
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
    let status = if differences.is_empty() {
        "planned"
    } else {
        "refused"
    };
    project.store.append(
        NewEntry::new(EntryKind::Promotion, &project.actor, to)
            .digest(&planned.bundle.digest)
            .data(json!({"from": from, "from_digest": from_digest, "status": status, "differences": differences,
                         "allow_unverified": allow_unverified})),
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
            a.start
                .data
                .get("terraform_config")
                .and_then(|c| c.as_str())
                == Some(ours.fingerprint.digest.as_str())
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
