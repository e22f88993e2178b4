//! `opsdeploy status [ENV]`: what is deployed where, pending plans and their
//! approvals, locks, and applies that were interrupted.

use serde::Serialize;

use super::approve::valid_approvals;
use super::{History, Project, WorkflowError};
use crate::store::LockHolder;

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
}

#[derive(Debug, Serialize)]
pub struct DeploymentStatus {
    pub digest: String,
    pub at: String,
    pub by: String,
    pub healthy: bool,
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
            Ok(EnvironmentStatus {
                environment: env.name.clone(),
                deployed: history.current(&env.name).map(|c| DeploymentStatus {
                    digest: c.digest.clone(),
                    at: c.finish.map(|f| f.at.clone()).unwrap_or_default(),
                    by: c.start.actor.clone(),
                    healthy: c.healthy(),
                }),
                pending: pending(&history, env),
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

fn pending(history: &History, env: &crate::config::Environment) -> Option<PendingPlan> {
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
    let approvals = history.approvals(&digest);
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
