//! The embedded store: files under `.opsdeploy/`, no server.
//!
//! - `audit.jsonl`: the audit log, appended under an exclusive lock on
//!   `audit.lock`, each line fsynced before the append returns;
//! - `locks/ENV.lock`: an OS file lock held for the whole apply (the kernel
//!   releases it if the process dies) with the holder's identity inside.
//!   Removing or replacing that file must not let a second apply in, so the
//!   holder also binds an abstract Unix socket named after the lock (no file
//!   to delete; the kernel frees it with the process) which a second apply
//!   waits for, and checks before each step that the path still names the
//!   file it locked, putting it back when it does not;
//! - `bundles/DIGEST/`: plan bundles.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::audit::{self, Entry, NewEntry, Verification};
use super::{LockGuard, LockHolder, Store, StoreError, now_rfc3339};

pub struct FileStore {
    root: PathBuf,
}

impl FileStore {
    /// A store rooted at `root` (usually `PROJECT/.opsdeploy`), created on first write.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FileStore { root: root.into() }
    }

    /// The log's lines exactly as stored (what a migration copies).
    pub fn lines(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.read_log()?.lines().map(String::from).collect())
    }

    /// Every sealed plan bundle: its digest and directory.
    pub fn bundle_dirs(&self) -> Result<Vec<(String, PathBuf)>, StoreError> {
        sealed_bundles(&self.bundles_dir())
    }

    fn log_path(&self) -> PathBuf {
        self.root.join("audit.jsonl")
    }

    fn ensure_root(&self) -> Result<(), StoreError> {
        fs::create_dir_all(self.root.join("locks"))
            .map_err(|e| StoreError::io("create", &self.root, e))
    }

    fn read_log(&self) -> Result<String, StoreError> {
        match fs::read(self.log_path()) {
            Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
            Err(e) => Err(StoreError::io("read", self.log_path(), e)),
        }
    }

    /// The last complete entry; a torn final line (a crash mid-write) is moved
    /// aside so the log stays a valid chain.
    fn head(&self, log: &mut File) -> Result<Option<Entry>, StoreError> {
        let path = self.log_path();
        let len = log
            .seek(SeekFrom::End(0))
            .map_err(|e| StoreError::io("read", &path, e))?;
        if len == 0 {
            return Ok(None);
        }
        // Read back until the start of the last line (entries are small).
        let mut window = 64 * 1024u64;
        loop {
            let start = len.saturating_sub(window);
            log.seek(SeekFrom::Start(start))
                .map_err(|e| StoreError::io("read", &path, e))?;
            let mut tail = Vec::new();
            log.read_to_end(&mut tail)
                .map_err(|e| StoreError::io("read", &path, e))?;
            if tail.last() != Some(&b'\n') {
                let cut = tail.iter().rposition(|b| *b == b'\n').map(|i| i + 1);
                if cut.is_none() && start > 0 {
                    window *= 4;
                    continue;
                }
                let keep = start + cut.unwrap_or(0) as u64;
                let torn = &tail[cut.unwrap_or(0)..];
                let aside = self
                    .root
                    .join(format!("audit.torn-{}", now_rfc3339().replace(':', "")));
                fs::write(&aside, torn).map_err(|e| StoreError::io("write", &aside, e))?;
                log.set_len(keep)
                    .map_err(|e| StoreError::io("truncate", &path, e))?;
                log.sync_all()
                    .map_err(|e| StoreError::io("sync", &path, e))?;
                tracing::warn!(
                    "the audit log ended in a partly written entry (a crash while writing); moved it to {}",
                    aside.display()
                );
                return self.head(log);
            }
            let body = &tail[..tail.len() - 1];
            let line_start = body.iter().rposition(|b| *b == b'\n').map(|i| i + 1);
            if line_start.is_none() && start > 0 {
                window *= 4;
                continue;
            }
            let line = String::from_utf8_lossy(&body[line_start.unwrap_or(0)..]).into_owned();
            return audit::parse_line(&line).map(Some).map_err(|reason| {
                let position = self
                    .read_log()
                    .map(|l| l.lines().count())
                    .unwrap_or_default();
                StoreError::Damaged {
                    path: path.display().to_string(),
                    position,
                    reason,
                }
            });
        }
    }
}

