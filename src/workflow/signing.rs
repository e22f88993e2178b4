//! Signed approvals in the workflow: which allowed_signers are in force for
//! a plan, signing an approval statement, and judging a logged approval or
//! override by its signature.
//!
//! The signers in force are those of the environment's last successful
//! deployment, as its plan entry recorded them: a plan that adds a key must
//! be approved by keys already trusted. Before any signed deployment, the
//! planned file is trusted (and `plan`/`status` say so).

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{ErrorClass, History, Project, WorkflowError, short};
use crate::config::Environment;
use crate::store::bundle::sha256_hex;
use crate::store::{Entry, EntryKind, rfc3339};
use crate::trust::signature::SigningKey;
use crate::trust::signers::{AllowedSigners, NotAllowed, fingerprint};
use crate::trust::statement::{Kind, Statement};
use crate::trust::{TrustError, signature, time};

/// What every output says when approvals are not signed.
pub const UNSIGNED: &str = "approvals unsigned: identity not verified";

/// How far a statement's `signed_at` may run ahead of the log's clock (a
/// detached signature is made on another machine).
const CLOCK_SKEW: i64 = 300;

/// The allowed_signers file a plan was made with, recorded in its plan entry
/// so the log alone says who could approve what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedSigners {
    /// As configured, relative to the project.
    pub path: String,
    pub sha256: String,
    pub text: String,
}

impl PlannedSigners {
    pub fn parse(&self) -> Result<AllowedSigners, TrustError> {
        AllowedSigners::parse(&self.path, &self.text)
    }
}

fn refused(what: String, hint: String) -> WorkflowError {
    WorkflowError::Other {
        what,
        location: None,
        hint: Some(hint),
        class: ErrorClass::ApprovalMissing,
    }
}

fn trust_error(e: TrustError, hint: &str) -> WorkflowError {
    let class = match e {
        TrustError::Refused(_) => ErrorClass::ApprovalMissing,
        TrustError::Invalid { .. } | TrustError::Signing(_) => ErrorClass::Error,
    };
    WorkflowError::Other {
        what: e.to_string(),
        location: None,
        hint: Some(hint.to_string()),
        class,
    }
}

/// The environment's allowed_signers as the plan reads it now; `None`
/// without `approval { signers }`. A missing or invalid file stops the plan.
pub fn read_planned(
    project: &Project,
    env: &Environment,
) -> Result<Option<PlannedSigners>, WorkflowError> {
    let Some(rel) = &env.approval.signers else {
        return Ok(None);
    };
    let shown = rel.display().to_string();
    let text = std::fs::read_to_string(project.config.resolve(rel)).map_err(|e| {
        WorkflowError::Other {
            what: format!("cannot read the allowed signers of \"{}\": {e}", env.name),
            location: Some(shown.clone()),
            hint: Some(format!(
                "create {shown} with one line per approver (`alice@example.com ssh-ed25519 AAAA...`), or remove `signers` from opsdeploy.hcl"
            )),
            class: ErrorClass::Error,
        }
    })?;
    let planned = PlannedSigners {
        path: shown,
        sha256: sha256_hex(text.as_bytes()),
        text,
    };
    planned.parse().map_err(|e| {
        trust_error(
            e,
            "fix the line (ssh-keygen(1), ALLOWED SIGNERS, describes the format), then plan again",
        )
    })?;
    Ok(Some(planned))
}

/// Which signers count for approvals of a plan.
#[derive(Debug, Clone)]
pub enum InForce {
    /// No signers, deployed or planned: approvals are unsigned.
    Unsigned,
    /// Those of the deployment running on the environment.
    Deployed {
        digest: String,
        signers: PlannedSigners,
    },
    /// Nothing signed is deployed yet: the plan's own file is trusted.
    Planned { signers: PlannedSigners },
}

impl InForce {
    pub fn signers(&self) -> Option<&PlannedSigners> {
        match self {
            InForce::Unsigned => None,
            InForce::Deployed { signers, .. } | InForce::Planned { signers } => Some(signers),
        }
    }

    /// One line for plan, approve, status and reports.
    pub fn describe(&self, env: &str) -> String {
        match self {
            InForce::Unsigned => UNSIGNED.into(),
            InForce::Deployed { digest, signers } => format!(
                "approvals signed: keys in {} as deployed by plan {}",
                signers.path,
                short(digest)
            ),
            InForce::Planned { signers } => format!(
                "approvals signed: keys in {} as planned (no signed deployment of {env} yet: this plan's file is trusted)",
                signers.path
            ),
        }
    }
}

