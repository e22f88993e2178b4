//! The deployment workflow: plan, approve, apply, promote, rollback, status,
//! drift — each a function over a [`Project`] (configuration + store).

pub mod apply;
pub mod approve;
pub mod audit;
pub(crate) mod changes;
pub(crate) mod continuity;
pub mod drift;
pub mod history;
pub(crate) mod identity;
pub mod plan;
pub mod policies;
pub(crate) mod post_deploy;
pub(crate) mod preflight;
pub mod promote;
pub(crate) mod releases;
pub mod replay;
pub mod rollback;
pub mod rollout;
pub mod scans;
pub(crate) mod signing;
pub mod sources;
pub mod state;
pub mod status;
pub mod stored;
#[cfg(test)]
mod tests;
pub(crate) mod tfconfig;
pub(crate) mod tfreturn;
pub(crate) mod tools;
pub(crate) mod undo;

use std::path::{Path, PathBuf};

use crate::config::{Config, ConfigError, StateConfig};
use crate::store::bundle::BundleError;
use crate::store::{Entry, FileStore, NewEntry, PgStore, Store, StoreError};
pub use history::History;
pub use signing::UNSIGNED;

/// What a tool (or a project file it reads) was doing when it failed, which
/// says what to fix (the hint, in `crate::error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Finding terraform: `terraform { binary }`, `tools { terraform }`, PATH.
    FindTerraform,
    FindHelm,
    FindTrivy,
    /// `terraform init`, `plan` and `show` for a plan.
    TerraformPlan,
    /// `terraform init` and the refresh-only plan of `drift`.
    TerraformDrift,
    /// `helm history` for `drift`.
    HelmDrift,
    /// `helm template` and the values of a release.
    HelmRender,
    /// The project state file and checklists (the gates section).
    ProjectState,
    /// The migration files.
    Migrations,
    /// The file `scan { allowlist }` names.
    ScanAllowlist,
    /// trivy scanning an image or a path.
    Scan,
    /// The policy engine and its module cache.
    PolicyCache,
    /// The input document sealed in a plan bundle, read back at apply.
    BundleInput,
    /// `terraform init`, `plan` and `show` of a return to an earlier
    /// configuration (a rollback).
    TerraformReturn,
}

type Cause = Box<dyn std::error::Error + Send + Sync>;

