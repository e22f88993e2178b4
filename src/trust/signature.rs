//! SSHSIG signatures: made by `ssh-keygen -Y sign -n opsdeploy` (a key file,
//! a public key file whose private half is in ssh-agent, or a security key),
//! checked in-process.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ssh_key::public::KeyData;
use ssh_key::{Algorithm, PublicKey, SshSig};

use super::{NAMESPACE, TrustError};

/// Checks that `pem` is a valid opsdeploy signature over `message` and
/// returns the key that made it (who that is, allowed_signers says).
pub fn verify(message: &[u8], pem: &str) -> Result<KeyData, TrustError> {
    let sig = SshSig::from_pem(pem.trim().as_bytes())
        .map_err(|e| TrustError::Refused(format!("the signature is not an SSH signature ({e})")))?;
    if sig.namespace() != NAMESPACE {
        return Err(TrustError::Refused(format!(
            "the signature is for namespace \"{}\", not \"{NAMESPACE}\" (sign with `ssh-keygen -Y sign -n {NAMESPACE}`)",
            sig.namespace()
        )));
    }
    // RSA keys sign with rsa-sha2-512 (or -256); SHA-1 `ssh-rsa` is refused.
    if sig.algorithm() == (Algorithm::Rsa { hash: None }) {
        return Err(TrustError::Refused(
            "the signature uses ssh-rsa (SHA-1); sign with rsa-sha2-512".into(),
        ));
    }
    let key = sig.public_key().clone();
    PublicKey::from(key.clone())
        .verify(NAMESPACE, message, &sig)
        .map_err(|e| {
            TrustError::Refused(format!(
                "the signature by {} does not verify: {e} (the signed text was changed, or it was signed for other text)",
                super::signers::fingerprint(&key)
            ))
        })?;
    Ok(key)
}

/// Where the signing key comes from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `--key FILE`
    Flag,
    /// `OPSDEPLOY_SIGNING_KEY`
    Env,
    /// git's `user.signingKey` (with `gpg.format=ssh`)
    Git,
}

/// A key to sign with: a private key file, or a public key file whose
/// private half ssh-agent holds (ssh-keygen finds it there).
#[derive(Debug, Clone)]
pub struct SigningKey {
    pub path: PathBuf,
    pub source: KeySource,
    /// Keeps a key given literally in git config (`key::ssh-ed25519 ...`) on disk.
    _literal: Option<std::sync::Arc<tempfile::NamedTempFile>>,
}

