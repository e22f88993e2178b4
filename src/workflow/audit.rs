//! `opsdeploy audit verify | log | checkpoint`: the audit log checked —
//! its hash chain, every signed approval and override against the signers in
//! force when it was logged, and that it still extends its checkpoints
//! (PROJECT_STATE.md's and any given) — or read, or its head stated.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::signing::{InForce, Judge, SigningError, TrustStep};
use super::{History, Project, WorkflowError, short};
use crate::store::Entry;
use crate::store::audit::GENESIS;
use crate::trust::checkpoint::Checkpoint;
use crate::trust::signature::{self, SigningKey};
use crate::trust::signers::fingerprint;

/// A log whose chain, signatures and checkpoints all verified; also `audit
/// verify --format json`.
#[derive(Debug, Serialize)]
pub struct Verified {
    pub valid: bool,
    pub entries: usize,
    /// Hash of the last entry.
    pub head: String,
    /// Approvals and overrides whose signature verified.
    pub signed: usize,
    /// Approvals and overrides logged while no signers were in force.
    pub unsigned: usize,
    /// The checkpoints the log extends.
    pub checkpoints: Vec<CheckpointExtended>,
}

/// A checkpoint the log was found to extend.
#[derive(Debug, Serialize)]
pub struct CheckpointExtended {
    /// The file it was read from, as given (or PROJECT_STATE.md).
    pub file: String,
    pub size: u64,
    pub head: String,
    /// The principals of the deployed key that signed it.
    pub signed_by: Option<String>,
}

/// The chain first, then every signature, then every checkpoint; the first
/// that fails is the error, naming where.
pub fn verify(project: &Project, checkpoints: &[PathBuf]) -> Result<Verified, WorkflowError> {
    let v = project.store.verify()?;
    if let Some(bad) = v.first_bad {
        return Err(WorkflowError::AuditDamaged {
            log: project.store.describe(),
            position: bad.position,
            seq: bad.seq,
            reason: bad.reason,
        });
    }
    let history = project.history()?;
    let sigs = check_signatures(project, &history);
    if let Some(bad) = sigs.bad.first() {
        return Err(WorkflowError::BadSignature {
            log: project.store.describe(),
            seq: bad.seq,
            kind: bad.kind.clone(),
            actor: bad.actor.clone(),
            reason: bad.reason.clone(),
            more: sigs.bad.len() - 1,
        });
    }
    // PROJECT_STATE.md's checkpoint (written after each apply), then those given.
    let state = project.config.resolve(&project.config.files.state_file);
    let candidates =
        std::iter::once((state, false)).chain(checkpoints.iter().map(|f| (f.clone(), true)));
    let mut extended = Vec::new();
    for (path, given) in candidates {
        if !given && !path.is_file() {
            continue;
        }
        let shown = project.shown(&path).display().to_string();
        let Some(cp) = read_checkpoint(&path)? else {
            if given {
                return Err(WorkflowError::NoCheckpoint { path: shown });
            }
            continue;
        };
        match check_checkpoint(project, &history, &cp) {
            Ok(signed_by) => extended.push(CheckpointExtended {
                file: shown,
                size: cp.size,
                head: cp.head,
                signed_by,
            }),
            Err(why) => {
                return Err(WorkflowError::CheckpointNotExtended {
                    path: shown,
                    size: cp.size,
                    why,
                });
            }
        }
    }
    Ok(Verified {
        valid: true,
        entries: v.entries,
        head: v.head,
        signed: sigs.signed,
        unsigned: sigs.unsigned,
        checkpoints: extended,
    })
}

/// The log's entries, or those of one environment.
pub fn log(project: &Project, environment: Option<&str>) -> Result<Vec<Entry>, WorkflowError> {
    Ok(project
        .store
        .entries()?
        .into_iter()
        .filter(|e| environment.is_none_or(|env| e.environment.as_deref() == Some(env)))
        .collect())
}

/// `audit checkpoint [--sign KEY]`: the log's checkpoint now, optionally
/// SSH-signed.
pub fn checkpoint(project: &Project, sign: Option<&Path>) -> Result<Checkpoint, WorkflowError> {
    let history = project.history()?;
    let mut cp = head_checkpoint(project, &history);
    if let Some(key) = sign {
        let sig = SigningKey::at(key)
            .sign(cp.body().as_bytes())
            .map_err(|source| SigningError::Trust {
                step: TrustStep::Sign,
                source,
            })?;
        cp.signature = Some(sig);
    }
    Ok(cp)
}

