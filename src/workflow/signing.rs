//! Signed approvals in the workflow: which allowed_signers are in force for
//! a plan, signing an approval statement, and judging a logged approval or
//! override by its signature.
//!
//! The signers in force are those of the environment's last successful
//! deployment, as its plan entry recorded them: a plan that adds a key must
//! be approved by keys already trusted. Before any signed deployment, the
//! planned file is trusted (and `plan`/`status` say so).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{History, Project, short};
use crate::config::Environment;
use crate::store::bundle::sha256_hex;
use crate::store::records::{PlannedSigners, SignedStatement};
use crate::store::{Entry, EntryData, rfc3339};
use crate::trust::signature::SigningKey;
use crate::trust::signers::{AllowedSigners, NotAllowed, fingerprint};
use crate::trust::statement::{Kind, Statement};
use crate::trust::{TrustError, signature, time};

/// What every output says when approvals are not signed.
pub const UNSIGNED: &str = "approvals unsigned: identity not verified";

/// How far a statement's `signed_at` may run ahead of the log's clock (a
/// detached signature is made on another machine).
const CLOCK_SKEW: i64 = 300;

/// What was being done with a trust file or key when it failed (the hint,
/// in `crate::error`, follows from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustStep {
    /// `plan` reading the environment's allowed_signers.
    PlanSigners,
    /// `approve` reading the allowed_signers in force.
    SignersInForce,
    /// Reading the signing key's public half.
    PublicKey,
    /// Finding the signing key (OPSDEPLOY_SIGNING_KEY, git's user.signingKey).
    FindKey,
    /// `ssh-keygen -Y sign`.
    Sign,
    /// Checking the signature ssh-keygen just made.
    CheckOwnSignature,
    /// Reading a detached statement (`approve --signature`).
    DetachedStatement,
    /// Reading a checkpoint (`audit verify --checkpoint`, PROJECT_STATE.md).
    Checkpoint,
}

/// Why a signed approval, override or checkpoint was refused or could not be
/// made.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("{source}")]
    Trust {
        step: TrustStep,
        #[source]
        source: TrustError,
    },
    #[error("cannot read the allowed signers of \"{environment}\": {source}")]
    SignersUnreadable {
        environment: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("approvals for \"{environment}\" must be signed and no signing key is set")]
    NoSigningKey {
        environment: String,
        digest: String,
        signers: String,
    },
    #[error(
        "\"{environment}\" has no `approval {{ signers }}`: there is nothing to check a signature against"
    )]
    NoSigners { environment: String },
    #[error(
        "the key {fingerprint} ({principals}) is added to {signers} by the very plan being approved; it cannot approve that plan"
    )]
    KeyAddedByThisPlan {
        fingerprint: String,
        principals: String,
        signers: String,
        /// The plan deployed now, whose signers count.
        deployed: String,
    },
    #[error("the key {fingerprint} ({key}) is not in {signers}")]
    KeyNotListed {
        fingerprint: String,
        key: String,
        signers: String,
    },
    #[error(
        "the key {fingerprint} may not sign for opsdeploy ({signers}:{line} limits its namespaces)"
    )]
    KeyNamespace {
        fingerprint: String,
        signers: String,
        line: usize,
    },
    #[error("the key {fingerprint} does not count now: {why} ({signers}:{line})")]
    KeyNotValidNow {
        fingerprint: String,
        why: String,
        signers: String,
        line: usize,
    },
    #[error(
        "{said_by} says you are {who}, but the key {fingerprint} is {}'s in {signers}",
        principals.join(", ")
    )]
    NotYourKey {
        /// What named the acting identity (`OPSDEPLOY_USER`, ...).
        said_by: &'static str,
        who: String,
        fingerprint: String,
        principals: Vec<String>,
        signers: String,
    },
    #[error("ssh-keygen signed with {made_by}, not with {fingerprint}")]
    SignedWithAnotherKey {
        made_by: String,
        fingerprint: String,
    },
    #[error("the signed approval of plan {} does not count: {why}", short(digest))]
    DoesNotCount {
        environment: String,
        digest: String,
        why: String,
        signers: String,
    },
    #[error("cannot read {}: {source}", path.display())]
    DetachedUnreadable {
        path: PathBuf,
        /// The `.sig` file passed.
        sig: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} does not end in .sig")]
    NotASignatureFile { path: String },
}