/// One policy that blocks a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockingPolicy {
    pub policy: String,
    pub enforcement: crate::config::Enforcement,
    /// Where its first violation is (address, or file and line), when it says.
    pub at: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// A signed approval, override or checkpoint refused or not made.
    #[error(transparent)]
    Signing(#[from] signing::SigningError),
    #[error("{source}")]
    Tool {
        stage: Stage,
        #[source]
        source: Cause,
    },
    /// A chart that does not render, at the template Helm names (in the
    /// project when the chart is a local directory).
    #[error("{source}")]
    ChartDoesNotRender {
        template: String,
        #[source]
        source: crate::adapters::helm::HelmError,
    },
    #[error("{source}")]
    InvalidSettings {
        policy: String,
        #[source]
        source: crate::engine::EngineError,
    },
    #[error(transparent)]
    Replay(#[from] replay::ReplayError),
    #[error("environment \"{environment}\" has no plan yet")]
    NoPlan { environment: String },
    #[error("there is no plan bundle {digest} in this project")]
    NoSuchBundle { digest: String },
    #[error("{path} is not a bundle directory")]
    NotABundleDirectory { path: String },
    #[error("plan bundle {digest} is for environment \"{planned_for}\", not \"{environment}\"")]
    WrongEnvironment {
        digest: String,
        planned_for: String,
        environment: String,
    },
    #[error(
        "cannot tell who is approving: OPSDEPLOY_USER, `git config user.email` and $USER are all unset"
    )]
    UnknownActor,
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
    #[error(
        "plan bundle {} was made with another configuration than the one in effect now",
        short(digest)
    )]
    ConfigChanged {
        environment: String,
        digest: String,
        /// The first effective setting that differs (`policy.NAME.enforcement`, ...).
        setting: String,
    },
    /// A project file opsdeploy will not read (a symlink out of the project,
    /// not a regular file, unreadable); `message` names it relative to the project.
    #[error("{message}")]
    ProjectFile {
        path: String,
        message: String,
        problem: crate::fsutil::ProjectReadError,
    },
    #[error("plan bundle {} does not match the files on disk", short(digest))]
    SourcesChanged {
        environment: String,
        digest: String,
        /// The first project file that changed (or was removed).
        path: String,
        removed: bool,
        /// How many more changed.
        more: usize,
    },
    #[error(
        "plan {} is blocked by policy: {}",
        short(digest),
        blocking.iter().map(|b| b.policy.as_str()).collect::<Vec<_>>().join(", ")
    )]
    Blocked {
        environment: String,
        digest: String,
        blocking: Vec<BlockingPolicy>,
    },
    #[error("apply cancelled; nothing was changed")]
    Cancelled { environment: String, digest: String },
    #[error("{source}; the apply stopped {when} and nothing was rolled back")]
    LockLost {
        environment: String,
        when: String,
        #[source]
        source: Box<StoreError>,
    },
    #[error(
        "plan {} was already applied to \"{environment}\" at {at} ({how}); plan again",
        short(digest)
    )]
    AlreadyApplied {
        environment: String,
        digest: String,
        at: String,
        /// `finished rolled_back at ...`, `was interrupted`.
        how: String,
    },
    #[error(
        "deploy of plan {} to {environment} failed before changing anything",
        short(digest)
    )]
    DeployFailed {
        environment: String,
        digest: String,
        failure: Option<String>,
    },
    #[error(
        "deploy of plan {} to {environment} failed and was rolled back: {undone} undone{}",
        short(digest),
        match kept {
            0 => String::new(),
            n => format!(", {n} kept as compatible by design"),
        }
    )]
    RolledBack {
        environment: String,
        digest: String,
        failure: Option<String>,
        undone: usize,
        kept: usize,
    },
    #[error(
        "deploy of plan {} to {environment} failed and the rollback is incomplete: manual action needed for {}",
        short(digest),
        if not_undone.is_empty() {
            "the failed rollback steps above".to_string()
        } else {
            not_undone.join("; ")
        }
    )]
    DeployRollbackFailed {
        environment: String,
        digest: String,
        failure: Option<String>,
        /// What stays changed.
        not_undone: Vec<String>,
    },
    #[error("\"{to}\" promotes from \"{expected}\", not \"{from}\"")]
    PromotesFromAnother {
        from: String,
        to: String,
        expected: String,
    },
    #[error("\"{to}\" does not promote from any environment")]
    PromotesFromNone { from: String, to: String },
    #[error("nothing is deployed on \"{from}\" to promote")]
    NothingToPromote { from: String },
    #[error(
        "the deployment on \"{from}\" ({}) is not healthy; it cannot be promoted",
        short(digest)
    )]
    NotHealthy { from: String, digest: String },
    #[error(
        "plan {} for \"{to}\" is not what runs on \"{from}\": {}{}",
        short(digest),
        differences.first().map(String::as_str).unwrap_or_default(),
        match differences.len() {
            0 | 1 => String::new(),
            n => format!(" (and {} more differences)", n - 1),
        }
    )]
    NotWhatRuns {
        from: String,
        to: String,
        digest: String,
        differences: Vec<String>,
    },
    #[error(
        "the deployment on \"{from}\" ({}) is unverified: \"{from}\" has no health check, so nothing showed it healthy",
        short(digest)
    )]
    SourceUnverified {
        from: String,
        to: String,
        digest: String,
    },
    #[error("\"{from}\" does not answer its health check now: {source}")]
    SourceDown {
        from: String,
        #[source]
        source: Box<crate::adapters::health::CheckError>,
    },
    #[error("nothing is deployed on \"{environment}\" to roll back")]
    NothingToRollBack { environment: String },
    #[error(
        "\"{environment}\" has no earlier successful deployment than {} to go back to",
        short(digest)
    )]
    NoEarlierDeployment { environment: String, digest: String },
    #[error(
        "{prefix} is not an earlier successful deployment of \"{environment}\" (the current one is {})",
        short(current)
    )]
    NotAnEarlierDeployment {
        environment: String,
        prefix: String,
        current: String,
        /// The earlier successful deployments, `digest (at)`.
        earlier: Vec<String>,
    },
    #[error(
        "plan {} no longer has the approvals \"{environment}\" needs: {source}",
        short(digest)
    )]
    RollbackNotApproved {
        environment: String,
        digest: String,
        #[source]
        source: Box<WorkflowError>,
    },
    #[error("returning \"{environment}\" to {target} is blocked by policy: {policy}")]
    ReturnBlocked {
        environment: String,
        /// `plan 3f9a1c2b4d5e (0 to add, 0 to change, 1 to replace, 0 to destroy)`.
        target: String,
        policy: String,
        /// The policy's first denial.
        why: String,
    },
    /// Terraform cannot be returned to a bundle's configuration.
    #[error("{reason}")]
    ReturnImpossible { digest: String, reason: String },
    /// A terraform file a plan keeps a copy of cannot be read or lies
    /// outside the project.
    #[error("{what}")]
    TerraformFiles { what: String, path: String },
    #[error("{}", match file {
        Some(file) => format!("`{file}`, which `{program}` is given, does not exist in the project"),
        None if program.contains('/') => format!("`{program}` does not exist in the project"),
        None => format!("`{program}` is not installed: it is not on PATH"),
    })]
    CommandMissing {
        /// `opsdeploy.hcl, smoke_test block of environment "staging"`.
        block: String,
        program: String,
        /// The project file an argument names, when that is what is missing.
        file: Option<String>,
    },
    #[error("rollback of {environment} did not complete: manual action needed")]
    RollbackIncomplete { environment: String },
    #[error("{}", match environment {
        Some(name) => format!("environment \"{name}\" has no scan block"),
        None => "nothing to scan".into(),
    })]
    NothingToScan { environment: Option<String> },
    #[error("the scan is blocked by policy: {}", blocking.join(", "))]
    ScanBlocked {
        targets: Vec<String>,
        blocking: Vec<String>,
        /// Why the first blocking policy blocks: the fix differs.
        first: ScanBlock,
        /// Whether an environment's scan block (and its allowlist) judged.
        with_environment: bool,
    },
    #[error("no PostgreSQL database to migrate to")]
    NoDatabase,
    #[error(
        "audit log entry {position}{} is not valid: {reason}",
        seq.map(|s| format!(" (seq {s})")).unwrap_or_default()
    )]
    AuditDamaged {
        /// The log's path or database.
        log: String,
        position: usize,
        seq: Option<u64>,
        reason: String,
    },
    #[error(
        "audit log entry {seq} ({kind} by {actor}) is not a valid signed approval: {reason}{}",
        match more {
            0 => String::new(),
            n => format!(" (and {n} more)"),
        }
    )]
    BadSignature {
        /// The log's path or database.
        log: String,
        seq: u64,
        kind: String,
        actor: String,
        reason: String,
        /// How many more entries' signatures do not hold.
        more: usize,
    },
    #[error("cannot read the checkpoint {path}: {source}")]
    CheckpointUnreadable {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} holds no checkpoint")]
    NoCheckpoint { path: String },
    #[error("the audit log does not extend the checkpoint at size {size}: {why}")]
    CheckpointNotExtended {
        path: String,
        size: u64,
        why: String,
    },
    #[error("the database URL is not valid: {source}")]
    InvalidDatabaseUrl {
        #[source]
        source: postgres::Error,
    },
    #[error("the database URL names no user to grant to")]
    NoRuntimeRole,
    #[error(
        "the audit log to migrate is damaged at entry {position}: {reason}; nothing was copied"
    )]
    MigrationSourceDamaged { position: usize, reason: String },
    #[error(
        "{target} already holds a different audit history (entry {position} differs from .opsdeploy/audit.jsonl); nothing was copied"
    )]
    DifferentHistory { target: String, position: usize },
    #[error(
        "the copy in {target} does not verify against .opsdeploy/audit.jsonl ({entries} entries, head {}; expected {expected}, head {})",
        short(head),
        short(expected_head)
    )]
    CopyDoesNotVerify {
        target: String,
        entries: usize,
        head: String,
        expected: usize,
        expected_head: String,
    },
}

