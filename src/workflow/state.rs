//! `opsdeploy state migrate --to postgres`: copies the file store's history
//! (audit log and plan bundles) into PostgreSQL, entry by entry and unchanged,
//! so the chain and every hash stay what they were.

use serde::Serialize;

use super::WorkflowError;
use crate::config::{Config, StateConfig};
use crate::store::{FileStore, PgStore, Store};

#[derive(Debug, Serialize)]
pub struct Migrated {
    /// The database, without its password.
    pub target: String,
    /// Entries copied by this run (0 when the target was already up to date).
    pub copied: usize,
    /// Entries in the target now, all verified.
    pub entries: usize,
    pub bundles: usize,
    /// Hash of the last entry, the same in both stores.
    pub head: String,
}

/// The URL to migrate to: `url` if given, else the configured team store.
pub fn target_url(config: &Config, url: Option<&str>) -> Result<String, WorkflowError> {
    match (url, &config.state) {
        (Some(url), _) => Ok(url.to_string()),
        (None, StateConfig::Postgres { url }) => Ok(url.clone()),
        (None, StateConfig::File) => Err(WorkflowError::NoDatabase),
    }
}

/// Copies what the project's `.opsdeploy/` holds into the database at `url`.
/// Re-running after a partial or complete copy only adds what is missing; a
/// database with a different history is refused untouched.
pub fn migrate_to_postgres(config: &Config, url: &str) -> Result<Migrated, WorkflowError> {
    let root = config.dir.join(".opsdeploy");
    let source = FileStore::new(&root);
    let checked = source.verify()?;
    if let Some(bad) = checked.first_bad {
        return Err(WorkflowError::MigrationSourceDamaged {
            position: bad.position,
            reason: bad.reason,
        });
    }
    let lines = source.lines()?;
    let target = PgStore::connect(url, source.bundles_dir())?;
    let existing = target.lines()?;
    if let Some(position) = first_difference(&existing, &lines) {
        return Err(WorkflowError::DifferentHistory {
            target: target.shown().to_string(),
            position,
        });
    }
    // Bundles first: an approval copied below must find the plan it vouches for.
    let bundles = source.bundle_dirs()?;
    for (digest, dir) in &bundles {
        target.store_bundle(dir, digest)?;
    }
    let copied = target.import(&lines[existing.len()..])?;
    let after = target.verify()?;
    if after.first_bad.is_some() || after.head != checked.head || after.entries != lines.len() {
        return Err(WorkflowError::CopyDoesNotVerify {
            target: target.shown().to_string(),
            entries: after.entries,
            head: after.head,
            expected: lines.len(),
            expected_head: checked.head,
        });
    }
    tracing::info!(
        "copied {copied} audit entries and {} bundles",
        bundles.len()
    );
    Ok(Migrated {
        target: target.shown().to_string(),
        copied,
        entries: after.entries,
        bundles: bundles.len(),
        head: after.head,
    })
}

/// `opsdeploy state init --admin-url`: sets up the schema as `admin_url`'s
/// role and grants the runtime role (`runtime`, else the user of the
/// configured database URL) only reading and appending.
pub fn init_roles(
    config: &Config,
    admin_url: &str,
    runtime: Option<&str>,
) -> Result<crate::store::RolesSetUp, WorkflowError> {
    let runtime = match runtime {
        Some(r) => r.to_string(),
        None => {
            let url = target_url(config, None)?;
            let parsed: postgres::Config = url
                .parse()
                .map_err(|source| WorkflowError::InvalidDatabaseUrl { source })?;
            parsed
                .get_user()
                .map(String::from)
                .ok_or(WorkflowError::NoRuntimeRole)?
        }
    };
    Ok(crate::store::set_up_roles(admin_url, &runtime)?)
}

/// The 1-based position where `existing` stops being a prefix of `source`.
fn first_difference(existing: &[String], source: &[String]) -> Option<usize> {
    existing
        .iter()
        .enumerate()
        .find(|(i, line)| source.get(*i) != Some(line))
        .map(|(i, _)| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_target_that_is_a_prefix_of_the_source_can_be_completed() {
        let source = lines(&["a", "b", "c"]);
        assert_eq!(first_difference(&[], &source), None);
        assert_eq!(first_difference(&lines(&["a", "b"]), &source), None);
        assert_eq!(first_difference(&source, &source), None);
    }

    #[test]
    fn a_different_or_longer_target_history_is_named_by_position() {
        let source = lines(&["a", "b"]);
        assert_eq!(first_difference(&lines(&["a", "x"]), &source), Some(2));
        assert_eq!(first_difference(&lines(&["a", "b", "c"]), &source), Some(3));
    }
}