impl SigningError {
    fn trust(step: TrustStep) -> impl Fn(TrustError) -> SigningError {
        move |source| SigningError::Trust { step, source }
    }
}

/// The allowed_signers a plan recorded, parsed.
pub(crate) fn parse_signers(s: &PlannedSigners) -> Result<AllowedSigners, TrustError> {
    AllowedSigners::parse(&s.path, &s.text)
}

/// The environment's allowed_signers as the plan reads it now; `None`
/// without `approval { signers }`. A missing or invalid file stops the plan.
pub(crate) fn read_planned(
    project: &Project,
    env: &Environment,
) -> Result<Option<PlannedSigners>, SigningError> {
    let Some(rel) = &env.approval.signers else {
        return Ok(None);
    };
    let shown = rel.display().to_string();
    let text = std::fs::read_to_string(project.config.resolve(rel)).map_err(|source| {
        SigningError::SignersUnreadable {
            environment: env.name.clone(),
            path: shown.clone(),
            source,
        }
    })?;
    let planned = PlannedSigners {
        path: shown,
        sha256: sha256_hex(text.as_bytes()),
        text,
    };
    parse_signers(&planned).map_err(SigningError::trust(TrustStep::PlanSigners))?;
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

/// How approvals of plan `digest` of `env` are judged now, in one line.
pub(crate) fn describe_in_force(
    history: &History,
    project: &Project,
    env: &str,
    digest: &str,
) -> String {
    Judge::new(history, &project.config.project)
        .in_force(env, digest, u64::MAX)
        .describe(env)
}

/// What `plan` says about approvals of a new plan of `env`: how they are
/// judged and, when the plan changes allowed_signers, what it changes.
pub(crate) fn plan_trust(
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
                let old = parse_signers(signers).unwrap_or_default();
                let new = parse_signers(p).unwrap_or_default();
                let added = new.added_since(&old);
                let removed = old.added_since(&new);
                let mut change = format!("{} changes in this plan", p.path);
                if !added.is_empty() {
                    change.push_str(&format!("; adds {}", added.join(", ")));
                }
                if !removed.is_empty() {
                    change.push_str(&format!("; removes {}", removed.join(", ")));
                }
                lines.push(format!("{change}: only keys deployed now may approve it"));
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
    pub kind: Kind,
    pub actor: &'a str,
    pub environment: Option<&'a str>,
    pub digest: Option<&'a str>,
    pub comment: Option<&'a str>,
    /// An override's policy and reason.
    pub policy: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub signed: Option<&'a SignedStatement>,
}

impl<'a> Claim<'a> {
    /// The claim of an entry whose content is `data`; `None` unless it is an
    /// approval or an override.
    pub fn new(
        seq: u64,
        at: &'a str,
        actor: &'a str,
        environment: Option<&'a str>,
        digest: Option<&'a str>,
        data: &'a EntryData,
    ) -> Option<Claim<'a>> {
        let (kind, comment, policy, reason, signed) = match data {
            EntryData::Approval(a) => (Kind::Approval, &a.comment, None, None, &a.signed),
            EntryData::Override(o) => (
                Kind::Override,
                &o.comment,
                Some(o.policy.as_str()),
                Some(o.reason.as_str()),
                &o.signed,
            ),
            _ => return None,
        };
        Some(Claim {
            seq,
            at,
            kind,
            actor,
            environment,
            digest,
            comment: comment.as_deref(),
            policy,
            reason,
            signed: signed.as_ref(),
        })
    }

    /// The claim a logged approval or override makes.
    pub fn of(e: &'a Entry) -> Option<Claim<'a>> {
        Claim::new(
            e.seq,
            &e.at,
            &e.actor,
            e.environment.as_deref(),
            e.digest.as_deref(),
            &e.data,
        )
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
            .filter(|e| matches!(e.data, EntryData::Plan(_)))
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
        match &self.plans.get(digest)?.data {
            EntryData::Plan(p) => p.signers.clone(),
            _ => None,
        }
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
            .or_insert_with(|| parse_signers(s).map_err(|e| e.to_string()))
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
        let Some(signed) = claim.signed else {
            return Err(format!(
                "it is not signed, though {} is in force",
                signers.path
            ));
        };
        let statement = signed.statement.as_str();
        let s = Statement::parse("its statement", statement).map_err(|e| e.to_string())?;
        let key = signature::verify(statement.as_bytes(), &signed.signature)
            .map_err(|e| e.to_string())?;
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
        if s.kind != claim.kind
            || s.policy.as_deref() != claim.policy
            || s.reason.as_deref() != claim.reason
            || s.comment.as_deref() != claim.comment
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
pub(crate) fn sign_with_key(
    project: &Project,
    signers: &PlannedSigners,
    force: &InForce,
    planned: Option<&PlannedSigners>,
    key: &SigningKey,
    build: impl Fn(&str) -> Statement,
) -> Result<Signed, SigningError> {
    let allowed = parse_signers(signers).map_err(SigningError::trust(TrustStep::SignersInForce))?;
    let public = key
        .public_key()
        .map_err(SigningError::trust(TrustStep::PublicKey))?;
    let fp = fingerprint(&public);
    let now = time::parse_rfc3339(&crate::store::now_rfc3339()).unwrap_or_default();
    let principals = match allowed.principals(&public, now) {
        Ok(p) => p,
        Err(why) => {
            let added = planned
                .and_then(|p| parse_signers(p).ok())
                .and_then(|p| p.principals(&public, now).ok().map(|v| v.join(", ")));
            let path = signers.path.clone();
            return Err(match (why, added, force) {
                (NotAllowed::UnknownKey, Some(who), InForce::Deployed { digest, .. }) => {
                    SigningError::KeyAddedByThisPlan {
                        fingerprint: fp,
                        principals: who,
                        signers: path,
                        deployed: digest.clone(),
                    }
                }
                (NotAllowed::UnknownKey, _, _) => SigningError::KeyNotListed {
                    fingerprint: fp,
                    key: key.describe(),
                    signers: path,
                },
                (NotAllowed::Namespace { line }, ..) => SigningError::KeyNamespace {
                    fingerprint: fp,
                    signers: path,
                    line,
                },
                (NotAllowed::Expired { line, why }, ..) => SigningError::KeyNotValidNow {
                    fingerprint: fp,
                    why,
                    signers: path,
                    line,
                },
            });
        }
    };
    let (who, said_by) = super::identity::current_with_source(project.dir());
    let principal = if principals.contains(&who.as_str()) {
        who
    } else if who == super::identity::UNKNOWN && principals.len() == 1 {
        principals[0].to_string()
    } else {
        return Err(SigningError::NotYourKey {
            said_by,
            who,
            fingerprint: fp,
            principals: principals.iter().map(|p| p.to_string()).collect(),
            signers: signers.path.clone(),
        });
    };
    let statement = build(&principal);
    let text = statement.to_text();
    let signature = key
        .sign(text.as_bytes())
        .map_err(SigningError::trust(TrustStep::Sign))?;
    // The agent may hold another key than the .pub names: check before logging.
    let made_by = signature::verify(text.as_bytes(), &signature)
        .map_err(SigningError::trust(TrustStep::CheckOwnSignature))?;
    if made_by != public {
        return Err(SigningError::SignedWithAnotherKey {
            made_by: fingerprint(&made_by),
            fingerprint: fp,
        });
    }
    Ok(Signed {
        statement,
        text,
        signature,
    })
}

/// Reads a detached signature (`ssh-keygen -Y sign -n opsdeploy s.json`
/// writes `s.json.sig` beside the statement it signs).
pub(crate) fn read_detached(sig_path: &Path) -> Result<Signed, SigningError> {
    let shown = sig_path.display().to_string();
    let unreadable = |path: &Path, source| SigningError::DetachedUnreadable {
        path: path.to_path_buf(),
        sig: shown.clone(),
        source,
    };
    let signature = std::fs::read_to_string(sig_path).map_err(|e| unreadable(sig_path, e))?;
    let Some(statement_path) = shown.strip_suffix(".sig").map(PathBuf::from) else {
        return Err(SigningError::NotASignatureFile { path: shown });
    };
    let text =
        std::fs::read_to_string(&statement_path).map_err(|e| unreadable(&statement_path, e))?;
    let statement = Statement::parse(&statement_path.display().to_string(), &text)
        .map_err(SigningError::trust(TrustStep::DetachedStatement))?;
    Ok(Signed {
        statement,
        text,
        signature,
    })
}

/// `now` plus `secs`, as a statement writes it.
pub(crate) fn expiry(secs: i64) -> String {
    let now = time::parse_rfc3339(&crate::store::now_rfc3339()).unwrap_or_default();
    rfc3339(now + secs)
}