/// What `plan` says about approvals of a new plan of `env`: how they are
/// judged and, when the plan changes allowed_signers, what it changes.
pub fn plan_trust(
    project: &Project,
    history: &History,
    env: &Environment,
    planned: Option<&PlannedSigners>,
) -> Vec<String> {
    let mut judge = Judge::new(history, &project.config.project);
    // The new plan is not logged yet: what is deployed, else its own file.
    let force = match (judge.in_force(&env.name, "", u64::MAX), planned) {
        (InForce::Unsigned, Some(p)) => InForce::Planned { signers: p.clone() },
        (f, _) => f,
    };
    let mut lines = vec![force.describe(&env.name)];
    if let InForce::Deployed { signers, .. } = &force {
        match planned {
            None => lines.push(format!(
                "this plan drops `signers`; its approvals must still be signed by the keys in {} as deployed",
                signers.path
            )),
            Some(p) if p.sha256 != signers.sha256 => {
                let (old, new) = (signers.parse().unwrap_or_default(), p.parse().unwrap_or_default());
                let added = new.added_since(&old);
                let removed = old.added_since(&new);
                let mut change = format!("{} changes in this plan", p.path);
                if !added.is_empty() {
                    change.push_str(&format!("; adds {}", added.join(", ")));
                }
                if !removed.is_empty() {
                    change.push_str(&format!("; removes {}", removed.join(", ")));
                }
                lines.push(format!(
                    "{change}: only keys deployed now may approve it"
                ));
            }
            Some(_) => {}
        }
    }
    lines
}

/// Who a verified signature names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedBy {
    pub principal: String,
    /// `SHA256:...` of the key.
    pub key: String,
    pub expires_at: i64,
}

/// What an approval or override entry claims: a logged entry, or the one
/// `approve` is about to append.
pub struct Claim<'a> {
    pub seq: u64,
    pub at: &'a str,
    pub kind: EntryKind,
    pub actor: &'a str,
    pub environment: Option<&'a str>,
    pub digest: Option<&'a str>,
    pub data: &'a serde_json::Value,
}

impl<'a> From<&'a Entry> for Claim<'a> {
    fn from(e: &'a Entry) -> Self {
        Claim {
            seq: e.seq,
            at: &e.at,
            kind: e.kind,
            actor: &e.actor,
            environment: e.environment.as_deref(),
            digest: e.digest.as_deref(),
            data: &e.data,
        }
    }
}

/// Judges signatures against the log: finds the signers in force at any
/// point and checks statements, caching what it parses.
pub struct Judge<'h> {
    history: &'h History,
    project: &'h str,
    plans: HashMap<&'h str, &'h Entry>,
    /// Per environment: (seq, digest now running) at each change.
    timelines: HashMap<String, Vec<(u64, Option<String>)>>,
    parsed: HashMap<String, Result<AllowedSigners, String>>,
}

impl<'h> Judge<'h> {
    pub fn new(history: &'h History, project: &'h str) -> Self {
        let plans = history
            .entries()
            .iter()
            .filter(|e| e.kind == EntryKind::Plan)
            .filter_map(|e| Some((e.digest.as_deref()?, e)))
            .collect();
        Judge {
            history,
            project,
            plans,
            timelines: HashMap::new(),
            parsed: HashMap::new(),
        }
    }

    /// The signers recorded in the plan entry of `digest`.
    pub fn of_plan(&self, digest: &str) -> Option<PlannedSigners> {
        let data = self.plans.get(digest)?.data.get("signers")?;
        serde_json::from_value(data.clone()).ok()
    }

    /// The signers in force for approvals of `digest` on `env` as of log
    /// position `before` (exclusive; `u64::MAX` for now).
    pub fn in_force(&mut self, env: &str, digest: &str, before: u64) -> InForce {
        let history = self.history;
        let timeline = self.timelines.entry(env.to_string()).or_insert_with(|| {
            history
                .deployment_timeline(env)
                .into_iter()
                .map(|(seq, a)| (seq, a.map(|a| a.digest)))
                .collect()
        });
        let deployed = timeline
            .iter()
            .rev()
            .find(|(seq, _)| *seq < before)
            .and_then(|(_, d)| d.clone());
        if let Some(d) = deployed
            && let Some(signers) = self.of_plan(&d)
        {
            return InForce::Deployed { digest: d, signers };
        }
        match self.of_plan(digest) {
            Some(signers) => InForce::Planned { signers },
            None => InForce::Unsigned,
        }
    }

