//! `opsdeploy approve`: approvals and overrides bound to one plan digest.

use super::{History, Project, WorkflowError, short};
use crate::config::{Enforcement, Environment};
use crate::store::EntryData;
use crate::store::bundle::Bundle;
use crate::store::records::{ApprovalData, ApprovalRecord, OverrideData};
use serde::Serialize;

pub struct ApproveRequest<'a> {
    pub environment: &'a str,
    pub digest: Option<&'a str>,
    pub comment: Option<&'a str>,
    /// `--override POLICY --reason TEXT`.
    pub override_policy: Option<(&'a str, &'a str)>,
}

/// What `approve` recorded; also its `--format json`.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct Approved {
    pub environment: String,
    /// Who approved (or overrode).
    pub actor: String,
    #[serde(flatten)]
    pub outcome: ApproveOutcome,
}

#[derive(Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ApproveOutcome {
    Approved {
        digest: String,
        valid: usize,
        needed: usize,
    },
    AlreadyApproved {
        digest: String,
    },
    Overridden {
        digest: String,
        policy: String,
    },
}

/// The bundle `--plan` names, or the environment's latest plan.
pub(crate) fn resolve_bundle(
    project: &Project,
    history: &History,
    environment: &str,
    digest: Option<&str>,
) -> Result<Bundle, WorkflowError> {
    let digest = match digest {
        Some(d) => d.to_string(),
        None => history
            .latest_plan(environment)
            .and_then(|e| e.digest.clone())
            .ok_or_else(|| WorkflowError::NoPlan {
                environment: environment.to_string(),
            })?,
    };
    project.store.fetch_bundle(&digest)?;
    let bundle = Bundle::open(&project.store.bundles_dir(), &digest)?;
    if bundle.manifest.environment != environment {
        return Err(WorkflowError::WrongEnvironment {
            digest: bundle.digest.clone(),
            planned_for: bundle.manifest.environment.clone(),
            environment: environment.to_string(),
        });
    }
    Ok(bundle)
}

/// The approvals that count: by listed approvers (when listed), one per
/// person, and not by the planner unless self-approval is allowed.
pub(crate) fn valid_approvals<'a>(
    env: &Environment,
    planned_by: &str,
    approvals: &'a [ApprovalRecord],
) -> Vec<&'a ApprovalRecord> {
    let mut seen: Vec<&str> = Vec::new();
    approvals
        .iter()
        .filter(|a| {
            env.approval.approvers.is_empty() || env.approval.approvers.contains(&a.approver)
        })
        .filter(|a| env.approval.self_approve || a.approver != planned_by)
        .filter(|a| {
            let first = !seen.contains(&a.approver.as_str());
            seen.push(&a.approver);
            first
        })
        .collect()
}

fn check_may_approve(
    project: &Project,
    env: &Environment,
    bundle: &Bundle,
) -> Result<(), WorkflowError> {
    let actor = &project.actor;
    if !env.approval.approvers.is_empty() && !env.approval.approvers.contains(actor) {
        return Err(WorkflowError::NotAnApprover {
            actor: actor.clone(),
            environment: env.name.clone(),
            approvers: env.approval.approvers.clone(),
        });
    }
    if !env.approval.self_approve && bundle.manifest.planned_by == *actor {
        return Err(WorkflowError::SelfApproval {
            actor: actor.clone(),
            digest: short(&bundle.digest).to_string(),
            environment: env.name.clone(),
            approvers: env
                .approval
                .approvers
                .iter()
                .filter(|a| *a != actor)
                .cloned()
                .collect(),
        });
    }
    Ok(())
}

/// Records an approval of the plan (or an override for it) by the actor.
pub fn approve(project: &Project, req: &ApproveRequest) -> Result<Approved, WorkflowError> {
    let outcome = record(project, req)?;
    Ok(Approved {
        environment: req.environment.to_string(),
        actor: project.actor.clone(),
        outcome,
    })
}

fn record(project: &Project, req: &ApproveRequest) -> Result<ApproveOutcome, WorkflowError> {
    let env = project.config.require_environment(req.environment)?;
    // An approval vouches for a person; one by nobody in particular vouches for nothing.
    if project.actor == super::identity::UNKNOWN {
        return Err(WorkflowError::UnknownActor);
    }
    let history = project.history()?;
    let bundle = resolve_bundle(project, &history, &env.name, req.digest)?;
    bundle.verify()?;
    check_may_approve(project, env, &bundle)?;

    if let Some((policy, reason)) = req.override_policy {
        return record_override(project, env, &bundle, policy, reason);
    }

    let approvals = history.approvals(&bundle.digest);
    if approvals.iter().any(|a| a.approver == project.actor) {
        return Ok(ApproveOutcome::AlreadyApproved {
            digest: bundle.digest,
        });
    }
    let approval = ApprovalData {
        comment: req.comment.map(String::from),
    };
    project.log(&env.name, &bundle.digest, EntryData::Approval(approval))?;
    let approvals = project.history()?.approvals(&bundle.digest);
    let valid = valid_approvals(env, &bundle.manifest.planned_by, &approvals).len();
    Ok(ApproveOutcome::Approved {
        digest: bundle.digest,
        valid,
        needed: env.approval.min as usize,
    })
}

fn record_override(
    project: &Project,
    env: &Environment,
    bundle: &Bundle,
    policy: &str,
    reason: &str,
) -> Result<ApproveOutcome, WorkflowError> {
    let nothing = |why: &str| WorkflowError::NothingToOverride {
        policy: policy.to_string(),
        why: why.to_string(),
        digest: bundle.digest.clone(),
        environment: env.name.clone(),
    };
    let Some(entry) = bundle.manifest.policies.iter().find(|p| p.name == policy) else {
        return Err(nothing("was not evaluated for this plan"));
    };
    match entry.enforcement {
        Enforcement::HardMandatory => {
            return Err(WorkflowError::HardMandatory {
                policy: policy.to_string(),
                digest: bundle.digest.clone(),
                environment: env.name.clone(),
            });
        }
        Enforcement::Advisory => return Err(nothing("is advisory; it never blocks")),
        Enforcement::SoftMandatory => {}
    }
    let denied = bundle
        .read_results()?
        .decisions
        .iter()
        .any(|d| d.policy == policy && d.denied);
    if !denied {
        return Err(nothing(
            "did not deny this plan; there is nothing to override",
        ));
    }
    let data = OverrideData {
        policy: policy.to_string(),
        reason: reason.to_string(),
    };
    project.log(&env.name, &bundle.digest, EntryData::Override(data))?;
    Ok(ApproveOutcome::Overridden {
        digest: bundle.digest.clone(),
        policy: policy.to_string(),
    })
}

/// Fails unless the environment's approval rule is met for this bundle.
pub(crate) fn check_approved(
    env: &Environment,
    history: &History,
    bundle: &Bundle,
) -> Result<Vec<ApprovalRecord>, WorkflowError> {
    let approvals = history.approvals(&bundle.digest);
    let valid: Vec<ApprovalRecord> = valid_approvals(env, &bundle.manifest.planned_by, &approvals)
        .into_iter()
        .cloned()
        .collect();
    if valid.len() < env.approval.min as usize {
        return Err(WorkflowError::ApprovalMissing {
            environment: env.name.clone(),
            digest: bundle.digest.clone(),
            have: valid.len(),
            need: env.approval.min as usize,
        });
    }
    Ok(valid)
}
