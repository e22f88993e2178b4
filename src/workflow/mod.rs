//! The deployment workflow: plan, approve, apply, promote, rollback, status,
//! drift — each a function over a [`Project`] (configuration + store).

pub mod apply;
pub mod approve;
pub mod continuity;
pub mod drift;
pub mod history;
pub mod identity;
pub mod plan;
pub mod policies;
pub mod post_deploy;
pub mod promote;
pub mod releases;
pub mod replay;
pub mod rollback;
pub mod rollout;
pub mod scans;
pub mod sources;
pub mod state;
pub mod status;

use std::path::{Path, PathBuf};

use crate::config::{Config, ConfigError, StateConfig};
use crate::store::bundle::BundleError;
use crate::store::{FileStore, PgStore, Store, StoreError};
pub use history::History;

/// Which row of the exit-code table an error belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    Error,
    Usage,
    BlockedByPolicy,
    ApprovalMissing,
    RolledBack,
    RollbackFailed,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error("environment \"{environment}\" has no plan yet")]
    NoPlan { environment: String },
    #[error("plan bundle {digest} is for environment \"{planned_for}\", not \"{environment}\"")]
    WrongEnvironment {
        digest: String,
        planned_for: String,
        environment: String,
    },
    #[error("{actor} may not approve plans for \"{environment}\"")]
    NotAnApprover {
        actor: String,
        environment: String,
        approvers: Vec<String>,
    },
    #[error(
        "{actor} planned {digest} and \"{environment}\" does not allow approving your own plan"
    )]
    SelfApproval {
        actor: String,
        digest: String,
        environment: String,
        approvers: Vec<String>,
    },
    #[error("policy \"{policy}\" is hard-mandatory; it cannot be overridden")]
    HardMandatory {
        policy: String,
        digest: String,
        environment: String,
    },
    #[error("policy \"{policy}\" {why}")]
    NothingToOverride {
        policy: String,
        why: String,
        digest: String,
        environment: String,
    },
    #[error(
        "plan {} has {have} valid approval{} for \"{environment}\"; it needs {need}",
        short(digest),
        if *have == 1 { "" } else { "s" }
    )]
    ApprovalMissing {
        environment: String,
        digest: String,
        have: usize,
        need: usize,
    },
    #[error("{what}")]
    Other {
        what: String,
        location: Option<String>,
        hint: Option<String>,
        class: ErrorClass,
    },
}

impl WorkflowError {
    pub fn class(&self) -> ErrorClass {
        match self {
            WorkflowError::Bundle(BundleError::Tampered { .. })
            | WorkflowError::NotAnApprover { .. }
            | WorkflowError::SelfApproval { .. }
            | WorkflowError::ApprovalMissing { .. } => ErrorClass::ApprovalMissing,
            WorkflowError::HardMandatory { .. } => ErrorClass::BlockedByPolicy,
            WorkflowError::Config(ConfigError::NoSuchEnvironment { .. }) => ErrorClass::Usage,
            WorkflowError::Other { class, .. } => *class,
            _ => ErrorClass::Error,
        }
    }

    /// The file, line or object the error concerns.
    pub fn location(&self) -> Option<String> {
        match self {
            WorkflowError::Config(e) => e.location(),
            WorkflowError::Other { location, .. } => location.clone(),
            WorkflowError::Bundle(BundleError::Tampered { digest, .. }) => Some(format!(
                ".opsdeploy/bundles/{}",
                &digest[..12.min(digest.len())]
            )),
            _ => None,
        }
    }