impl SigningKey {
    /// `--key`, else `OPSDEPLOY_SIGNING_KEY`, else git's `user.signingKey`
    /// when `gpg.format` is `ssh`; `None` when none is set.
    pub fn find(flag: Option<&Path>, project: &Path) -> Result<Option<SigningKey>, TrustError> {
        if let Some(p) = flag {
            return Ok(Some(Self::at(p)));
        }
        if let Some(p) = std::env::var_os("OPSDEPLOY_SIGNING_KEY").filter(|v| !v.is_empty()) {
            return Ok(Some(Self::file(PathBuf::from(p), KeySource::Env)));
        }
        let git = |key: &str| {
            Command::new("git")
                .args(["config", "--get", key])
                .current_dir(project)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .filter(|s| !s.is_empty())
        };
        if git("gpg.format").as_deref() != Some("ssh") {
            return Ok(None);
        }
        let Some(value) = git("user.signingKey") else {
            return Ok(None);
        };
        // git accepts the public key itself (`key::ssh-ed25519 AAAA...`, or
        // without the prefix), its private half held by ssh-agent.
        let literal = value.strip_prefix("key::").unwrap_or(&value);
        if literal.starts_with("ssh-")
            || literal.starts_with("ecdsa-")
            || literal.starts_with("sk-")
        {
            let mut file = tempfile::NamedTempFile::new().map_err(|e| {
                TrustError::Signing(format!(
                    "could not write git's user.signingKey to a temporary file: {e}"
                ))
            })?;
            std::io::Write::write_all(&mut file, format!("{literal}\n").as_bytes()).map_err(
                |e| {
                    TrustError::Signing(format!(
                        "could not write git's user.signingKey to a temporary file: {e}"
                    ))
                },
            )?;
            return Ok(Some(SigningKey {
                path: file.path().to_path_buf(),
                source: KeySource::Git,
                _literal: Some(std::sync::Arc::new(file)),
            }));
        }
        let path = match literal.strip_prefix("~/") {
            Some(rest) => std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(rest))
                .unwrap_or_else(|| PathBuf::from(literal)),
            None => PathBuf::from(literal),
        };
        Ok(Some(Self::file(path, KeySource::Git)))
    }

    /// The key a flag names (`--key`, `--sign`).
    pub fn at(path: &Path) -> SigningKey {
        Self::file(path.to_path_buf(), KeySource::Flag)
    }

    fn file(path: PathBuf, source: KeySource) -> SigningKey {
        SigningKey {
            path,
            source,
            _literal: None,
        }
    }

    /// Where it was named, for messages.
    pub fn describe(&self) -> String {
        match self.source {
            KeySource::Flag => format!("--key {}", self.path.display()),
            KeySource::Env => format!("OPSDEPLOY_SIGNING_KEY={}", self.path.display()),
            KeySource::Git => "git config user.signingKey".into(),
        }
    }

    /// The public key, from `FILE.pub` next to a private key or the file itself.
    pub fn public_key(&self) -> Result<KeyData, TrustError> {
        let with_pub = PathBuf::from(format!("{}.pub", self.path.display()));
        for candidate in [&self.path, &with_pub] {
            if let Ok(text) = std::fs::read_to_string(candidate)
                && let Ok(key) = PublicKey::from_openssh(text.trim())
            {
                return Ok(key.key_data().clone());
            }
        }
        Err(TrustError::Signing(format!(
            "cannot read the public key of {} (looked at {} and {})",
            self.describe(),
            self.path.display(),
            with_pub.display()
        )))
    }

    /// Signs `message` with `ssh-keygen -Y sign -n opsdeploy`; returns the
    /// PEM signature. A passphrase prompt or a security-key touch reaches the
    /// terminal.
    pub fn sign(&self, message: &[u8]) -> Result<String, TrustError> {
        let fail = |what: String| TrustError::Signing(what);
        let dir = tempfile::tempdir()
            .map_err(|e| fail(format!("could not create a temporary directory: {e}")))?;
        let file = dir.path().join("statement");
        std::fs::write(&file, message)
            .map_err(|e| fail(format!("could not write {}: {e}", file.display())))?;
        let out = Command::new("ssh-keygen")
            .args(["-Y", "sign", "-n", NAMESPACE, "-f"])
            .arg(&self.path)
            .arg(&file)
            .stdin(Stdio::inherit())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| {
                fail(format!(
                    "could not run ssh-keygen to sign ({e}); install OpenSSH's client tools (e.g. apt-get install openssh-client)"
                ))
            })?;
        if !out.status.success() {
            let said = String::from_utf8_lossy(&out.stderr)
                .lines()
                .filter(|l| !l.starts_with("Signing file"))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(fail(format!(
                "ssh-keygen could not sign with {}: {}",
                self.describe(),
                said.trim()
            )));
        }
        let sig_path = dir.path().join("statement.sig");
        std::fs::read_to_string(&sig_path)
            .map_err(|e| fail(format!("ssh-keygen wrote no signature ({e})")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keygen(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
        let path = dir.join(name);
        let ok = Command::new("ssh-keygen")
            .args(["-q", "-N", "", "-C", name, "-f"])
            .arg(&path)
            .args(args)
            .status()
            .expect("ssh-keygen runs (scripts/setup.sh installs openssh-client)")
            .success();
        assert!(ok, "ssh-keygen {args:?}");
        path
    }

    fn key(path: &Path) -> SigningKey {
        SigningKey::file(path.to_path_buf(), KeySource::Flag)
    }

    #[test]
    fn ed25519_ecdsa_and_rsa_signatures_by_ssh_keygen_verify_in_process() {
        let dir = tempfile::tempdir().unwrap();
        for (name, args) in [
            ("ed", &["-t", "ed25519"][..]),
            ("p256", &["-t", "ecdsa", "-b", "256"][..]),
            ("p384", &["-t", "ecdsa", "-b", "384"][..]),
            ("rsa", &["-t", "rsa", "-b", "2048"][..]),
        ] {
            let k = key(&keygen(dir.path(), name, args));
            let sig = k.sign(b"approve plan 3f9a\n").unwrap();
            let signer = verify(b"approve plan 3f9a\n", &sig).unwrap();
            assert_eq!(signer, k.public_key().unwrap(), "{name}");
            let err = verify(b"approve plan 3f9b\n", &sig)
                .unwrap_err()
                .to_string();
            assert!(err.contains("does not verify"), "{name}: {err}");
        }
    }

    #[test]
    fn a_signature_for_another_namespace_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = keygen(dir.path(), "ed", &["-t", "ed25519"]);
        let msg = dir.path().join("m");
        std::fs::write(&msg, "hello\n").unwrap();
        let ok = Command::new("ssh-keygen")
            .args(["-q", "-Y", "sign", "-n", "git", "-f"])
            .arg(&path)
            .arg(&msg)
            .status()
            .unwrap()
            .success();
        assert!(ok);
        let sig = std::fs::read_to_string(dir.path().join("m.sig")).unwrap();
        let err = verify(b"hello\n", &sig).unwrap_err().to_string();
        assert!(
            err.contains("namespace \"git\", not \"opsdeploy\""),
            "{err}"
        );
    }

    #[test]
    fn a_signature_made_here_verifies_with_ssh_keygen() {
        let dir = tempfile::tempdir().unwrap();
        let k = key(&keygen(dir.path(), "ed", &["-t", "ed25519"]));
        let msg = b"{\"statement\":\"opsdeploy-approval\"}\n";
        let sig = k.sign(msg).unwrap();
        std::fs::write(dir.path().join("s.sig"), &sig).unwrap();
        let public = std::fs::read_to_string(dir.path().join("ed.pub")).unwrap();
        std::fs::write(
            dir.path().join("allowed"),
            format!("bob@example.com {public}"),
        )
        .unwrap();
        let mut child = Command::new("ssh-keygen")
            .args([
                "-Y",
                "verify",
                "-n",
                "opsdeploy",
                "-I",
                "bob@example.com",
                "-f",
            ])
            .arg(dir.path().join("allowed"))
            .arg("-s")
            .arg(dir.path().join("s.sig"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), msg).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}
