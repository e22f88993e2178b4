//! `opsdeploy audit verify | log`: the audit log checked, or read.

use serde::Serialize;

use super::{Project, WorkflowError};
use crate::store::Entry;

/// A log whose whole chain verified; also `audit verify --format json`.
#[derive(Debug, Serialize)]
pub struct Verified {
    pub valid: bool,
    pub entries: usize,
    /// Hash of the last entry.
    pub head: String,
}

/// Checks the whole hash chain; a bad entry is an error naming it.
pub fn verify(project: &Project) -> Result<Verified, WorkflowError> {
    let v = project.store.verify()?;
    if let Some(bad) = v.first_bad {
        return Err(WorkflowError::AuditDamaged {
            log: project.store.describe(),
            position: bad.position,
            seq: bad.seq,
            reason: bad.reason,
        });
    }
    Ok(Verified {
        valid: true,
        entries: v.entries,
        head: v.head,
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