    /// The one command or edit that moves forward.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            WorkflowError::Config(ConfigError::Read { path, .. }) => format!(
                "make {} readable by you (`ls -l {}` shows its owner and mode)",
                path.display(),
                path.display()
            ),
            WorkflowError::Config(ConfigError::NotFound { .. }) => {
                "run `opsdeploy init` to create one, or `-C DIR` to point at a project".into()
            }
            WorkflowError::Config(ConfigError::Syntax { .. }) => {
                "fix the HCL at that line (README.md has an opsdeploy.hcl reference)".into()
            }
            WorkflowError::Config(ConfigError::Invalid { .. }) => {
                "fix it as README.md's opsdeploy.hcl reference shows; \
                 `opsdeploy init --template quickstart DIR` writes a complete example"
                    .into()
            }
            WorkflowError::Config(ConfigError::Unknown { known, .. }) => {
                format!("known here: {}", known.join(", "))
            }
            WorkflowError::Config(ConfigError::NoSuchEnvironment { known, .. }) => {
                if known.is_empty() {
                    "add an `environment \"NAME\" { ... }` block to opsdeploy.hcl".into()
                } else {
                    format!("environments: {}", known.join(", "))
                }
            }
            WorkflowError::NoPlan { environment } => format!("run `opsdeploy plan {environment}`"),
            WorkflowError::WrongEnvironment {
                planned_for,
                digest,
                ..
            } => format!(
                "apply it to \"{planned_for}\" (`opsdeploy apply {planned_for} --plan {}`)",
                &digest[..12.min(digest.len())]
            ),
            WorkflowError::NotAnApprover { approvers, .. }
            | WorkflowError::SelfApproval { approvers, .. } => {
                if approvers.is_empty() {
                    "ask another team member to run `opsdeploy approve`".into()
                } else {
                    format!("ask one of: {}", approvers.join(", "))
                }
            }
            WorkflowError::HardMandatory { environment, .. } => {
                format!("change the plan so the policy passes, then run `opsdeploy plan {environment}`")
            }
            WorkflowError::NothingToOverride {
                environment,
                digest,
                ..
            } => format!(
                "no override is needed: approve the plan as it is (`opsdeploy approve {environment} --plan {}`)",
                short(digest)
            ),
            WorkflowError::ApprovalMissing {
                environment,
                digest,
                ..
            } => format!(
                "run `opsdeploy approve {environment} --plan {}`",
                &digest[..12.min(digest.len())]
            ),
            WorkflowError::Bundle(BundleError::Tampered { .. }) => {
                "plan again (`opsdeploy plan ENV`) and ask for a new approval".into()
            }
            WorkflowError::Bundle(BundleError::NotFound { .. }) => {
                "`opsdeploy status` lists the plans; or plan again".into()
            }
            WorkflowError::Bundle(BundleError::Ambiguous { .. }) => {
                "pass more of the digest (`opsdeploy status` shows the plans)".into()
            }
            WorkflowError::Bundle(BundleError::Io { path, .. })
            | WorkflowError::Store(StoreError::Io { path, .. }) => format!(
                "check that {} is readable and writable by you (`ls -ld {}`), then run the command again",
                path.display(),
                path.display()
            ),
            WorkflowError::Store(StoreError::Database { .. }) => {
                "check the PostgreSQL server's log, then `opsdeploy audit verify` to check the stored log"
                    .into()
            }
            WorkflowError::Store(StoreError::Damaged { .. }) => {
                "run `opsdeploy audit verify` to see which entry; restore the log from a backup"
                    .into()
            }
            WorkflowError::Store(StoreError::Unavailable(_)) => {
                "check that the PostgreSQL server is up and that `state { url }` in opsdeploy.hcl points at it"
                    .into()
            }
            WorkflowError::Store(StoreError::Locked { .. }) => {
                "wait for it to finish, or run `opsdeploy status` to see who holds the lock".into()
            }
            // Every construction of `Other` passes a hint; `None` is a bug
            // the error-path sweep test would show.
            WorkflowError::Other { hint, .. } => return hint.clone(),
        })
    }
}

/// A project: its configuration and its store, and who is acting.
pub struct Project {
    pub config: Config,
    pub store: Box<dyn Store>,
    pub actor: String,
}

impl Project {
    /// Opens the project in `dir` (its `opsdeploy.hcl`).
    pub fn open(dir: &Path) -> Result<Project, WorkflowError> {
        let config = Config::load(dir)?;
        let store: Box<dyn Store> = match &config.state {
            StateConfig::File => Box::new(
                FileStore::new(dir.join(".opsdeploy")).with_markdown(dir.join("AUDIT_LOG.md")),
            ),
            StateConfig::Postgres { url } => Box::new(
                PgStore::connect(url, dir.join(".opsdeploy/bundles"))?
                    .with_markdown(dir.join("AUDIT_LOG.md")),
            ),
        };
        Ok(Project {
            actor: identity::current(dir),
            config,
            store,
        })
    }

    pub fn history(&self) -> Result<History, WorkflowError> {
        Ok(History::new(self.store.entries()?))
    }

    pub fn dir(&self) -> &Path {
        &self.config.dir
    }

    /// A project path as shown to people.
    pub fn shown(&self, path: &Path) -> PathBuf {
        path.strip_prefix(self.dir()).unwrap_or(path).to_path_buf()
    }
}

/// A short digest for messages.
pub fn short(digest: &str) -> &str {
    &digest[..12.min(digest.len())]
}