/// The sealed bundles in a bundles directory: digest and directory, by digest.
pub(super) fn sealed_bundles(dir: &Path) -> Result<Vec<(String, PathBuf)>, StoreError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io("read", dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| StoreError::io("read", dir, e))?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        // Sealed bundles are named by their 64-hex digest; `.building-*` are not.
        if let Some(name) =
            name.filter(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()))
            && path.join(super::bundle::MANIFEST).is_file()
        {
            out.push((name, path));
        }
    }
    out.sort();
    Ok(out)
}

/// Holds `locks/ENV.lock` until dropped.
struct FileLock {
    file: File,
    path: PathBuf,
    holder: LockHolder,
    took_over: Option<LockHolder>,
    /// Bound for as long as the lock is held (see the module comment).
    _anchor: Option<std::os::unix::net::UnixListener>,
}

impl LockGuard for FileLock {
    fn took_over_from(&self) -> Option<&LockHolder> {
        self.took_over.as_ref()
    }

    /// The path must still name the file this process locked: a lock file
    /// removed or replaced behind its back is put back (the anchor kept other
    /// applies out meanwhile); one another process holds is a lost lock.
    fn still_held(&mut self) -> Result<(), StoreError> {
        if names_file(&self.path, &self.file) {
            return Ok(());
        }
        let lost = |why: &str| {
            StoreError::io(
                "keep the lock",
                &self.path,
                std::io::Error::other(why.to_string()),
            )
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.path)
            .map_err(|e| StoreError::io("restore", &self.path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(lost(
                    "the lock file was replaced by one another process holds; another apply may be running",
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(StoreError::io("lock", &self.path, e));
            }
        }
        write_holder(&mut file, &self.holder)
            .map_err(|e| StoreError::io("write", &self.path, e))?;
        tracing::warn!(
            "{} was removed or replaced while this apply held it; it is restored",
            self.path.display()
        );
        self.file = file;
        Ok(())
    }
}

/// Whether `path` is the file `file` has open (same device and inode).
fn names_file(path: &Path, file: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(path), file.metadata()) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

fn write_holder(file: &mut File, holder: &LockHolder) -> std::io::Result<()> {
    let json = serde_json::to_vec(holder).expect("lock holder serializes");
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(&json)?;
    file.sync_all()
}

/// Binds the abstract socket that stands for `lock_path`'s lock; `Ok(None)`
/// when it is bound already (another apply holds the lock).
fn bind_anchor(lock_path: &Path) -> Option<Result<std::os::unix::net::UnixListener, ()>> {
    use sha2::{Digest, Sha256};
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixListener};
    let real = lock_path
        .parent()
        .and_then(|d| fs::canonicalize(d).ok())
        .map(|d| d.join(lock_path.file_name().unwrap_or_default()))
        .unwrap_or_else(|| lock_path.to_path_buf());
    let name = format!(
        "opsdeploy-lock-{}",
        hex::encode(Sha256::digest(real.as_os_str().as_encoded_bytes()))
    );
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).ok()?;
    match UnixListener::bind_addr(&addr) {
        Ok(l) => Some(Ok(l)),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Some(Err(())),
        Err(e) => {
            // Without the anchor (no Unix sockets here) the file lock alone decides.
            tracing::debug!("no lock anchor for {}: {e}", lock_path.display());
            None
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Empty means released cleanly; then the OS lock goes.
        if let Err(e) = self.file.set_len(0).and_then(|()| self.file.sync_all()) {
            tracing::warn!("could not clear {}: {e}", self.path.display());
        }
        let _ = self.file.unlock();
    }
}

fn read_holder(file: &mut File) -> Option<LockHolder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

impl Store for FileStore {
    fn append(&self, new: NewEntry) -> Result<Entry, StoreError> {
        self.ensure_root()?;
        let lock_path = self.root.join("audit.lock");
        let lock = File::create(&lock_path).map_err(|e| StoreError::io("create", &lock_path, e))?;
        lock.lock()
            .map_err(|e| StoreError::io("lock", &lock_path, e))?;
        let path = self.log_path();
        let mut log = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| StoreError::io("open", &path, e))?;
        let head = self.head(&mut log)?;
        let (seq, prev) = match &head {
            Some(h) => (h.seq + 1, h.hash.clone()),
            None => (1, audit::GENESIS.to_string()),
        };
        let (entry, mut line) = audit::seal(new, seq, now_rfc3339(), &prev);
        line.push('\n');
        log.write_all(line.as_bytes())
            .and_then(|()| log.sync_data())
            .map_err(|e| StoreError::io("append to", &path, e))?;
        drop(lock);
        Ok(entry)
    }

