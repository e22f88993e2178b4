//! What makes an approval or a log head provable: SSH signatures (SSHSIG,
//! namespace `opsdeploy`) over small canonical texts, checked in-process
//! against an OpenSSH `allowed_signers` file.
//!
//! It knows nothing of the workflow or reports, and of the store only its
//! time format. The workflow decides which signers are in force; this module
//! parses, signs (with `ssh-keygen -Y sign`, so keys in files, in ssh-agent or
//! on security keys all work) and verifies (in-process: `apply` never needs
//! ssh-keygen).

pub mod checkpoint;
pub mod signature;
pub mod signers;
pub mod statement;
pub mod time;

/// The SSHSIG namespace of every opsdeploy signature; a signature made for
/// git commits or another tool never counts here.
pub const NAMESPACE: &str = "opsdeploy";

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// A file the user wrote (allowed_signers, a statement, a checkpoint) is
    /// not what it must be.
    #[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Invalid {
        file: String,
        line: Option<usize>,
        message: String,
    },
    /// A signature that does not verify, or a signer that does not count.
    #[error("{0}")]
    Refused(String),
    /// Signing itself failed (ssh-keygen missing, key unreadable, agent empty).
    #[error("{0}")]
    Signing(String),
}

impl TrustError {
    pub(crate) fn invalid(file: &str, line: Option<usize>, message: impl Into<String>) -> Self {
        TrustError::Invalid {
            file: file.to_string(),
            line,
            message: message.into(),
        }
    }
}
