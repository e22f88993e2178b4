//! Undoing what a failed apply changed, or saying exactly what could not be.
//!
//! In order: terraform returns to the configuration of the environment's last
//! successful deployment (planned against the live state and judged by the
//! environment's policies first; `tfreturn`), then every helm release goes
//! back to the revision it had, newest first. Migrations are not reverted:
//! an expand is kept, being compatible with the previous version by design;
//! anything else that ran is listed as not undone. The account (undone,
//! kept, not undone) is what the apply reports, records and notifies.

use std::time::Duration;

use policy_sdk::migration::Phase;
use serde::Serialize;

use super::apply::StepReport;
use super::tfreturn::{self, Target};
use super::{History, Project, WorkflowError, short};
use crate::adapters::health;
use crate::config::Environment;
use crate::store::bundle::Bundle;
use crate::store::records::{Health, LiveReleases};

/// A change an apply made, in the order it made them.
#[derive(Debug, Clone)]
pub enum Change {
    /// Terraform applied the saved plan (or part of it, when it failed).
    Terraform { summary: String },
    /// A migration ran (or failed part-way).
    Migration {
        id: String,
        phase: Phase,
        completed: bool,
    },
    /// A release was upgraded or installed: back to its previous revision,
    /// or removed when there was none.
    Release {
        name: String,
        namespace: String,
        timeout: Duration,
        previous: Option<u64>,
    },
    /// An upgrade failed and helm put the release back itself (`--atomic`).
    ReleaseRestoredByHelm { name: String, namespace: String },
}

/// What undoing a failed apply did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Undone {
    /// The rollback's own steps (`rollback` in `apply --format json`).
    #[serde(rename = "rollback")]
    pub steps: Vec<StepReport>,
    /// Changes put back.
    pub undone: Vec<String>,
    /// Changes left in place because the previous version works with them.
    pub kept: Vec<String>,
    /// Changes still live: manual action needed (`not_rolled_back` in
    /// `apply --format json`, the name it always had).
    #[serde(rename = "not_rolled_back")]
    pub not_undone: Vec<String>,
    /// The deployment that runs again, when everything was put back.
    pub restored: Option<String>,
    /// How the environment answered once undone (`None`: nothing was undone).
    pub health: Option<Health>,
    /// The helm releases as left (recorded for drift, not shown).
    #[serde(skip)]
    pub live: Option<LiveReleases>,
}

impl Undone {
    /// Every change undone or compatible by design.
    pub fn complete(&self) -> bool {
        self.not_undone.is_empty() && self.steps.iter().all(|s| s.ok)
    }
}

/// Undoes `changes`, made by the apply of `bundle` on `env`; `last_good`
/// is the deployment that ran before it.
pub fn undo(
    project: &Project,
    env: &Environment,
    bundle: &Bundle,
    last_good: Option<&str>,
    changes: &[Change],
) -> Result<Undone, WorkflowError> {
    let mut out = Undone::default();
    let history = project.history()?;
    let mut terraform_back = true;
    if let Some(Change::Terraform { summary }) = changes
        .iter()
        .find(|c| matches!(c, Change::Terraform { .. }))
    {
        terraform_back =
            undo_terraform(project, env, &history, bundle, last_good, summary, &mut out)?;
    }
    let mut helm_back = true;
    let mut live = history.live_releases(&env.name).unwrap_or_default();
    let releases: Vec<&Change> = changes
        .iter()
        .filter(|c| {
            matches!(
                c,
                Change::Release { .. } | Change::ReleaseRestoredByHelm { .. }
            )
        })
        .collect();
    if !releases.is_empty() {
        let helm = super::tools::helm_for(project);
        for change in releases.into_iter().rev() {
            let (name, namespace, timeout, previous) = match change {
                Change::Release {
                    name,
                    namespace,
                    timeout,
                    previous,
                } => (name, namespace, timeout, previous),
                Change::ReleaseRestoredByHelm { name, namespace } => {
                    // Helm made a new revision putting it back: record it.
                    if let Ok(Ok(Some(rev))) =
                        helm.as_ref().map(|h| h.deployed_revision(name, namespace))
                    {
                        live.helm_revisions.insert(name.clone(), rev);
                    }
                    out.undone.push(format!(
                        "helm: release {name}: helm rolled its failed upgrade back itself (--atomic)"
                    ));
                    continue;
                }
                _ => continue,
            };
            let result = helm.as_ref().map_err(|e| e.to_string()).and_then(|h| {
                let done = match previous {
                    Some(rev) => h
                        .rollback(name, namespace, *rev, *timeout)
                        .map(|()| format!("release {name} rolled back to revision {rev}")),
                    None => h
                        .uninstall(name, namespace, *timeout)
                        .map(|()| format!("release {name} removed (it was new)")),
                }
                .map_err(|e| e.to_string())?;
                match h.deployed_revision(name, namespace) {
                    Ok(Some(rev)) => {
                        live.helm_revisions.insert(name.clone(), rev);
                    }
                    _ => {
                        live.helm_revisions.remove(name);
                    }
                }
                Ok(done)
            });
            match result {
                Ok(detail) => {
                    out.undone.push(format!("helm: {detail}"));
                    out.steps.push(step("helm", true, detail));
                }
                Err(e) => {
                    helm_back = false;
                    out.not_undone.push(format!(
                        "helm: release {name} is still at the failed deploy's revision: {e}"
                    ));
                    out.steps.push(step("helm", false, e));
                }
            }
        }
        out.live = Some(live);
    }
    for change in changes {
        if let Change::Migration {
            id,
            phase,
            completed,
        } = change
        {
            let ran = if *completed { "ran" } else { "failed part-way" };
            match phase {
                Phase::Expand => out.kept.push(format!(
                    "migration {id} (expand, {ran}): compatible with the previous version by design"
                )),
                Phase::Contract => out.not_undone.push(format!(
                    "migration {id} (contract) {ran} and cannot be undone: the previous version may need what it removed; restore from a backup or roll forward"
                )),
            }
        }
    }
    let undid_something = out.steps.iter().any(|s| s.ok);
    if terraform_back && helm_back {
        out.restored = last_good.map(String::from);
    }
    if undid_something {
        out.health = Some(check_health(env, &live_color(&out, env)));
    }
    Ok(out)
}

