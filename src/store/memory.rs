//! A store in memory, for tests of the workflow's rules: the same audit chain
//! (entries are sealed as the real backends seal them) and locks that refuse
//! a second holder; plan bundles stay files, in the directory given.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::audit::{self, Entry, NewEntry, Verification};
use super::{LockGuard, LockHolder, Store, StoreError, now_rfc3339};

type Locks = Arc<Mutex<BTreeMap<String, LockHolder>>>;

pub struct MemoryStore {
    /// Entries with the lines they were sealed as.
    log: Mutex<Vec<(Entry, String)>>,
    locks: Locks,
    bundles: PathBuf,
}

impl MemoryStore {
    pub fn new(bundles: impl Into<PathBuf>) -> Self {
        MemoryStore {
            log: Mutex::new(Vec::new()),
            locks: Arc::default(),
            bundles: bundles.into(),
        }
    }
}

struct MemoryLock {
    locks: Locks,
    environment: String,
}

impl LockGuard for MemoryLock {
    fn took_over_from(&self) -> Option<&LockHolder> {
        None
    }
}

impl Drop for MemoryLock {
    fn drop(&mut self) {
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        locks.remove(&self.environment);
    }
}

impl Store for MemoryStore {
    fn append(&self, new: NewEntry) -> Result<Entry, StoreError> {
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        let (seq, prev) = match log.last() {
            Some((e, _)) => (e.seq + 1, e.hash.clone()),
            None => (1, audit::GENESIS.to_string()),
        };
        let (entry, line) = audit::seal(new, seq, now_rfc3339(), &prev);
        log.push((entry.clone(), line));
        Ok(entry)
    }

    fn entries(&self) -> Result<Vec<Entry>, StoreError> {
        let log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(log.iter().map(|(e, _)| e.clone()).collect())
    }

    fn verify(&self) -> Result<Verification, StoreError> {
        let log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(audit::verify(log.iter().map(|(_, line)| line.as_str())))
    }

    fn lock(
        &self,
        environment: &str,
        holder: &LockHolder,
        wait: Duration,
    ) -> Result<Box<dyn LockGuard>, StoreError> {
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(current) = locks.get(environment) {
            return Err(StoreError::Locked {
                environment: environment.to_string(),
                holder: current.describe(),
                since: current.since.clone(),
                waited: wait,
            });
        }
        locks.insert(environment.to_string(), holder.clone());
        Ok(Box::new(MemoryLock {
            locks: Arc::clone(&self.locks),
            environment: environment.to_string(),
        }))
    }

    fn lock_holder(&self, environment: &str) -> Result<Option<LockHolder>, StoreError> {
        let locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(locks.get(environment).cloned())
    }

    fn bundles_dir(&self) -> PathBuf {
        self.bundles.clone()
    }

    fn describe(&self) -> String {
        "the in-memory test store".into()
    }
}