/// Why the first policy blocking a scan blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanBlock {
    /// The policy could not run.
    Failed,
    /// image-scan found fixable vulnerabilities; `unpinned` when it also
    /// found an image referenced by tag.
    Vulnerable { unpinned: bool },
    /// Another policy's findings.
    Findings,
}

impl WorkflowError {
    /// A tool's failure while doing `stage`.
    pub fn tool(stage: Stage, source: impl Into<Cause>) -> WorkflowError {
        WorkflowError::Tool {
            stage,
            source: source.into(),
        }
    }

    /// The refusal of a plan whose results a mandatory policy blocks, the
    /// same at plan, promote and apply; `None` when nothing blocks.
    pub fn blocked(
        environment: &str,
        results: &crate::store::results::Results,
    ) -> Option<WorkflowError> {
        let blocking: Vec<BlockingPolicy> = results
            .blocking()
            .into_iter()
            .map(|d| BlockingPolicy {
                policy: d.policy.clone(),
                enforcement: d.enforcement,
                at: d.violations.iter().find_map(crate::report::model::location),
            })
            .collect();
        (!blocking.is_empty()).then(|| WorkflowError::Blocked {
            environment: environment.to_string(),
            digest: results.digest.clone(),
            blocking,
        })
    }
}

/// A project: its configuration and its store, and who is acting.
pub struct Project {
    pub config: Config,
    pub store: Box<dyn Store>,
    pub actor: String,
    /// The people-readable rendering of the audit log, rewritten after each entry.
    audit_markdown: PathBuf,
}