    fn entries(&self) -> Result<Vec<Entry>, StoreError> {
        let text = self.read_log()?;
        text.lines()
            .enumerate()
            .map(|(i, line)| {
                audit::parse_line(line).map_err(|reason| StoreError::Damaged {
                    path: self.log_path().display().to_string(),
                    position: i + 1,
                    reason,
                })
            })
            .collect()
    }

    fn verify(&self) -> Result<Verification, StoreError> {
        let text = self.read_log()?;
        Ok(audit::verify(text.lines()))
    }

    fn lock(
        &self,
        environment: &str,
        holder: &LockHolder,
        wait: Duration,
    ) -> Result<Box<dyn LockGuard>, StoreError> {
        self.ensure_root()?;
        let path = self.root.join("locks").join(format!("{environment}.lock"));
        let started = Instant::now();
        let mut announced = false;
        let locked = |file: Option<&mut File>, waited| {
            StoreError::locked(environment, file.and_then(read_holder), waited)
        };
        let mut announce = |current: Option<LockHolder>| {
            if !announced {
                if let Some(h) = &current {
                    tracing::warn!(
                        "waiting up to {wait:?} for {} to finish with \"{environment}\"",
                        h.describe()
                    );
                }
                announced = true;
            }
        };
        let pause = Duration::from_millis(100).min(wait / 10 + Duration::from_millis(10));
        let anchor = loop {
            match bind_anchor(&path) {
                Some(Ok(anchor)) => break Some(anchor),
                None => break None,
                Some(Err(())) => {
                    let mut current = File::open(&path).ok();
                    let waited = started.elapsed();
                    if waited >= wait {
                        return Err(locked(current.as_mut(), waited));
                    }
                    announce(current.as_mut().and_then(read_holder));
                    std::thread::sleep(pause);
                }
            }
        };
        let mut file = loop {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|e| StoreError::io("open", &path, e))?;
            match file.try_lock() {
                // Removed or replaced between open and lock: lock what the path names now.
                Ok(()) if !names_file(&path, &file) => continue,
                Ok(()) => break file,
                Err(std::fs::TryLockError::WouldBlock) => {
                    let waited = started.elapsed();
                    if waited >= wait {
                        return Err(locked(Some(&mut file), waited));
                    }
                    announce(read_holder(&mut file));
                    std::thread::sleep(pause);
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(StoreError::io("lock", &path, e));
                }
            }
        };
        // Content left behind while the OS lock was free: its holder died.
        let took_over = read_holder(&mut file);
        write_holder(&mut file, holder).map_err(|e| StoreError::io("write", &path, e))?;
        Ok(Box::new(FileLock {
            file,
            path,
            holder: holder.clone(),
            took_over,
            _anchor: anchor,
        }))
    }

    fn lock_holder(&self, environment: &str) -> Result<Option<LockHolder>, StoreError> {
        let path = self.root.join("locks").join(format!("{environment}.lock"));
        let mut file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io("open", &path, e)),
        };
        match file.try_lock() {
            Ok(()) => {
                let _ = file.unlock();
                Ok(None)
            }
            Err(std::fs::TryLockError::WouldBlock) => Ok(read_holder(&mut file)),
            Err(std::fs::TryLockError::Error(e)) => Err(StoreError::io("lock", &path, e)),
        }
    }

    fn stale_lock(&self, environment: &str) -> Option<LockHolder> {
        stale_holder(&self.root, environment)
    }

    fn bundles_dir(&self) -> PathBuf {
        self.root.join("bundles")
    }

    fn describe(&self) -> String {
        self.log_path().display().to_string()
    }
}

