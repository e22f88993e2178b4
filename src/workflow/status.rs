//! `opsdeploy status [ENV]`: what is deployed where, pending plans and their
//! approvals, locks, and applies that were interrupted.

use serde::Serialize;

use super::approve::{counted_approvals, valid_approvals};
use super::signing::describe_in_force;
use super::{History, Project, WorkflowError};
use crate::store::records::Health;
use crate::store::{EntryData, LockHolder};

#[derive(Debug, Serialize)]
pub struct EnvironmentStatus {
    pub environment: String,
    pub deployed: Option<DeploymentStatus>,
    pub pending: Option<PendingPlan>,
    pub lock: Option<LockHolder>,
    /// A lock its holder left when it died; the next apply takes it over.
    pub stale_lock: Option<LockHolder>,
    pub interrupted: Vec<Interrupted>,
    pub last_failure: Option<String>,
    /// What the last failed apply (or `opsdeploy rollback`) since the
    /// current deployment undid, kept and could not undo.
    pub last_rollback: Option<RollbackAccount>,
    /// How approvals of its next plan are judged: signed by whom, or
    /// "approvals unsigned: identity not verified".
    pub approvals: String,
}

#[derive(Debug, Serialize)]
pub struct RollbackAccount {
    pub digest: String,
    pub at: String,
    /// `succeeded`, or `failed` when something was not undone.
    pub status: String,
    pub undone: Vec<String>,
    pub kept: Vec<String>,
    pub not_undone: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct DeploymentStatus {
    pub digest: String,
    pub at: String,
    pub by: String,
    pub healthy: bool,
    /// `healthy`, `unverified` (no health check), `unhealthy`, or
    /// `rollback incomplete` when a failed deploy since left changes in place.
    pub health: String,
    /// It runs again because a rollback restored it.
    pub restored: bool,
}

#[derive(Debug, Serialize)]
pub struct PendingPlan {
    pub digest: String,
    pub planned_at: String,
    pub planned_by: String,
    pub approvals: usize,
    pub needed: usize,
    pub blocked: bool,
}

#[derive(Debug, Serialize)]
pub struct Interrupted {
    pub digest: String,
    pub started_at: String,
    pub by: String,
}

pub fn status(
    project: &Project,
    only: Option<&str>,
) -> Result<Vec<EnvironmentStatus>, WorkflowError> {
    if let Some(env) = only {
        project.config.require_environment(env)?;
    }
    let history = project.history()?;
    project
        .config
        .environments
        .iter()
        .filter(|e| only.is_none_or(|o| o == e.name))
        .map(|env| {
            let lock = project.store.lock_holder(&env.name)?;
            let last_rollback = last_rollback(&history, &env.name);
            let incomplete = last_rollback
                .as_ref()
                .is_some_and(|r| r.status != "succeeded");
            Ok(EnvironmentStatus {
                environment: env.name.clone(),
                deployed: history.current(&env.name).map(|c| DeploymentStatus {
                    digest: c.digest.clone(),
                    at: c.finish.map(|f| f.at.clone()).unwrap_or_default(),
                    by: c.start.actor.clone(),
                    healthy: c.health() == Health::Healthy && !incomplete,
                    health: if incomplete {
                        "rollback incomplete".into()
                    } else {
                        c.health().as_str().into()
                    },
                    restored: c.restored_by.is_some(),
                }),
                last_rollback,
                pending: pending(project, &history, env),
                approvals: {
                    let digest = history
                        .latest_plan(&env.name)
                        .and_then(|p| p.digest.clone())
                        .unwrap_or_default();
                    describe_in_force(&history, project, &env.name, &digest)
                },
                interrupted: {
                    let mut list = history.interrupted(&env.name);
                    // While the lock is held, the newest unfinished apply is running.
                    if lock.is_some() {
                        list.pop();
                    }
                    list.into_iter()
                        .map(|a| Interrupted {
                            digest: a.digest.clone(),
                            started_at: a.start.at.clone(),
                            by: a.start.actor.clone(),
                        })
                        .collect()
                },
                last_failure: history
                    .applies(&env.name)
                    .last()
                    .filter(|a| {
                        a.status()
                            .is_some_and(|s| s != crate::store::records::ApplyStatus::Succeeded)
                    })
                    .and_then(|a| a.finished()?.failure.clone()),
                stale_lock: if lock.is_none() {
                    project.store.stale_lock(&env.name)
                } else {
                    None
                },
                lock,
            })
        })
        .collect()
}

/// The last rollback on `env` since its current deployment was made (or
/// restored).
fn last_rollback(history: &History, env: &str) -> Option<RollbackAccount> {
    let since = history.current(env).map(|c| match c.restored_by {
        Some(r) => r.seq,
        None => c.start.seq,
    });
    let (e, r) = history.entries().iter().rev().find_map(|e| match &e.data {
        EntryData::Rollback(r)
            if e.environment.as_deref() == Some(env) && since.is_none_or(|s| e.seq >= s) =>
        {
            Some((e, r))
        }
        _ => None,
    })?;
    Some(RollbackAccount {
        digest: e.digest.clone().unwrap_or_default(),
        at: e.at.clone(),
        status: r.status.as_str().to_string(),
        undone: r.undone.clone(),
        kept: r.kept.clone(),
        // Older entries list what stayed in place as `not_rolled_back`.
        not_undone: r
            .not_undone
            .iter()
            .chain(&r.not_rolled_back)
            .cloned()
            .collect(),
    })
}

fn pending(
    project: &Project,
    history: &History,
    env: &crate::config::Environment,
) -> Option<PendingPlan> {
    let plan = history.latest_plan(&env.name)?;
    let digest = plan.digest.clone()?;
    // Applied (or being applied) already: not pending.
    if history
        .applies(&env.name)
        .iter()
        .any(|a| a.digest == digest)
    {
        return None;
    }
    let (approvals, _) = counted_approvals(project, env, history, &digest);
    let blocked = history.blocked(&digest);
    Some(PendingPlan {
        approvals: valid_approvals(env, &plan.actor, &approvals).len(),
        needed: env.approval.min as usize,
        planned_at: plan.at.clone(),
        planned_by: plan.actor.clone(),
        digest,
        blocked,
    })
}
