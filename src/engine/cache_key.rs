//! The per-user key that signs module-cache entries.
//!
//! wasmtime runs whatever native code it deserializes, so a cache entry must
//! come from this user's own opsdeploy, not merely look well-formed. Every
//! entry carries an HMAC-SHA256 under this key; the key lives outside the
//! cache directory (a shared or restored CI cache never carries it), in a
//! file only its owner can read or write.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

const KEY_BYTES: usize = 32;

/// Where the key is kept: `$OPSDEPLOY_CACHE_KEY`, else
/// `$XDG_CONFIG_HOME/opsdeploy/module-cache.key`, else
/// `~/.config/opsdeploy/module-cache.key`.
pub fn default_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("OPSDEPLOY_CACHE_KEY") {
        return Some(PathBuf::from(path));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".config")))?;
    Some(base.join("opsdeploy").join("module-cache.key"))
}

/// Reads the key at `path`, creating it (0600, in a 0700 directory) the first
/// time. Refuses a key inside `cache_dir`, one another user owns, and one
/// others may read or write: whoever can write the key can forge entries.
pub fn load_or_create(path: &Path, cache_dir: &Path) -> Result<hmac::Key, String> {
    let shown = path.display();
    let bytes = match read_checked(path)? {
        Some(bytes) => bytes,
        None => create(path)?,
    };
    // Both exist now (the cache directory is made before its first entry).
    let _ = fs::create_dir_all(cache_dir);
    if let (Some(Ok(key_dir)), Ok(cache)) = (
        path.parent().map(fs::canonicalize),
        fs::canonicalize(cache_dir),
    ) && key_dir.starts_with(&cache)
    {
        return Err(format!(
            "the cache key {shown} is inside the cache directory {}; keep it elsewhere (OPSDEPLOY_CACHE_KEY)",
            cache_dir.display()
        ));
    }
    if bytes.len() != KEY_BYTES {
        return Err(format!(
            "the cache key {shown} holds {} bytes, not {KEY_BYTES}; remove it and a new one is made",
            bytes.len()
        ));
    }
    Ok(hmac::Key::new(hmac::HMAC_SHA256, &bytes))
}

/// The key's bytes, or `None` when there is no key file yet.
fn read_checked(path: &Path) -> Result<Option<Vec<u8>>, String> {
    let shown = path.display();
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("could not read the cache key {shown}: {e}")),
    };
    if !meta.file_type().is_file() {
        return Err(format!(
            "the cache key {shown} is not a regular file (a symlink or directory is never trusted)"
        ));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(format!(
            "the cache key {shown} belongs to user {}, not to you ({me})",
            meta.uid()
        ));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(format!(
            "the cache key {shown} is readable or writable by others (mode {:o}); `chmod 600` it",
            meta.mode() & 0o777
        ));
    }
    fs::read(path)
        .map(Some)
        .map_err(|e| format!("could not read the cache key {shown}: {e}"))
}

/// Writes a fresh random key; when another process made one first, theirs wins.
fn create(path: &Path) -> Result<Vec<u8>, String> {
    let shown = path.display();
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let fail =
        |what: &str, e: std::io::Error| format!("could not {what} the cache key {shown}: {e}");
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| fail("create the directory of", e))?;
    }
    let mut key = vec![0u8; KEY_BYTES];
    SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| format!("could not draw random bytes for the cache key {shown}"))?;
    // tempfile creates 0600; linking it into place never overwrites a key
    // another process created meanwhile.
    let mut tmp = tempfile::Builder::new()
        .prefix(".module-cache.key-")
        .tempfile_in(dir)
        .map_err(|e| fail("create", e))?;
    tmp.write_all(&key)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| fail("write", e))?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(|e| fail("protect", e))?;
    match tmp.persist_noclobber(path) {
        Ok(_) => Ok(key),
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
            read_checked(path)?.ok_or_else(|| format!("the cache key {shown} vanished"))
        }
        Err(e) => Err(fail("create", e.error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_created_private_and_then_reused() {
        let home = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let path = home.path().join("opsdeploy/module-cache.key");
        let a = load_or_create(&path, cache.path()).unwrap();
        let mode = fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let b = load_or_create(&path, cache.path()).unwrap();
        assert_eq!(hmac::sign(&a, b"x").as_ref(), hmac::sign(&b, b"x").as_ref());
    }

    #[test]
    fn a_key_others_can_write_or_inside_the_cache_is_refused() {
        let home = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let path = home.path().join("module-cache.key");
        load_or_create(&path, cache.path()).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
        let err = load_or_create(&path, cache.path()).unwrap_err();
        assert!(err.contains("chmod 600"), "{err}");

        let inside = cache.path().join("module-cache.key");
        let err = load_or_create(&inside, cache.path()).unwrap_err();
        assert!(err.contains("inside the cache directory"), "{err}");
    }
}