/// A stale lock file (a holder that died) as `status` shows it.
fn stale_holder(root: &Path, environment: &str) -> Option<LockHolder> {
    let path = root.join("locks").join(format!("{environment}.lock"));
    let mut file = OpenOptions::new().read(true).write(true).open(path).ok()?;
    match file.try_lock() {
        Ok(()) => {
            let holder = read_holder(&mut file);
            let _ = file.unlock();
            holder
        }
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::EntryData;
    use crate::store::records::ApprovalData;

    fn holder(who: &str) -> LockHolder {
        LockHolder {
            actor: who.into(),
            host: "ci-1".into(),
            pid: std::process::id(),
            since: now_rfc3339(),
            purpose: "apply".into(),
        }
    }

    #[test]
    fn appends_chain_and_survive_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path());
        for i in 0..3 {
            store
                .append(NewEntry::new(
                    "a",
                    "staging",
                    EntryData::Approval(ApprovalData {
                        comment: Some(format!("{i}")),
                        signed: None,
                    }),
                ))
                .unwrap();
        }
        // A crash mid-write leaves half a line.
        let mut log = OpenOptions::new()
            .append(true)
            .open(dir.path().join("audit.jsonl"))
            .unwrap();
        log.write_all(b"{\"seq\":4,\"at\":\"2026").unwrap();
        drop(log);
        let e = store
            .append(NewEntry::new(
                "a",
                "staging",
                EntryData::Approval(ApprovalData::default()),
            ))
            .unwrap();
        assert_eq!(e.seq, 4);
        let v = store.verify().unwrap();
        assert_eq!((v.entries, v.first_bad), (4, None));
        assert!(fs::read_dir(dir.path()).unwrap().any(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("audit.torn-")
        }));
    }

    #[test]
    fn a_second_locker_waits_then_fails_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path());
        let guard = store
            .lock("production", &holder("alice"), Duration::ZERO)
            .unwrap();
        assert_eq!(
            store.lock_holder("production").unwrap().unwrap().actor,
            "alice"
        );
        let err = store
            .lock("production", &holder("bob"), Duration::from_millis(300))
            .err()
            .unwrap();
        assert!(err.to_string().contains("locked by alice on ci-1"), "{err}");
        drop(guard);
        assert_eq!(store.lock_holder("production").unwrap(), None);
        let g = store
            .lock("production", &holder("bob"), Duration::ZERO)
            .unwrap();
        assert!(
            g.took_over_from().is_none(),
            "a clean release is not a takeover"
        );
    }

    #[test]
    fn a_lock_left_by_a_dead_holder_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("locks")).unwrap();
        fs::write(
            dir.path().join("locks/staging.lock"),
            serde_json::to_vec(&holder("crashed-ci")).unwrap(),
        )
        .unwrap();
        let store = FileStore::new(dir.path());
        assert_eq!(
            stale_holder(dir.path(), "staging").unwrap().actor,
            "crashed-ci"
        );
        let g = store
            .lock("staging", &holder("me"), Duration::ZERO)
            .unwrap();
        assert_eq!(g.took_over_from().unwrap().actor, "crashed-ci");
    }
}