fn step(step: &str, ok: bool, detail: String) -> StepReport {
    StepReport {
        step: step.into(),
        ok,
        detail,
    }
}

/// The colour serving once undone, for a `{color}` health URL.
fn live_color(out: &Undone, env: &Environment) -> Option<String> {
    let live = out.live.as_ref()?;
    env.helm
        .iter()
        .find_map(|r| live.colors.get(&r.name).cloned())
}

/// Checks the environment's health once: unverified without a health check.
pub fn check_health(env: &Environment, color: &Option<String>) -> Health {
    let Some(h) = &env.health else {
        return Health::Unverified;
    };
    let url = match color {
        Some(c) => h.url.replace("{color}", c),
        None => h.url.clone(),
    };
    match health::wait_healthy(&url, h.expect_status, h.timeout, h.interval) {
        Ok(_) => Health::Healthy,
        Err(e) => {
            tracing::warn!("after the rollback: {e}");
            Health::Unhealthy
        }
    }
}

/// Returns terraform to the last good deployment; `false` when it stays as
/// the failed deploy left it.
fn undo_terraform(
    project: &Project,
    env: &Environment,
    history: &History,
    bundle: &Bundle,
    last_good: Option<&str>,
    summary: &str,
    out: &mut Undone,
) -> Result<bool, WorkflowError> {
    let good = match last_good {
        Some(digest) => {
            project.store.fetch_bundle(digest)?;
            match Bundle::open(&project.store.bundles_dir(), digest) {
                Ok(b) => Some(b),
                Err(e) => {
                    out.not_undone.push(format!(
                        "terraform: {summary} stays applied: the last good deployment's bundle {} cannot be read: {e}",
                        short(digest)
                    ));
                    out.steps.push(step("terraform", false, e.to_string()));
                    return Ok(false);
                }
            }
        }
        None if prior_state_empty(bundle) => None,
        None => {
            out.not_undone.push(format!(
                "terraform: {summary} stays applied: \"{}\" has no earlier successful deployment to return to",
                env.name
            ));
            return Ok(false);
        }
    };
    let (target, to) = match &good {
        Some(g) => (
            Target::Deployment(g),
            format!("the configuration of plan {}", short(&g.digest)),
        ),
        None => (
            Target::Nothing(bundle),
            "nothing (this was the first deploy)".to_string(),
        ),
    };
    let plan = match tfreturn::plan(project, env, target) {
        Ok(p) => p,
        Err(e) => {
            out.not_undone.push(format!(
                "terraform: {summary} stays applied: the return to {to} could not be planned: {e}"
            ));
            out.steps.push(step("terraform", false, e.to_string()));
            return Ok(false);
        }
    };
    let decisions = tfreturn::judge(project, env, history, bundle, &plan)?;
    if let Some((policy, why)) = tfreturn::blocking(&decisions) {
        out.not_undone.push(format!(
            "terraform: {summary} stays applied: returning to {to} ({}) is blocked by policy {policy}: {why}; nothing was changed",
            plan.summary(),
        ));
        out.steps.push(step(
            "terraform",
            false,
            format!("return to {to} refused by {policy}"),
        ));
        return Ok(false);
    }
    if !plan.changes() {
        out.undone.push(format!(
            "terraform: the live infrastructure already matches {to}"
        ));
        out.steps.push(step(
            "terraform",
            true,
            format!("nothing to change: already at {to}"),
        ));
        return Ok(true);
    }
    match plan.apply() {
        Ok(()) => {
            out.undone
                .push(format!("terraform: returned to {to} ({})", plan.summary()));
            out.steps.push(step(
                "terraform",
                true,
                format!("returned to {to}: {}", plan.summary()),
            ));
            Ok(true)
        }
        Err(e) => {
            out.not_undone.push(format!(
                "terraform: the return to {to} failed part-way ({e}); compare `terraform show` with that configuration"
            ));
            out.steps.push(step("terraform", false, e));
            Ok(false)
        }
    }
}

/// Whether the state terraform planned against held no managed resource.
fn prior_state_empty(bundle: &Bundle) -> bool {
    let Ok(bytes) = bundle.read("plan.json") else {
        return false;
    };
    let plan: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    fn managed(module: &serde_json::Value) -> bool {
        module["resources"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["mode"] == "managed"))
            || module["child_modules"]
                .as_array()
                .is_some_and(|c| c.iter().any(managed))
    }
    !managed(&plan["prior_state"]["values"]["root_module"])
}
