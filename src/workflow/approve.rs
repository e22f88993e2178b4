//! `opsdeploy approve`: approvals and overrides bound to one plan digest.
//!
//! Without `approval { signers }` an approval is the acting identity's word
//! (OPSDEPLOY_USER, git, $USER), unverified. With signers it is a signed
//! statement (`signing.rs`), and the approver is whoever the signing key
//! speaks for.

use std::path::Path;

use serde::Serialize;

use super::signing::{self, InForce, Judge, SigningError};
use super::{History, Project, WorkflowError, short};
use crate::config::{Enforcement, Environment};
use crate::store::bundle::Bundle;
use crate::store::records::{
    ApprovalData, ApprovalRecord, OverrideData, OverrideRecord, SignedStatement,
};
use crate::store::{EntryData, NewEntry, now_rfc3339};
use crate::trust::signature::SigningKey;
use crate::trust::statement::{self, Head, Kind, Statement};

pub struct ApproveRequest<'a> {
    pub environment: &'a str,
    pub digest: Option<&'a str>,
    pub comment: Option<&'a str>,
    /// `--override POLICY --reason TEXT`.
    pub override_policy: Option<(&'a str, &'a str)>,
    /// `--key FILE`: the SSH key to sign with (else OPSDEPLOY_SIGNING_KEY,
    /// else git's user.signingKey with gpg.format=ssh).
    pub key: Option<&'a Path>,
    /// `--signature FILE.sig`: a detached signature of a `--statement`.
    pub signature: Option<&'a Path>,
    /// How long a signed approval counts.
    pub expires_in_secs: i64,
    /// Shown the plan and how approvals are judged, before anything is signed.
    pub show: &'a dyn Fn(&Bundle, &str),
}

/// What `approve` recorded; also its `--format json`.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct Approved {
    pub environment: String,
    /// Who approved (or overrode): the acting identity, or with signers the
    /// principal the signing key speaks for.
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

