//! `opsdeploy approve`: approvals and overrides bound to one plan digest.

use std::path::Path;

use serde_json::json;

use super::history::{ApprovalRecord, OverrideRecord};
use super::signing::{self, InForce, Judge};
use super::{ErrorClass, History, Project, WorkflowError, short};
use crate::config::{Enforcement, Environment};
use crate::store::bundle::{Bundle, RESULTS};
use crate::store::{EntryKind, NewEntry, now_rfc3339};
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

#[derive(Debug, PartialEq, Eq)]
pub enum ApproveOutcome {
    Approved {
        digest: String,
        by: String,
        valid: usize,
        needed: usize,
    },
    AlreadyApproved {
        digest: String,
        by: String,
    },
    Overridden {
        digest: String,
        by: String,
        policy: String,
    },
}

/// The bundle `--plan` names, or the environment's latest plan.
pub fn resolve_bundle(
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
pub fn valid_approvals<'a>(
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
    let actor = &actor.to_string();
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

pub fn approve(project: &Project, req: &ApproveRequest) -> Result<ApproveOutcome, WorkflowError> {
    let env = project.config.require_environment(req.environment)?;
    let history = project.history()?;
    let bundle = resolve_bundle(project, &history, &env.name, req.digest)?;
    bundle.verify()?;
    let mut judge = Judge::new(&history, &project.config.project);
    let force = judge.in_force(&env.name, &bundle.digest, u64::MAX);
    if force.signers().is_none() {
        return approve_unsigned(project, env, &history, &bundle, req, &force);
    }
    (req.show)(&bundle, &force.describe(&env.name));
    let head = log_head(&history);
    let signed = match req.signature {
        Some(sig) => signing::read_detached(sig)?,
        None => {
            let Some(key) =
                SigningKey::find(req.key, project.dir()).map_err(|e| WorkflowError::Other {
                    what: e.to_string(),
                    location: None,
                    hint: Some("pass --key FILE".into()),
                    class: ErrorClass::Error,
                })?
            else {
                return Err(WorkflowError::Other {
                    what: format!(
                        "approvals for \"{}\" must be signed and no signing key is set",
                        env.name
                    ),
                    location: force.signers().map(|s| s.path.clone()),
                    hint: Some(format!(
                        "pass --key ~/.ssh/id_ed25519 (or set OPSDEPLOY_SIGNING_KEY, or git's gpg.format=ssh and user.signingKey); a runner without your key: `opsdeploy approve {} --plan {} --statement > s.json`, then `ssh-keygen -Y sign -n opsdeploy -f KEY s.json`",
                        env.name,
                        short(&bundle.digest)
                    )),
                    class: ErrorClass::ApprovalMissing,
                });
            };
            let build =
                |approver: &str| statement_for(project, env, &bundle, req, approver, head.clone());
            let planned = judge.of_plan(&bundle.digest);
            signing::sign_with_key(project, &force, planned.as_ref(), &key, build)?
        }
    };
    let st = &signed.statement;
    let actor = st.approver.clone();
    let kind = match st.kind {
        Kind::Approval => EntryKind::Approval,
        Kind::Override => EntryKind::Override,
    };
    if let (Some(policy), Kind::Override) = (&st.policy, st.kind) {
        check_override(env, &bundle, policy)?;
    }
    check_may_approve(env, &bundle, &actor)?;
    if kind == EntryKind::Approval
        && counted_approvals(project, env, &history, &bundle.digest)
            .0
            .iter()
            .any(|a| a.approver == actor)
    {
        return Ok(ApproveOutcome::AlreadyApproved {
            digest: bundle.digest,
            by: actor,
        });
    }
    let mut data = json!({"statement": signed.text, "signature": signed.signature});
    for (k, v) in [
        ("comment", &st.comment),
        ("policy", &st.policy),
        ("reason", &st.reason),
    ] {
        if let Some(v) = v {
            data[k] = json!(v);
        }
    }
    let at = now_rfc3339();
    let claim = signing::Claim {
        seq: history.entries().len() as u64 + 1,
        at: &at,
        kind,
        actor: &actor,
        environment: Some(&env.name),
        digest: Some(&bundle.digest),
        data: &data,
    };
    let by = judge
        .verify(&claim, &force)
        .map_err(|why| WorkflowError::Other {
            what: format!(
                "the signed approval of plan {} does not count: {why}",
                short(&bundle.digest)
            ),
            location: force.signers().map(|s| s.path.clone()),
            hint: Some(format!(
                "sign a fresh statement for this plan: `opsdeploy approve {} --plan {} --key FILE`",
                env.name,
                short(&bundle.digest)
            )),
            class: ErrorClass::ApprovalMissing,
        })?;
    data["key"] = json!(by.key);
    project.store.append(
        NewEntry::new(kind, &actor, &env.name)
            .digest(&bundle.digest)
            .data(data),
    )?;
    outcome(project, env, &bundle, kind, actor, st.policy.clone())
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

/// The outcome after an approval or override was logged.
fn outcome(
    project: &Project,
    env: &Environment,
    bundle: &Bundle,
    kind: EntryKind,
    by: String,
    policy: Option<String>,
) -> Result<ApproveOutcome, WorkflowError> {
    if let (EntryKind::Override, Some(policy)) = (kind, policy) {
        return Ok(ApproveOutcome::Overridden {
            digest: bundle.digest.clone(),
            by,
            policy,
        });
    }
    let history = project.history()?;
    let (approvals, _) = counted_approvals(project, env, &history, &bundle.digest);
    let valid = valid_approvals(env, &bundle.manifest.planned_by, &approvals).len();
    Ok(ApproveOutcome::Approved {
        digest: bundle.digest.clone(),
        by,
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
        return Err(unknown_actor());
    }
    let head = log_head(&history);
    Ok(statement_for(project, env, &bundle, req, &project.actor, head).to_text())
}

fn no_signers(env: &Environment) -> WorkflowError {
    WorkflowError::Other {
        what: format!(
            "\"{}\" has no `approval {{ signers }}`: there is nothing to check a signature against",
            env.name
        ),
        location: Some("opsdeploy.hcl".into()),
        hint: Some(
            "add `signers = \"deploy/allowed_signers\"` to the environment's approval block, or approve without a key"
                .into(),
        ),
        class: ErrorClass::Usage,
    }
}

fn unknown_actor() -> WorkflowError {
    WorkflowError::Other {
        what: "cannot tell who is approving: OPSDEPLOY_USER, `git config user.email` and $USER are all unset".into(),
        location: None,
        hint: Some(
            "set OPSDEPLOY_USER=you@example.com, or run `git config --global user.email you@example.com`"
                .into(),
        ),
        class: ErrorClass::ApprovalMissing,
    }
}

/// Today's approvals without signers: the acting identity, unverified.
fn approve_unsigned(
    project: &Project,
    env: &Environment,
    history: &History,
    bundle: &Bundle,
    req: &ApproveRequest,
    force: &InForce,
) -> Result<ApproveOutcome, WorkflowError> {
    if req.signature.is_some() || req.key.is_some() {
        return Err(no_signers(env));
    }
    // An approval vouches for a person; one by nobody in particular vouches for nothing.
    if project.actor == super::identity::UNKNOWN {
        return Err(unknown_actor());
    }
    check_may_approve(env, bundle, &project.actor)?;
    let actor = project.actor.clone();
    if let Some((policy, reason)) = req.override_policy {
        check_override(env, bundle, policy)?;
        (req.show)(bundle, &force.describe(&env.name));
        project.store.append(
            NewEntry::new(EntryKind::Override, &actor, &env.name)
                .digest(&bundle.digest)
                .data(json!({"policy": policy, "reason": reason})),
        )?;
        return outcome(
            project,
            env,
            bundle,
            EntryKind::Override,
            actor,
            Some(policy.into()),
        );
    }
    if history
        .approvals(&bundle.digest)
        .iter()
        .any(|a| a.approver == actor)
    {
        return Ok(ApproveOutcome::AlreadyApproved {
            digest: bundle.digest.clone(),
            by: actor,
        });
    }
    (req.show)(bundle, &force.describe(&env.name));
    let mut data = json!({});
    if let Some(c) = req.comment {
        data["comment"] = json!(c);
    }
    project.store.append(
        NewEntry::new(EntryKind::Approval, &actor, &env.name)
            .digest(&bundle.digest)
            .data(data),
    )?;
    outcome(project, env, bundle, EntryKind::Approval, actor, None)
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
        Enforcement::SoftMandatory => {}
    }
    let results: serde_json::Value = bundle
        .read(RESULTS)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let denied = results["decisions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|d| d["policy"] == policy && d["denied"] == true);
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
        match judge.verify(&entry.into(), &force) {
            Ok(by) if by.expires_at > now => kept.push(r),
            Ok(by) => refused.push(format!(
                "{} by {} (entry {n}) expired at {}",
                entry.kind.as_str(),
                by.principal,
                crate::store::rfc3339(by.expires_at)
            )),
            Err(why) => refused.push(format!(
                "{} by {} (entry {n}) does not count: {why}",
                entry.kind.as_str(),
                entry.actor
            )),
        }
    }
    (kept, refused)
}

pub fn counted_approvals(
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

pub fn counted_overrides(
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
pub fn check_approved(
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
