//! `opsdeploy audit verify` beyond the hash chain: every signed approval and
//! override against the signers in force when it was logged, and
//! checkpoints (`audit checkpoint`, and the one PROJECT_STATE.md keeps) that
//! the log must still extend.

use serde::Serialize;

use super::signing::{InForce, Judge};
use super::{ErrorClass, History, Project, WorkflowError, short};
use crate::store::EntryKind;
use crate::store::audit::GENESIS;
use crate::trust::checkpoint::Checkpoint;
use crate::trust::signature::SigningKey;
use crate::trust::signers::fingerprint;
use crate::trust::{TrustError, signature};

/// An entry whose signature does not hold.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BadSignature {
    pub seq: u64,
    pub kind: String,
    pub actor: String,
    pub reason: String,
}

/// What the signature check found.
#[derive(Debug, Default, Serialize)]
pub struct Signatures {
    /// Approvals and overrides whose signature verified.
    pub signed: usize,
    /// Approvals and overrides logged while no signers were in force.
    pub unsigned: usize,
    pub bad: Vec<BadSignature>,
}

/// Checks every approval and override against the signers in force at its
/// place in the log (those of its environment's deployment then, else those
/// its own plan was made with).
pub fn check_signatures(project: &Project, history: &History) -> Signatures {
    let mut judge = Judge::new(history, &project.config.project);
    let mut out = Signatures::default();
    for e in history
        .entries()
        .iter()
        .filter(|e| matches!(e.kind, EntryKind::Approval | EntryKind::Override))
    {
        let env = e.environment.as_deref().unwrap_or_default();
        let digest = e.digest.as_deref().unwrap_or_default();
        let force = judge.in_force(env, digest, e.seq);
        if let InForce::Unsigned = force {
            out.unsigned += 1;
            continue;
        }
        match judge.verify(&e.into(), &force) {
            Ok(_) => out.signed += 1,
            Err(reason) => out.bad.push(BadSignature {
                seq: e.seq,
                kind: e.kind.as_str().to_string(),
                actor: e.actor.clone(),
                reason,
            }),
        }
    }
    out
}

/// The log's checkpoint now.
pub fn checkpoint(project: &Project, history: &History) -> Checkpoint {
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

/// `audit checkpoint --sign KEY`: the checkpoint with an SSH signature.
pub fn sign_checkpoint(mut cp: Checkpoint, key: &SigningKey) -> Result<Checkpoint, WorkflowError> {
    let sig = key
        .sign(cp.body().as_bytes())
        .map_err(|e| WorkflowError::Other {
            what: e.to_string(),
            location: None,
            hint: Some("check the key (`ssh-add -l` lists what ssh-agent holds)".into()),
            class: ErrorClass::Error,
        })?;
    cp.signature = Some(sig);
    Ok(cp)
}

/// Whether the log extends `cp`: it has at least its size, and the entry at
/// that size is the one it saw. A signed checkpoint's key must be one some
/// environment's deployed allowed_signers lists. Returns who signed it.
pub fn check_checkpoint(
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
            && let Ok(allowed) = signers.parse()
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
pub fn read_checkpoint(path: &std::path::Path) -> Result<Option<Checkpoint>, WorkflowError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| WorkflowError::Other {
        what: format!("cannot read the checkpoint {shown}: {e}"),
        location: Some(shown.clone()),
        hint: Some("pass a file `opsdeploy audit checkpoint` wrote".into()),
        class: ErrorClass::Usage,
    })?;
    Checkpoint::find(&shown, &text).map_err(|e: TrustError| WorkflowError::Other {
        what: e.to_string(),
        location: Some(shown),
        hint: Some("restore the checkpoint as `opsdeploy audit checkpoint` printed it".into()),
        class: ErrorClass::Error,
    })
}
