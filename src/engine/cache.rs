//! On-disk cache of compiled policies.
//!
//! Compiling a policy with cranelift takes tens to hundreds of milliseconds;
//! loading the compiled artifact takes about one. Entries are keyed by the
//! module's sha256, the wasmtime version and the engine's compatibility hash, so
//! a new opsdeploy or other engine settings never load a stale artifact.
//! wasmtime runs whatever native code it deserializes, so each entry carries an
//! HMAC-SHA256 under a per-user key kept outside the cache (`cache_key.rs`)
//! over its name and payload: an artifact that was corrupted, swapped for
//! another module's, copied from another machine or written by anyone else
//! never loads; it is recompiled, and the log says so.

use std::fs;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use ring::hmac;
use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

use super::EngineError;
use super::cache_key;
use super::compile::Compiled;
use crate::fsutil::write_atomic;

/// Format 2: a MAC under the per-user key (format 1 had a bare sha256).
const MAGIC: &[u8; 8] = b"ODCWASM2";
const TAG_LEN: usize = 32;
const HEADER_LEN: usize = MAGIC.len() + TAG_LEN;

/// How a module was obtained, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    Hit,
    Miss,
    /// The entry failed its MAC or did not deserialize; recompiled.
    Corrupt,
    /// No cache, or no usable key for it: compiled every time.
    Disabled,
}

#[derive(Debug, Clone)]
pub struct ModuleCache {
    dir: PathBuf,
    key_path: Option<PathBuf>,
    /// Read once, on the first load that needs it.
    key: Arc<OnceLock<Result<hmac::Key, String>>>,
}

impl ModuleCache {
    /// A cache in `dir` signed with the user's key ([`cache_key::default_path`]).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self::with_key_file(dir, cache_key::default_path())
    }

    /// A cache in `dir` signed with the key at `key_path` (created if missing).
    pub fn with_key_file(dir: impl Into<PathBuf>, key_path: Option<PathBuf>) -> Self {
        ModuleCache {
            dir: dir.into(),
            key_path,
            key: Arc::new(OnceLock::new()),
        }
    }

    /// `$OPSDEPLOY_CACHE_DIR`, else `$XDG_CACHE_HOME/opsdeploy/modules`, else
    /// `~/.cache/opsdeploy/modules`.
    pub fn default_dir() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("OPSDEPLOY_CACHE_DIR") {
            return Some(PathBuf::from(dir));
        }
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))?;
        Some(base.join("opsdeploy").join("modules"))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn key(&self) -> Result<&hmac::Key, &str> {
        self.key
            .get_or_init(|| match &self.key_path {
                Some(path) => cache_key::load_or_create(path, &self.dir).inspect_err(|e| {
                    tracing::warn!("{e}; policies are compiled without the module cache");
                }),
                None => Err(
                    "no place for the module cache key (set HOME or OPSDEPLOY_CACHE_KEY)".into(),
                ),
            })
            .as_ref()
            .map_err(String::as_str)
    }

    /// The file a module's compiled artifact lives in for this engine.
    pub fn entry_path(&self, engine: &Engine, module_sha256: &str) -> PathBuf {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let mut key = Sha256::new();
        key.update(MAGIC);
        key.update(module_sha256.as_bytes());
        key.update(env!("CARGO_PKG_VERSION").as_bytes());
        key.update(wasmtime_version().as_bytes());
        key.update(h.finish().to_le_bytes());
        self.dir
            .join(format!("{}.cwasm", hex::encode(key.finalize())))
    }

    /// Loads the compiled module from the cache, or compiles it (`compile`)
    /// and stores it.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        module_sha256: &str,
        compile: impl FnOnce() -> Result<Compiled, EngineError>,
    ) -> Result<(Module, CacheStatus), EngineError> {
        let key = match self.key() {
            Ok(key) => key,
            Err(_) => return compile().map(|c| (c.module, CacheStatus::Disabled)),
        };
        let path = self.entry_path(engine, module_sha256);
        let name = entry_name(&path);
        let mut status = CacheStatus::Miss;
        if let Ok(entry) = fs::read(&path) {
            match verified_payload(key, &name, &entry) {
                // SAFETY: the MAC proves the payload is what this user's opsdeploy
                // serialized for this module and engine configuration (the name).
                Some(payload) => match unsafe { Module::deserialize(engine, payload) } {
                    Ok(module) => return Ok((module, CacheStatus::Hit)),
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "cached policy did not load; recompiling");
                        status = CacheStatus::Corrupt;
                    }
                },
                None => {
                    tracing::warn!(
                        path = %path.display(),
                        "cached policy failed its MAC (not written by your opsdeploy for this module); recompiling"
                    );
                    status = CacheStatus::Corrupt;
                }
            }
        }
        let compiled = compile()?;
        let payload = match compiled.artifact {
            Some(a) => Ok(a),
            None => compiled.module.serialize().map_err(|e| e.to_string()),
        };
        match payload {
            Ok(payload) => {
                let mut entry = Vec::with_capacity(HEADER_LEN + payload.len());
                entry.extend_from_slice(MAGIC);
                entry.extend_from_slice(tag(key, &name, &payload).as_ref());
                entry.extend_from_slice(&payload);
                if let Err(e) = write_atomic(&path, &entry) {
                    // A read-only or full cache only costs the next run a compile.
                    tracing::warn!(path = %path.display(), error = %e, "could not write the policy cache");
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not serialize a compiled policy"),
        }
        Ok((compiled.module, status))
    }
}

/// The entry's file name: it names the module and the engine configuration.
fn entry_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn tag(key: &hmac::Key, name: &str, payload: &[u8]) -> hmac::Tag {
    let mut ctx = hmac::Context::with_key(key);
    ctx.update(MAGIC);
    ctx.update(name.as_bytes());
    ctx.update(&[0]);
    ctx.update(payload);
    ctx.sign()
}

fn verified_payload<'a>(key: &hmac::Key, name: &str, entry: &'a [u8]) -> Option<&'a [u8]> {
    if entry.len() < HEADER_LEN || &entry[..MAGIC.len()] != MAGIC {
        return None;
    }
    let (header, payload) = entry.split_at(HEADER_LEN);
    let expected = tag(key, name, payload);
    // Compared without an early exit, so timing says nothing about the tag.
    let diff = expected
        .as_ref()
        .iter()
        .zip(&header[MAGIC.len()..])
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    (diff == 0).then_some(payload)
}

/// The wasmtime release linked in, part of every cache key.
pub fn wasmtime_version() -> &'static str {
    // Cargo.toml pins the major; the compatibility hash covers the rest.
    "48"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_with_a_flipped_bit_or_another_name_or_key_is_rejected() {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &[7; 32]);
        let payload = b"compiled code".to_vec();
        let mut entry = MAGIC.to_vec();
        entry.extend_from_slice(tag(&key, "a.cwasm", &payload).as_ref());
        entry.extend_from_slice(&payload);
        assert_eq!(
            verified_payload(&key, "a.cwasm", &entry),
            Some(&payload[..])
        );
        assert_eq!(verified_payload(&key, "b.cwasm", &entry), None);
        let other = hmac::Key::new(hmac::HMAC_SHA256, &[8; 32]);
        assert_eq!(verified_payload(&other, "a.cwasm", &entry), None);
        let last = entry.len() - 1;
        entry[last] ^= 1;
        assert_eq!(verified_payload(&key, "a.cwasm", &entry), None);
        assert_eq!(verified_payload(&key, "a.cwasm", b"short"), None);
    }
}