    fn allowed(&mut self, s: &PlannedSigners) -> Result<&AllowedSigners, String> {
        self.parsed
            .entry(s.sha256.clone())
            .or_insert_with(|| s.parse().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Checks a signed approval or override against `force`: the signature,
    /// that the statement says what the entry says, that the audit head it
    /// saw is in this log, that its signer is the entry's actor, and times.
    pub fn verify(&mut self, claim: &Claim, force: &InForce) -> Result<SignedBy, String> {
        let Some(signers) = force.signers() else {
            return Err("no allowed signers are in force".into());
        };
        let text = |k: &str| claim.data.get(k).and_then(|v| v.as_str());
        let (Some(statement), Some(sig)) = (text("statement"), text("signature")) else {
            return Err(format!(
                "it is not signed, though {} is in force",
                signers.path
            ));
        };
        let s = Statement::parse("its statement", statement).map_err(|e| e.to_string())?;
        let key = signature::verify(statement.as_bytes(), sig).map_err(|e| e.to_string())?;
        let kind = match claim.kind {
            EntryKind::Approval => Kind::Approval,
            EntryKind::Override => Kind::Override,
            other => return Err(format!("a {} entry is not an approval", other.as_str())),
        };
        let mismatch = |what: &str, signed: &str, logged: &str| {
            format!("the signed statement says {what} {signed:?}, the log says {logged:?}")
        };
        let checks = [
            ("project", s.project.as_str(), Some(self.project)),
            ("environment", s.environment.as_str(), claim.environment),
            ("plan", s.digest.as_str(), claim.digest),
            ("approver", s.approver.as_str(), Some(claim.actor)),
        ];
        for (what, signed, logged) in checks {
            if Some(signed) != logged {
                return Err(mismatch(what, signed, logged.unwrap_or("")));
            }
        }
        if s.kind != kind
            || s.policy.as_deref() != text("policy")
            || s.reason.as_deref() != text("reason")
            || s.comment.as_deref() != text("comment")
        {
            return Err(
                "the signed statement's kind, policy, reason or comment differ from the log's"
                    .into(),
            );
        }
        let head = &s.audit_head;
        let seen = match head.seq {
            0 => Some(crate::store::audit::GENESIS),
            n => self
                .history
                .entries()
                .get(n as usize - 1)
                .map(|e| e.hash.as_str()),
        };
        if head.seq >= claim.seq || seen != Some(head.hash.as_str()) {
            return Err(format!(
                "the audit head it signed (entry {}, {}) is not this log's: the log before it was cut or rewritten",
                head.seq,
                short(&head.hash)
            ));
        }
        let when = |t: &str, what: &str| {
            time::parse_rfc3339(t).ok_or_else(|| format!("its {what} {t:?} is not a UTC time"))
        };
        let at = when(claim.at, "log time")?;
        let signed_at = when(&s.signed_at, "signed_at")?;
        let expires_at = when(&s.expires_at, "expires_at")?;
        if signed_at > at + CLOCK_SKEW {
            return Err(format!(
                "it says it was signed at {}, after it was logged ({})",
                s.signed_at, claim.at
            ));
        }
        if expires_at <= at {
            return Err(format!(
                "it expired at {} before it was logged ({})",
                s.expires_at, claim.at
            ));
        }
        let path = signers.path.clone();
        let allowed = self.allowed(signers)?;
        for t in [signed_at, at] {
            allowed
                .check(&path, &key, &s.approver, t)
                .map_err(|e| e.to_string())?;
        }
        Ok(SignedBy {
            principal: s.approver,
            key: fingerprint(&key),
            expires_at,
        })
    }
}

/// A statement and its signature, ready to log.
pub struct Signed {
    pub statement: Statement,
    pub text: String,
    pub signature: String,
}

/// Signs `build(principal)` with `key`, the principal being the one
/// allowed_signers maps the key to. Refuses, naming both, when the acting
/// identity names someone else; and, clearly, a key only the plan being
/// approved adds.
pub fn sign_with_key(
    project: &Project,
    force: &InForce,
    planned: Option<&PlannedSigners>,
    key: &SigningKey,
    build: impl Fn(&str) -> Statement,
) -> Result<Signed, WorkflowError> {
    let signers = force
        .signers()
        .expect("sign_with_key is called with signers in force");
    let allowed = signers
        .parse()
        .map_err(|e| trust_error(e, "fix the allowed signers file"))?;
    let public = key
        .public_key()
        .map_err(|e| trust_error(e, "pass the key with --key FILE (a private key, or a .pub whose private half ssh-agent holds)"))?;
    let fp = fingerprint(&public);
    let now = time::parse_rfc3339(&crate::store::now_rfc3339()).unwrap_or_default();
    let principals = match allowed.principals(&public, now) {
        Ok(p) => p,
        Err(why) => {
            let added = planned
                .and_then(|p| p.parse().ok())
                .and_then(|p| p.principals(&public, now).ok().map(|v| v.join(", ")));
            let (what, hint) = match (why, added, force) {
                (NotAllowed::UnknownKey, Some(who), InForce::Deployed { digest, .. }) => (
                    format!(
                        "the key {fp} ({who}) is added to {} by the very plan being approved; it cannot approve that plan",
                        signers.path
                    ),
                    format!(
                        "ask a signer trusted by the deployment running now (plan {}) to approve; the new key counts once this plan is deployed",
                        short(digest)
                    ),
                ),
                (NotAllowed::UnknownKey, _, _) => (
                    format!("the key {fp} ({}) is not in {}", key.describe(), signers.path),
                    format!(
                        "sign with your key listed in {} (--key FILE), or have it added there by a plan that is approved and deployed",
                        signers.path
                    ),
                ),
                (NotAllowed::Namespace { line }, ..) => (
                    format!(
                        "the key {fp} may not sign for opsdeploy ({}:{line} limits its namespaces)",
                        signers.path
                    ),
                    format!("add opsdeploy to its namespaces=\"...\" in {}", signers.path),
                ),
                (NotAllowed::Expired { line, why }, ..) => (
                    format!(
                        "the key {fp} does not count now: {why} ({}:{line})",
                        signers.path
                    ),
                    "sign with a key that is valid now, or renew this one's valid-before in a plan approved by current signers".into(),
                ),
            };
            return Err(refused(what, hint));
        }
    };
    let (who, source) = super::identity::current_with_source(project.dir());
    let principal = if principals.contains(&who.as_str()) {
        who
    } else if who == super::identity::UNKNOWN && principals.len() == 1 {
        principals[0].to_string()
    } else {
        return Err(refused(
            format!(
                "{source} says you are {who}, but the key {fp} is {}'s in {}",
                principals.join(", "),
                signers.path
            ),
            format!(
                "approve as yourself: sign with your own key, or set OPSDEPLOY_USER={}",
                principals[0]
            ),
        ));
    };
    let statement = build(&principal);
    let text = statement.to_text();
    let signature = key
        .sign(text.as_bytes())
        .map_err(|e| trust_error(e, "check the key (`ssh-add -l` lists what ssh-agent holds)"))?;
    // The agent may hold another key than the .pub names: check before logging.
    let made_by = signature::verify(text.as_bytes(), &signature)
        .map_err(|e| trust_error(e, "check the key and try again"))?;
    if made_by != public {
        return Err(refused(
            format!(
                "ssh-keygen signed with {}, not with {fp}",
                fingerprint(&made_by)
            ),
            "pass the key you mean with --key FILE".into(),
        ));
    }
    Ok(Signed {
        statement,
        text,
        signature,
    })
}

/// Reads a detached signature (`ssh-keygen -Y sign -n opsdeploy s.json`
/// writes `s.json.sig` beside the statement it signs).
pub fn read_detached(sig_path: &Path) -> Result<Signed, WorkflowError> {
    let shown = sig_path.display().to_string();
    let unreadable = |path: &Path, e: std::io::Error| {
        WorkflowError::Other {
        what: format!("cannot read {}: {e}", path.display()),
        location: Some(shown.clone()),
        hint: Some(
            "pass the .sig file ssh-keygen wrote, with the statement it signed beside it (s.json and s.json.sig)"
                .into(),
        ),
        class: ErrorClass::Usage,
    }
    };
    let signature = std::fs::read_to_string(sig_path).map_err(|e| unreadable(sig_path, e))?;
    let statement_path = match shown.strip_suffix(".sig") {
        Some(p) => std::path::PathBuf::from(p),
        None => {
            return Err(WorkflowError::Other {
                what: format!("{shown} does not end in .sig"),
                location: Some(shown.clone()),
                hint: Some(
                    "pass the file `ssh-keygen -Y sign -n opsdeploy s.json` wrote (s.json.sig)"
                        .into(),
                ),
                class: ErrorClass::Usage,
            });
        }
    };
    let text =
        std::fs::read_to_string(&statement_path).map_err(|e| unreadable(&statement_path, e))?;
    let statement = Statement::parse(&statement_path.display().to_string(), &text).map_err(|e| {
        trust_error(
            e,
            "sign the statement exactly as `opsdeploy approve ENV --plan D --statement` printed it",
        )
    })?;
    Ok(Signed {
        statement,
        text,
        signature,
    })
}

/// The time an approval expires when `--expires-in` is not given.
pub const DEFAULT_EXPIRY_SECS: i64 = 7 * 86_400;

/// `now` plus `secs`, as a statement writes it.
pub fn expiry(secs: i64) -> String {
    let now = time::parse_rfc3339(&crate::store::now_rfc3339()).unwrap_or_default();
    rfc3339(now + secs)
}
