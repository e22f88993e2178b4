//! Plan bundle contents at rest in team mode: AES-256-GCM under a key the
//! database never sees, so the database is not a plaintext copy of every
//! secret a terraform plan holds.
//!
//! Keys come from `OPSDEPLOY_BUNDLE_KEY` (64 hex characters; several,
//! comma-separated, during a rotation) or from the file
//! `OPSDEPLOY_BUNDLE_KEY_FILE` names (one key per line). The first key seals
//! what is written; any of them opens what is read, found by the key id each
//! sealed file carries. A file is bound to its bundle and path (the
//! associated data), so sealed files cannot be swapped between bundles.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};

const MAGIC: &[u8; 8] = b"ODSEAL1\0";
const KEY_ID_LEN: usize = 8;
const HEADER_LEN: usize = MAGIC.len() + KEY_ID_LEN + NONCE_LEN;

pub const KEY_VAR: &str = "OPSDEPLOY_BUNDLE_KEY";
pub const KEY_FILE_VAR: &str = "OPSDEPLOY_BUNDLE_KEY_FILE";

/// The keys bundle files are sealed and opened with.
pub struct BundleKeys {
    keys: Vec<([u8; KEY_ID_LEN], LessSafeKey)>,
}

impl std::fmt::Debug for BundleKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BundleKeys")
            .field("keys", &self.keys.len())
            .finish()
    }
}

/// What is wrong with the keys or a sealed file; never contains a key.
pub type SealError = String;

impl BundleKeys {
    /// The keys from the environment; an error says what to set.
    pub fn from_env() -> Result<BundleKeys, SealError> {
        let (text, from) = match (std::env::var(KEY_VAR), std::env::var_os(KEY_FILE_VAR)) {
            (Ok(v), _) if !v.trim().is_empty() => (v, KEY_VAR.to_string()),
            (_, Some(path)) => {
                let shown = std::path::Path::new(&path).display().to_string();
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("could not read {KEY_FILE_VAR} {shown}: {e}"))?;
                (text, shown)
            }
            _ => {
                return Err(format!(
                    "team mode stores plan bundles encrypted, and neither {KEY_VAR} nor {KEY_FILE_VAR} is set"
                ));
            }
        };
        let keys = text
            .split([',', '\n'])
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .enumerate()
            .map(|(i, k)| key(k).map_err(|why| format!("key {} in {from} {why}", i + 1)))
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(format!("{from} holds no key"));
        }
        Ok(BundleKeys { keys })
    }

    /// Seals `plain` for file `path` of bundle `digest` with the first key.
    pub fn seal(&self, digest: &str, path: &str, plain: &[u8]) -> Result<Vec<u8>, SealError> {
        let (id, key) = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| "could not draw a random nonce".to_string())?;
        let mut sealed = Vec::with_capacity(HEADER_LEN + plain.len() + 16);
        sealed.extend_from_slice(MAGIC);
        sealed.extend_from_slice(id);
        sealed.extend_from_slice(&nonce);
        let mut body = plain.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad(digest, path)),
            &mut body,
        )
        .map_err(|_| "could not encrypt".to_string())?;
        sealed.extend_from_slice(&body);
        Ok(sealed)
    }

    /// Opens what [`Self::seal`] wrote for the same bundle and path.
    pub fn open(&self, digest: &str, path: &str, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        let (header, body) = sealed.split_at(HEADER_LEN.min(sealed.len()));
        if !is_sealed(sealed) || body.len() < AES_256_GCM.tag_len() {
            return Err(format!("{path} is not an encrypted bundle file"));
        }
        let id = &header[MAGIC.len()..MAGIC.len() + KEY_ID_LEN];
        let Some((_, key)) = self.keys.iter().find(|(k, _)| k == id) else {
            return Err(format!(
                "{path} is encrypted with a key (id {}) that is not among the configured ones; add it to {KEY_VAR}",
                hex::encode(id)
            ));
        };
        let nonce: [u8; NONCE_LEN] = header[MAGIC.len() + KEY_ID_LEN..]
            .try_into()
            .map_err(|_| format!("{path} has a damaged header"))?;
        let mut body = body.to_vec();
        let plain = key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(digest, path)),
                &mut body,
            )
            .map_err(|_| {
                format!("{path} does not decrypt: it was changed, or belongs to another bundle")
            })?;
        Ok(plain.to_vec())
    }
}

/// Whether `content` was written by [`BundleKeys::seal`] (rows written before
/// team mode encrypted bundles are plaintext; the digest still checks them).
pub fn is_sealed(content: &[u8]) -> bool {
    content.len() >= HEADER_LEN && content.starts_with(MAGIC)
}

fn aad(digest: &str, path: &str) -> Vec<u8> {
    [digest.as_bytes(), b"\0", path.as_bytes()].concat()
}

fn key(hex_key: &str) -> Result<([u8; KEY_ID_LEN], LessSafeKey), SealError> {
    let bytes = hex::decode(hex_key)
        .ok()
        .filter(|b| b.len() == 32)
        .ok_or("is not 64 hex characters (32 bytes; `openssl rand -hex 32` makes one)")?;
    let id: [u8; KEY_ID_LEN] = Sha256::digest([b"opsdeploy bundle key id\0", &bytes[..]].concat())
        [..KEY_ID_LEN]
        .try_into()
        .expect("8 bytes");
    let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| "is not an AES-256 key")?;
    Ok((id, LessSafeKey::new(key)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(list: &[&str]) -> BundleKeys {
        BundleKeys {
            keys: list.iter().map(|k| key(k).unwrap()).collect(),
        }
    }

    #[test]
    fn sealed_files_open_only_with_their_key_bundle_and_path() {
        let old = "11".repeat(32);
        let new = "22".repeat(32);
        let sealed = keys(&[&old]).seal("d1", "tfplan", b"secret plan").unwrap();
        assert!(is_sealed(&sealed));
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        // Rotation: the new key first, the old one still opens old files.
        let rotated = keys(&[&new, &old]);
        assert_eq!(
            rotated.open("d1", "tfplan", &sealed).unwrap(),
            b"secret plan"
        );
        let err = keys(&[&new]).open("d1", "tfplan", &sealed).unwrap_err();
        assert!(err.contains("not among the configured ones"), "{err}");
        let err = rotated.open("d2", "tfplan", &sealed).unwrap_err();
        assert!(err.contains("another bundle"), "{err}");
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(rotated.open("d1", "tfplan", &flipped).is_err());
        assert!(key("abc").unwrap_err().contains("64 hex characters"));
    }
}