fn check_may_approve(env: &Environment, bundle: &Bundle, actor: &str) -> Result<(), WorkflowError> {
    if !env.approval.approvers.is_empty() && !env.approval.approvers.iter().any(|a| a == actor) {
        return Err(WorkflowError::NotAnApprover {
            actor: actor.to_string(),
            environment: env.name.clone(),
            approvers: env.approval.approvers.clone(),
        });
    }
    if !env.approval.self_approve && bundle.manifest.planned_by == actor {
        return Err(WorkflowError::SelfApproval {
            actor: actor.to_string(),
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

/// Records an approval of the plan (or an override for it): by the actor,
/// or with signers by whoever signed it.
pub fn approve(project: &Project, req: &ApproveRequest) -> Result<Approved, WorkflowError> {
    let env = project.config.require_environment(req.environment)?;
    let history = project.history()?;
    let bundle = resolve_bundle(project, &history, &env.name, req.digest)?;
    bundle.verify()?;
    let mut judge = Judge::new(&history, &project.config.project);
    let force = judge.in_force(&env.name, &bundle.digest, u64::MAX);
    let (actor, outcome) = match force.signers() {
        None => approve_unsigned(project, env, &history, &bundle, req, &force)?,
        Some(signers) => approve_signed(
            project, env, &history, &bundle, req, &mut judge, &force, signers,
        )?,
    };
    Ok(Approved {
        environment: env.name.clone(),
        actor,
        outcome,
    })
}

/// A signed approval or override: signed here with a key, or a detached
/// signature; verified as `audit verify` will, then logged.
#[allow(clippy::too_many_arguments)]
fn approve_signed(
    project: &Project,
    env: &Environment,
    history: &History,
    bundle: &Bundle,
    req: &ApproveRequest,
    judge: &mut Judge,
    force: &InForce,
    signers: &crate::store::records::PlannedSigners,
) -> Result<(String, ApproveOutcome), WorkflowError> {
    (req.show)(bundle, &force.describe(&env.name));
    let head = log_head(history);
    let signed = match req.signature {
        Some(sig) => signing::read_detached(sig)?,
        None => {
            let key =
                SigningKey::find(req.key, project.dir()).map_err(|source| SigningError::Trust {
                    step: signing::TrustStep::FindKey,
                    source,
                })?;
            let Some(key) = key else {
                return Err(SigningError::NoSigningKey {
                    environment: env.name.clone(),
                    digest: bundle.digest.clone(),
                    signers: signers.path.clone(),
                }
                .into());
            };
            let build =
                |approver: &str| statement_for(project, env, bundle, req, approver, head.clone());
            let planned = judge.of_plan(&bundle.digest);
            signing::sign_with_key(project, signers, force, planned.as_ref(), &key, build)?
        }
    };
    let st = &signed.statement;
    let actor = st.approver.clone();
    if let (Some(policy), Kind::Override) = (&st.policy, st.kind) {
        check_override(env, bundle, policy)?;
    }
    check_may_approve(env, bundle, &actor)?;
    if st.kind == Kind::Approval
        && counted_approvals(project, env, history, &bundle.digest)
            .0
            .iter()
            .any(|a| a.approver == actor)
    {
        let digest = bundle.digest.clone();
        return Ok((actor, ApproveOutcome::AlreadyApproved { digest }));
    }
    let mut sealed = SignedStatement {
        statement: signed.text.clone(),
        signature: signed.signature.clone(),
        key: String::new(),
    };
    let mut data = entry_data(st, sealed.clone());
    let at = now_rfc3339();
    let seq = history.entries().len() as u64 + 1;
    let claim = signing::Claim::new(
        seq,
        &at,
        &actor,
        Some(&env.name),
        Some(&bundle.digest),
        &data,
    )
    .expect("an approval or override makes a claim");
    let by = judge
        .verify(&claim, force)
        .map_err(|why| SigningError::DoesNotCount {
            environment: env.name.clone(),
            digest: bundle.digest.clone(),
            why,
            signers: signers.path.clone(),
        })?;
    sealed.key = by.key;
    data = entry_data(st, sealed);
    project.record(NewEntry::new(&actor, &env.name, data).digest(&bundle.digest))?;
    let outcome = outcome(project, env, bundle, st.policy.clone())?;
    Ok((actor, outcome))
}

/// The entry a signed statement is logged as.
fn entry_data(st: &Statement, signed: SignedStatement) -> EntryData {
    match (st.kind, &st.policy, &st.reason) {
        (Kind::Override, Some(policy), Some(reason)) => EntryData::Override(OverrideData {
            policy: policy.clone(),
            reason: reason.clone(),
            comment: st.comment.clone(),
            signed: Some(signed),
        }),
        _ => EntryData::Approval(ApprovalData {
            comment: st.comment.clone(),
            signed: Some(signed),
        }),
    }
}

/// The last entry of the log, as a statement names what its signer saw.
fn log_head(history: &History) -> Head {
    history
        .entries()
        .last()
        .map(|e| Head {
            seq: e.seq,
            hash: e.hash.clone(),
        })
        .unwrap_or(Head {
            seq: 0,
            hash: crate::store::audit::GENESIS.into(),
        })
}

/// The outcome after an approval (`policy` none) or override was logged.
fn outcome(
    project: &Project,
    env: &Environment,
    bundle: &Bundle,
    policy: Option<String>,
) -> Result<ApproveOutcome, WorkflowError> {
    let digest = bundle.digest.clone();
    if let Some(policy) = policy {
        return Ok(ApproveOutcome::Overridden { digest, policy });
    }
    let history = project.history()?;
    let (approvals, _) = counted_approvals(project, env, &history, &bundle.digest);
    let valid = valid_approvals(env, &bundle.manifest.planned_by, &approvals).len();
    Ok(ApproveOutcome::Approved {
        digest,
        valid,
        needed: env.approval.min as usize,
    })
}

/// The statement an approval of `bundle` by `approver` signs.
fn statement_for(
    project: &Project,
    env: &Environment,
    bundle: &Bundle,
    req: &ApproveRequest,
    approver: &str,
    audit_head: Head,
) -> Statement {
    let (kind, policy, reason) = match req.override_policy {
        Some((p, r)) => (Kind::Override, Some(p.to_string()), Some(r.to_string())),
        None => (Kind::Approval, None, None),
    };
    Statement {
        statement: statement::STATEMENT.into(),
        version: statement::VERSION,
        project: project.config.project.clone(),
        environment: env.name.clone(),
        digest: bundle.digest.clone(),
        kind,
        policy,
        reason,
        comment: req.comment.map(String::from),
        approver: approver.to_string(),
        audit_head,
        signed_at: now_rfc3339(),
        expires_at: signing::expiry(req.expires_in_secs),
    }
}

/// `approve --statement`: the statement to sign elsewhere, naming the
/// acting identity as approver and the log's head now.
pub fn detached_statement(
    project: &Project,
    req: &ApproveRequest,
) -> Result<String, WorkflowError> {
    let env = project.config.require_environment(req.environment)?;
    let history = project.history()?;
    let bundle = resolve_bundle(project, &history, &env.name, req.digest)?;
    bundle.verify()?;
    if let Some((policy, _)) = req.override_policy {
        check_override(env, &bundle, policy)?;
    }
    let mut judge = Judge::new(&history, &project.config.project);
    if let InForce::Unsigned = judge.in_force(&env.name, &bundle.digest, u64::MAX) {
        return Err(no_signers(env));
    }
    if project.actor == super::identity::UNKNOWN {
        return Err(WorkflowError::UnknownActor);
    }
    let head = log_head(&history);
    Ok(statement_for(project, env, &bundle, req, &project.actor, head).to_text())
}

fn no_signers(env: &Environment) -> WorkflowError {
    SigningError::NoSigners {
        environment: env.name.clone(),
    }
    .into()
}

/// Today's approvals without signers: the acting identity, unverified.
fn approve_unsigned(
    project: &Project,
    env: &Environment,
    history: &History,
    bundle: &Bundle,
    req: &ApproveRequest,
    force: &InForce,
) -> Result<(String, ApproveOutcome), WorkflowError> {
    if req.signature.is_some() || req.key.is_some() {
        return Err(no_signers(env));
    }
    // An approval vouches for a person; one by nobody in particular vouches for nothing.
    if project.actor == super::identity::UNKNOWN {
        return Err(WorkflowError::UnknownActor);
    }
    check_may_approve(env, bundle, &project.actor)?;
    let actor = project.actor.clone();
    if let Some((policy, reason)) = req.override_policy {
        check_override(env, bundle, policy)?;
        (req.show)(bundle, &force.describe(&env.name));
        let data = OverrideData {
            policy: policy.to_string(),
            reason: reason.to_string(),
            comment: None,
            signed: None,
        };
        project.log(&env.name, &bundle.digest, EntryData::Override(data))?;
        let outcome = outcome(project, env, bundle, Some(policy.to_string()))?;
        return Ok((actor, outcome));
    }
    if history
        .approvals(&bundle.digest)
        .iter()
        .any(|a| a.approver == actor)
    {
        let digest = bundle.digest.clone();
        return Ok((actor, ApproveOutcome::AlreadyApproved { digest }));
    }
    (req.show)(bundle, &force.describe(&env.name));
    let approval = ApprovalData {
        comment: req.comment.map(String::from),
        signed: None,
    };
    project.log(&env.name, &bundle.digest, EntryData::Approval(approval))?;
    let outcome = outcome(project, env, bundle, None)?;
    Ok((actor, outcome))
}

/// Refuses an override the plan does not need or the policy does not allow.
fn check_override(env: &Environment, bundle: &Bundle, policy: &str) -> Result<(), WorkflowError> {
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
        Enforcement::Shadow => return Err(nothing("runs in shadow; it never blocks")),
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
    Ok(())
}

/// Approvals and overrides of `bundle` that count: all of them without
/// signers; with signers, those whose signature verifies against the signers
/// in force now and has not expired. The second list says why each other
/// one does not count.
fn counted<T>(
    project: &Project,
    env: &Environment,
    history: &History,
    digest: &str,
    records: Vec<T>,
    seq: impl Fn(&T) -> u64,
) -> (Vec<T>, Vec<String>) {
    let mut judge = Judge::new(history, &project.config.project);
    let force = judge.in_force(&env.name, digest, u64::MAX);
    if force.signers().is_none() {
        return (records, Vec::new());
    }
    let now = crate::trust::time::parse_rfc3339(&now_rfc3339()).unwrap_or_default();
    let mut refused = Vec::new();
    let mut kept = Vec::new();
    for r in records {
        let n = seq(&r);
        let Some(entry) = history.entries().get(n as usize - 1) else {
            continue;
        };
        let Some(claim) = signing::Claim::of(entry) else {
            continue;
        };
        let kind = entry.kind().as_str();
        match judge.verify(&claim, &force) {
            Ok(by) if by.expires_at > now => kept.push(r),
            Ok(by) => refused.push(format!(
                "{kind} by {} (entry {n}) expired at {}",
                by.principal,
                crate::store::rfc3339(by.expires_at)
            )),
            Err(why) => refused.push(format!(
                "{kind} by {} (entry {n}) does not count: {why}",
                entry.actor
            )),
        }
    }
    (kept, refused)
}

pub(crate) fn counted_approvals(
    project: &Project,
    env: &Environment,
    history: &History,
    digest: &str,
) -> (Vec<ApprovalRecord>, Vec<String>) {
    counted(
        project,
        env,
        history,
        digest,
        history.approvals(digest),
        |a| a.seq,
    )
}

pub(crate) fn counted_overrides(
    project: &Project,
    env: &Environment,
    history: &History,
    digest: &str,
) -> (Vec<OverrideRecord>, Vec<String>) {
    counted(
        project,
        env,
        history,
        digest,
        history.overrides(digest),
        |o| o.seq,
    )
}

/// Fails unless the environment's approval rule is met for this bundle.
pub(crate) fn check_approved(
    project: &Project,
    env: &Environment,
    history: &History,
    bundle: &Bundle,
) -> Result<Vec<ApprovalRecord>, WorkflowError> {
    let (approvals, refused) = counted_approvals(project, env, history, &bundle.digest);
    for why in &refused {
        tracing::warn!("{why}");
    }
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
