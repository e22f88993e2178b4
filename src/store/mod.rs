//! Where opsdeploy keeps what it knows: the tamper-evident audit log, plan
//! bundles, and one lock per environment. The default backend is files under
//! `.opsdeploy/` in the project; team mode keeps the same things in PostgreSQL.

pub mod audit;
pub mod bundle;
mod file;
#[cfg(test)]
pub(crate) mod memory;
mod postgres;
pub mod records;
pub mod results;
mod sealed;
pub mod summary;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use self::postgres::{PgStore, RolesSetUp, set_up_roles};
pub use audit::{Entry, EntryKind, NewEntry, Verification};
pub use file::FileStore;
pub use records::EntryData;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("could not {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the audit log {path} is damaged at entry {position}: {reason}")]
    Damaged {
        path: String,
        position: usize,
        reason: String,
    },
    #[error(
        "environment \"{environment}\" is locked by {holder} (since {since}); waited {waited:?}"
    )]
    Locked {
        environment: String,
        holder: String,
        since: String,
        waited: Duration,
    },
    #[error("the store is not reachable: {0}")]
    Unavailable(String),
    #[error("{what}: {reason}")]
    Database { what: String, reason: String },
    /// Team mode's plan bundle key is missing or wrong (never shown).
    #[error("{0}")]
    BundleKey(String),
}

impl StoreError {
    /// Another apply holds `environment` (`holder`, when known, says who).
    pub fn locked(environment: &str, holder: Option<LockHolder>, waited: Duration) -> Self {
        let (holder, since) = holder
            .map(|h| (h.describe(), h.since))
            .unwrap_or_else(|| ("another process".into(), "unknown".into()));
        StoreError::Locked {
            environment: environment.to_string(),
            holder,
            since,
            waited,
        }
    }

    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StoreError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// Who holds an environment lock, shown by `status` and by a waiting apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    pub actor: String,
    pub host: String,
    pub pid: u32,
    pub since: String,
    /// What it is doing, e.g. `apply 3f9a…c21`.
    pub purpose: String,
}

impl LockHolder {
    pub fn describe(&self) -> String {
        format!(
            "{} on {} (pid {}, {})",
            self.actor, self.host, self.pid, self.purpose
        )
    }
}

/// Held while an environment is being changed; released on drop.
pub trait LockGuard: Send {
    /// The holder a dead process left behind, if this lock was taken over.
    fn took_over_from(&self) -> Option<&LockHolder>;

    /// Whether the lock is still held, checked before each change an apply
    /// makes. A file lock lives as long as the process; a PostgreSQL lock
    /// goes with its connection, and then another apply may start.
    fn still_held(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The operations the workflow needs from a store backend.
pub trait Store: Send + Sync {
    /// Appends an entry, linking it to the current head. Serialized across
    /// processes: concurrent appends never fork the chain.
    fn append(&self, entry: NewEntry) -> Result<Entry, StoreError>;

    /// Every entry, in order. A damaged log is an error naming the entry.
    fn entries(&self) -> Result<Vec<Entry>, StoreError>;

    /// Checks the whole chain.
    fn verify(&self) -> Result<Verification, StoreError>;

    /// Takes the environment's lock, waiting up to `wait` for another holder.
    fn lock(
        &self,
        environment: &str,
        holder: &LockHolder,
        wait: Duration,
    ) -> Result<Box<dyn LockGuard>, StoreError>;

    /// The current holder of an environment's lock, if any.
    fn lock_holder(&self, environment: &str) -> Result<Option<LockHolder>, StoreError>;

    /// A lock its holder left behind when it died (taken over by the next
    /// apply); backends whose locks die with their holder return `None`.
    fn stale_lock(&self, _environment: &str) -> Option<LockHolder> {
        None
    }

    /// Directory holding plan bundles (in team mode, a local copy of those in
    /// the database).
    fn bundles_dir(&self) -> PathBuf;

    /// Keeps a sealed bundle where other runners find it; the file store's
    /// bundles directory is that place already.
    fn publish_bundle(&self, _dir: &Path, _digest: &str) -> Result<(), StoreError> {
        Ok(())
    }

    /// Fails when bundles could not be stored (team mode without its
    /// encryption key), before a plan runs any tool.
    fn check_bundle_storage(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Makes the bundles a digest (or prefix) names present in
    /// [`Store::bundles_dir`], when they are kept elsewhere.
    fn fetch_bundle(&self, _digest: &str) -> Result<(), StoreError> {
        Ok(())
    }

    /// The digests of every sealed plan bundle the store keeps. Reads only:
    /// unlike [`Store::fetch_bundle`] it never writes a local copy.
    fn bundle_digests(&self) -> Result<Vec<String>, StoreError> {
        Ok(file::sealed_bundles(&self.bundles_dir())?
            .into_iter()
            .map(|(digest, _)| digest)
            .collect())
    }

    /// One file of a stored bundle (`None`: the bundle has no such file),
    /// read without writing anything; the caller checks it against the
    /// bundle's manifest.
    fn read_bundle_file(&self, digest: &str, rel: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.bundles_dir().join(digest).join(rel);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io("read", &path, e)),
        }
    }

    /// A name for messages: the log's path or database.
    fn describe(&self) -> String;
}

/// A digest or hash as people see it: its first 12 characters (which `--plan`
/// and `report` accept as a prefix), or all of a shorter name.
pub fn short(digest: &str) -> &str {
    digest
        .char_indices()
        .nth(12)
        .map_or(digest, |(end, _)| &digest[..end])
}

/// The current time as RFC 3339 UTC with seconds, e.g. `2026-11-24T20:15:03Z`.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    rfc3339(secs)
}

/// Seconds since the epoch as RFC 3339 UTC (civil-from-days, proleptic Gregorian).
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_digest_is_twelve_characters_and_never_cuts_a_short_or_odd_name() {
        let digest = "3f9a1c2b4d5e".to_string() + &"0".repeat(52);
        assert_eq!(short(&digest), "3f9a1c2b4d5e");
        assert_eq!(short("abc"), "abc");
        assert_eq!(short(""), "");
        // A directory named with multi-byte characters, where byte 12 is mid-character.
        assert_eq!(short("ééééééééééééé"), "éééééééééééé");
    }

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_550_103), "2026-11-24T19:55:03Z");
    }
}
