//! On-disk cache of compiled policies.
//!
//! Compiling a policy with cranelift takes tens to hundreds of milliseconds;
//! loading the compiled artifact takes about one. Entries are keyed by the
//! module's sha256, the wasmtime version and the engine's compatibility hash, so
//! a new opsdeploy or other engine settings never load a stale artifact.
//! Each entry carries the sha256 of its payload: wasmtime trusts what it
//! deserializes, so a corrupted entry must be caught here and recompiled.

use std::fs;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

use crate::fsutil::write_atomic;

const MAGIC: &[u8; 8] = b"ODCWASM1";
const HEADER_LEN: usize = MAGIC.len() + 32;

/// How a module was obtained, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    Hit,
    Miss,
    /// The entry failed its checksum or did not deserialize; recompiled.
    Corrupt,
    Disabled,
}

#[derive(Debug, Clone)]
pub struct ModuleCache {
    dir: PathBuf,
}

impl ModuleCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ModuleCache { dir: dir.into() }
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

    /// The file a module's compiled artifact lives in for this engine.
    pub fn entry_path(&self, engine: &Engine, module_sha256: &str) -> PathBuf {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let mut key = Sha256::new();
        key.update(module_sha256.as_bytes());
        key.update(env!("CARGO_PKG_VERSION").as_bytes());
        key.update(wasmtime_version().as_bytes());
        key.update(h.finish().to_le_bytes());
        self.dir
            .join(format!("{}.cwasm", hex::encode(key.finalize())))
    }

    /// Loads the compiled module from the cache, or compiles and stores it.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        module_sha256: &str,
        wasm: &[u8],
    ) -> wasmtime::Result<(Module, CacheStatus)> {
        let path = self.entry_path(engine, module_sha256);
        let mut status = CacheStatus::Miss;
        if let Ok(entry) = fs::read(&path) {
            match verified_payload(&entry) {
                // SAFETY: the payload is byte-for-byte what `Module::serialize` wrote
                // (its sha256 matches), for this engine configuration (the key).
                Some(payload) => match unsafe { Module::deserialize(engine, payload) } {
                    Ok(module) => return Ok((module, CacheStatus::Hit)),
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "cached policy did not load; recompiling");
                        status = CacheStatus::Corrupt;
                    }
                },
                None => {
                    tracing::warn!(path = %path.display(), "cached policy failed its checksum; recompiling");
                    status = CacheStatus::Corrupt;
                }
            }
        }
        let module = Module::new(engine, wasm)?;
        match module.serialize() {
            Ok(payload) => {
                let mut entry = Vec::with_capacity(HEADER_LEN + payload.len());
                entry.extend_from_slice(MAGIC);
                entry.extend_from_slice(&Sha256::digest(&payload));
                entry.extend_from_slice(&payload);
                if let Err(e) = write_atomic(&path, &entry) {
                    // A read-only or full cache only costs the next run a compile.
                    tracing::warn!(path = %path.display(), error = %e, "could not write the policy cache");
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not serialize a compiled policy"),
        }
        Ok((module, status))
    }
}

fn verified_payload(entry: &[u8]) -> Option<&[u8]> {
    if entry.len() < HEADER_LEN || &entry[..MAGIC.len()] != MAGIC {
        return None;
    }
    let (header, payload) = entry.split_at(HEADER_LEN);
    (Sha256::digest(payload).as_slice() == &header[MAGIC.len()..]).then_some(payload)
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
    fn payload_with_a_flipped_bit_is_rejected() {
        let payload = b"compiled code".to_vec();
        let mut entry = MAGIC.to_vec();
        entry.extend_from_slice(&Sha256::digest(&payload));
        entry.extend_from_slice(&payload);
        assert_eq!(verified_payload(&entry), Some(&payload[..]));
        let last = entry.len() - 1;
        entry[last] ^= 1;
        assert_eq!(verified_payload(&entry), None);
        assert_eq!(verified_payload(b"short"), None);
    }
}