impl Project {
    /// Opens the project in `dir` (its `opsdeploy.hcl`).
    pub fn open(dir: &Path) -> Result<Project, WorkflowError> {
        let config = Config::load(dir)?;
        let store: Box<dyn Store> = match &config.state {
            StateConfig::File => Box::new(FileStore::new(dir.join(".opsdeploy"))),
            StateConfig::Postgres { url } => {
                Box::new(PgStore::connect(url, dir.join(".opsdeploy/bundles"))?)
            }
        };
        Ok(Project {
            actor: identity::current(dir),
            audit_markdown: dir.join("AUDIT_LOG.md"),
            config,
            store,
        })
    }

    /// Appends an entry to the audit log, then renders the log for people.
    pub fn record(&self, entry: NewEntry) -> Result<Entry, WorkflowError> {
        let entry = self.store.append(entry)?;
        self.render_audit_log();
        Ok(entry)
    }

    /// Records what the actor did with plan `digest` of `environment`.
    pub fn log(
        &self,
        environment: &str,
        digest: &str,
        data: crate::store::EntryData,
    ) -> Result<Entry, WorkflowError> {
        self.record(NewEntry::new(&self.actor, environment, data).digest(digest))
    }

    /// Rewrites AUDIT_LOG.md from the whole log. A failure only warns: the log
    /// itself is written. Two commands appending at once may render in either
    /// order; the next entry renders again (and `opsdeploy audit log --format
    /// markdown` renders on demand).
    fn render_audit_log(&self) {
        let path = &self.audit_markdown;
        match self.store.entries() {
            Ok(entries) => {
                let md = crate::report::audit_markdown(&entries);
                if let Err(e) = crate::fsutil::write_atomic(path, md.as_bytes()) {
                    tracing::warn!("could not update {}: {e}", path.display());
                }
            }
            Err(e) => tracing::warn!("could not render {}: {e}", path.display()),
        }
    }

    /// The log, its chain checked first: whatever the workflow decides from
    /// the past, it decides from an unbroken chain (exit 1 naming the first
    /// bad entry otherwise).
    pub fn history(&self) -> Result<History, WorkflowError> {
        let entries = self.store.entries()?;
        if let Some(bad) = crate::store::audit::check_chain(&entries) {
            return Err(StoreError::Damaged {
                path: self.store.describe(),
                position: bad.position,
                reason: bad.reason,
            }
            .into());
        }
        Ok(History::new(entries))
    }

    pub fn dir(&self) -> &Path {
        &self.config.dir
    }

    /// A project path as shown to people.
    pub fn shown(&self, path: &Path) -> PathBuf {
        path.strip_prefix(self.dir()).unwrap_or(path).to_path_buf()
    }
}

pub use crate::store::short;