/// An entry whose signature does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadSignature {
    pub seq: u64,
    pub kind: String,
    pub actor: String,
    pub reason: String,
}

/// What the signature check found.
#[derive(Debug, Default)]
pub(crate) struct Signatures {
    pub signed: usize,
    pub unsigned: usize,
    pub bad: Vec<BadSignature>,
}

/// Checks every approval and override against the signers in force at its
/// place in the log (those of its environment's deployment then, else those
/// its own plan was made with).
pub(crate) fn check_signatures(project: &Project, history: &History) -> Signatures {
    let mut judge = Judge::new(history, &project.config.project);
    let mut out = Signatures::default();
    for (e, claim) in history
        .entries()
        .iter()
        .filter_map(|e| Some((e, super::signing::Claim::of(e)?)))
    {
        let env = e.environment.as_deref().unwrap_or_default();
        let digest = e.digest.as_deref().unwrap_or_default();
        let force = judge.in_force(env, digest, e.seq);
        if let InForce::Unsigned = force {
            out.unsigned += 1;
            continue;
        }
        match judge.verify(&claim, &force) {
            Ok(_) => out.signed += 1,
            Err(reason) => out.bad.push(BadSignature {
                seq: e.seq,
                kind: e.kind().as_str().to_string(),
                actor: e.actor.clone(),
                reason,
            }),
        }
    }
    out
}

/// The log's checkpoint now.
pub(crate) fn head_checkpoint(project: &Project, history: &History) -> Checkpoint {
    Checkpoint {
        project: project.config.project.clone(),
        size: history.entries().len() as u64,
        head: history
            .entries()
            .last()
            .map_or(GENESIS.to_string(), |e| e.hash.clone()),
        signature: None,
    }
}

/// Whether the log extends `cp`: it has at least its size, and the entry at
/// that size is the one it saw. A signed checkpoint's key must be one some
/// environment's deployed allowed_signers lists. Returns who signed it.
fn check_checkpoint(
    project: &Project,
    history: &History,
    cp: &Checkpoint,
) -> Result<Option<String>, String> {
    if cp.project != project.config.project {
        return Err(format!(
            "it is a checkpoint of project \"{}\", not \"{}\"",
            cp.project, project.config.project
        ));
    }
    let entries = history.entries();
    let size = cp.size;
    if size > entries.len() as u64 {
        return Err(format!(
            "the log has {} entries but had {size} at the checkpoint: entries {}..{size} were cut",
            entries.len(),
            entries.len() + 1
        ));
    }
    let at = match size {
        0 => GENESIS,
        n => entries[n as usize - 1].hash.as_str(),
    };
    if at != cp.head {
        return Err(format!(
            "entry {size} is not the one the checkpoint saw (head {}, now {}): the log was rewritten at or before size {size}",
            short(&cp.head),
            short(at)
        ));
    }
    let Some(sig) = &cp.signature else {
        return Ok(None);
    };
    let key = signature::verify(cp.body().as_bytes(), sig).map_err(|e| e.to_string())?;
    let mut judge = Judge::new(history, &project.config.project);
    for env in &project.config.environments {
        if let InForce::Deployed { signers, .. } = judge.in_force(&env.name, "", u64::MAX)
            && let Ok(allowed) = super::signing::parse_signers(&signers)
            && let Some(who) = allowed.signers.iter().find(|s| s.key.key_data() == &key)
        {
            return Ok(Some(who.principals.join(",")));
        }
    }
    Err(format!(
        "it is signed by {}, a key no deployed allowed_signers lists",
        fingerprint(&key)
    ))
}

/// Reads checkpoint FILE (or one embedded in it, as in PROJECT_STATE.md).
fn read_checkpoint(path: &Path) -> Result<Option<Checkpoint>, WorkflowError> {
    let shown = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|source| WorkflowError::CheckpointUnreadable {
            path: shown.clone(),
            source,
        })?;
    Checkpoint::find(&shown, &text).map_err(|source| {
        SigningError::Trust {
            step: TrustStep::Checkpoint,
            source,
        }
        .into()
    })
}
