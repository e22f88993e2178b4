//! How a command ends: its result or its error, the exit code (the one table,
//! decided in [`exit`]) and the hint that moves forward (every hint is here).
//!
//! Library modules have their own error types; a command's error is one of
//! them, wrapped in [`Error`]. Messages say what is wrong ([`Error`]'s
//! `Display`, with [`Error::location`] the file, line or object it concerns);
//! causes stay reachable through `source()` for `-v`.

use std::path::PathBuf;

use crate::authoring::AuthoringError;
use crate::authoring::build::BuildError;
use crate::authoring::fixtures::FixtureError;
use crate::authoring::scaffold::ScaffoldError;
use crate::config::{ConfigError, Enforcement};
use crate::engine::EngineError;
use crate::store::StoreError;
use crate::store::bundle::BundleError;
use crate::templates::TemplateError;
use crate::trust::TrustError;
use crate::workflow::replay::ReplayError;
use crate::workflow::rollout::shell_line;
use crate::workflow::signing::{SigningError, TrustStep};
use crate::workflow::{ScanBlock, Stage, WorkflowError, short};

/// Exit codes: 0 ok · 1 error · 2 usage (and drifted) · 3 blocked by policy ·
/// 4 approval missing or invalid · 5 deploy failed, rolled back · 6 deploy
/// failed, rollback failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok,
    Error,
    Usage,
    /// `drift`: the environment changed outside opsdeploy (2, like
    /// `terraform plan -detailed-exitcode`).
    Drifted,
    BlockedByPolicy,
    ApprovalMissing,
    RolledBack,
    RollbackFailed,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Error => 1,
            Exit::Usage | Exit::Drifted => 2,
            Exit::BlockedByPolicy => 3,
            Exit::ApprovalMissing => 4,
            Exit::RolledBack => 5,
            Exit::RollbackFailed => 6,
        }
    }
}

/// How a command that ran to its end came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// `drift`: the environment changed outside opsdeploy.
    Drifted {
        environment: String,
    },
    /// `policy eval`: the policy denies the input.
    Denied,
    /// `policy test`: a fixture did not get what it expects.
    FixturesFailed {
        dir: PathBuf,
    },
    /// `policy replay --fail-on-change`: some stored plan would get another
    /// verdict.
    VerdictsChanged,
}

/// Every error a command can end with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Workflow(#[from] WorkflowError),
    #[error(transparent)]
    Authoring(#[from] AuthoringError),
    #[error(transparent)]
    Scaffold(#[from] ScaffoldError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("cannot use -C {}: {source}", dir.display())]
    Directory {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the current directory: {0}")]
    CurrentDirectory(#[source] std::io::Error),
    #[error("--format {format} is for reports")]
    ReportOnlyFormat { format: &'static str },
    /// `--fuel`, `--memory` or `--timeout` out of the range a policy may have.
    #[error("--{flag} {reason}")]
    Limit { flag: &'static str, reason: String },
    #[error("could not write the report: {source}")]
    WriteReport {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Error {
        Error::Workflow(e.into())
    }
}

impl From<BundleError> for Error {
    fn from(e: BundleError) -> Error {
        Error::Workflow(e.into())
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Error {
        Error::Workflow(e.into())
    }
}

/// The exit code of a command's result: the one place each is decided.
pub fn exit(result: &Result<Outcome, Error>) -> Exit {
    use WorkflowError as W;
    let e = match result {
        Ok(Outcome::Done) => return Exit::Ok,
        Ok(Outcome::Drifted { .. }) => return Exit::Drifted,
        Ok(Outcome::Denied | Outcome::VerdictsChanged) => return Exit::BlockedByPolicy,
        Ok(Outcome::FixturesFailed { .. }) => return Exit::Error,
        Err(e) => e,
    };
    match e {
        Error::Workflow(w) => match w {
            W::Config(ConfigError::NoSuchEnvironment { .. })
            | W::NoSuchBundle { .. }
            | W::NotABundleDirectory { .. }
            | W::PromotesFromAnother { .. }
            | W::PromotesFromNone { .. }
            | W::NotAnEarlierDeployment { .. }
            | W::NothingToScan { .. }
            | W::NoDatabase
            | W::CheckpointUnreadable { .. }
            | W::InvalidDatabaseUrl { .. }
            | W::NoRuntimeRole
            | W::Signing(
                SigningError::NoSigners { .. }
                | SigningError::DetachedUnreadable { .. }
                | SigningError::NotASignatureFile { .. },
            )
            | W::Replay(ReplayError::UnknownBuiltin(_) | ReplayError::Since { .. }) => Exit::Usage,
            W::Blocked { .. }
            | W::HardMandatory { .. }
            | W::NothingToPromote { .. }
            | W::NotHealthy { .. }
            | W::SourceUnverified { .. }
            | W::SourceDown { .. }
            | W::ReturnBlocked { .. }
            | W::NotWhatRuns { .. }
            | W::ScanBlocked { .. } => Exit::BlockedByPolicy,
            W::Bundle(BundleError::Tampered { .. })
            | W::UnknownActor
            | W::NotAnApprover { .. }
            | W::SelfApproval { .. }
            | W::ApprovalMissing { .. }
            | W::RollbackNotApproved { .. }
            | W::SourcesChanged { .. }
            | W::ConfigChanged { .. }
            | W::Signing(
                SigningError::Trust {
                    source: TrustError::Refused(_),
                    ..
                }
                | SigningError::NoSigningKey { .. }
                | SigningError::KeyAddedByThisPlan { .. }
                | SigningError::KeyNotListed { .. }
                | SigningError::KeyNamespace { .. }
                | SigningError::KeyNotValidNow { .. }
                | SigningError::NotYourKey { .. }
                | SigningError::SignedWithAnotherKey { .. }
                | SigningError::DoesNotCount { .. },
            ) => Exit::ApprovalMissing,
            W::RolledBack { .. } => Exit::RolledBack,
            W::DeployRollbackFailed { .. } | W::LockLost { .. } | W::RollbackIncomplete { .. } => {
                Exit::RollbackFailed
            }
            _ => Exit::Error,
        },
        Error::Authoring(AuthoringError::UnknownBuiltin(_) | AuthoringError::Settings { .. })
        | Error::Scaffold(ScaffoldError::InvalidName { .. })
        | Error::Template(TemplateError::Unknown { .. })
        | Error::ReportOnlyFormat { .. }
        | Error::Limit { .. } => Exit::Usage,
        _ => Exit::Error,
    }
}

/// The command line this run was started with, quoted for a shell, to say
/// "run it again" in a hint.
pub fn this_command() -> String {
    shell_line(std::env::args().skip(1))
}

impl Outcome {
    /// The way forward from a result that is not a success.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Outcome::Done => return None,
            Outcome::Drifted { environment } => format!(
                "run `opsdeploy plan {environment}` to put back what opsdeploy deployed, or change the configuration to match"
            ),
            Outcome::Denied => format!(
                "change the input as the violations say (or the policy, if it is wrong), then run `{}` again",
                this_command()
            ),
            Outcome::FixturesFailed { dir } => format!(
                "fix the policy or the fixture's expected violations, then run `opsdeploy policy test {}` again",
                dir.display()
            ),
            Outcome::VerdictsChanged => "the bundles above would get another verdict: tune the policy (or its --settings) and replay again, \
                 or roll it out in shadow first (enforcement = \"shadow\")"
                .into(),
        })
    }
}

/// The way to signed approvals, when production's are unsigned.
pub const UNSIGNED_HINT: &str =
    "add `signers = \"deploy/allowed_signers\"` to its approval block (README.md, \"Trust model\")";

/// The hint for a name no built-in policy has.
fn builtin_names() -> String {
    format!(
        "built-in policies: {}",
        crate::builtins::names()
            .map(|n| format!("builtin:{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// `a, b, c`.
fn list(items: &[String]) -> String {
    items.join(", ")
}

/// The plan bundle directory of a digest, as shown.
fn bundle_dir(digest: &str) -> String {
    format!(".opsdeploy/bundles/{}", short(digest))
}

impl Error {
    /// What is wrong, without the location when the message starts with it
    /// (configuration errors read `opsdeploy.hcl:3: what`; `-->` says where).
    pub fn message(&self) -> String {
        let message = self.to_string();
        match self.location() {
            Some(loc) => message
                .strip_prefix(&format!("{loc}: "))
                .map(String::from)
                .unwrap_or(message),
            None => message,
        }
    }

    /// The file, line, resource or object the error concerns.
    pub fn location(&self) -> Option<String> {
        use WorkflowError as W;
        let path = |p: &std::path::Path| Some(p.display().to_string());
        match self {
            Error::Workflow(w) => match w {
                W::Config(e) => e.location(),
                W::Bundle(
                    BundleError::Tampered { digest, .. } | BundleError::Unreadable { digest, .. },
                ) => Some(bundle_dir(digest)),
                W::NoSuchBundle { .. } => Some(".opsdeploy/bundles".into()),
                W::InvalidSettings { policy, .. } => {
                    Some(format!("opsdeploy.hcl, policy \"{policy}\""))
                }
                W::Replay(ReplayError::Settings { .. }) => Some("--settings".into()),
                W::Replay(ReplayError::Since { .. }) => Some("--since".into()),
                W::Replay(ReplayError::NotAPolicy { arg, .. }) => Some(arg.clone()),
                W::ChartDoesNotRender { template, .. } => Some(template.clone()),
                W::SourcesChanged {
                    path,
                    removed,
                    more,
                    ..
                } => Some(format!(
                    "{path} {} after the plan was made{}",
                    if *removed { "was removed" } else { "changed" },
                    match more {
                        0 => String::new(),
                        n => format!(" (and {n} more)"),
                    }
                )),
                W::ConfigChanged { setting, .. } => Some(format!(
                    "{}: {setting} differs from the plan (a value read through env(), or a default)",
                    crate::config::CONFIG_FILE
                )),
                W::ProjectFile { path, .. } => Some(path.clone()),
                W::Blocked {
                    digest, blocking, ..
                } => blocking
                    .iter()
                    .find_map(|b| b.at.clone())
                    .or_else(|| Some(bundle_dir(digest))),
                W::RolledBack { failure, .. }
                | W::DeployFailed { failure, .. }
                | W::DeployRollbackFailed { failure, .. } => failure.clone(),
                W::AlreadyApplied { digest, .. } => Some(bundle_dir(digest)),
                W::ReturnBlocked { why, .. } => Some(why.clone()),
                W::TerraformFiles { path, .. } => Some(path.clone()),
                W::CommandMissing { block, .. } => Some(block.clone()),
                W::PromotesFromAnother { to, .. } | W::PromotesFromNone { to, .. } => {
                    Some(format!("opsdeploy.hcl, environment \"{to}\""))
                }
                W::NothingToScan {
                    environment: Some(_),
                } => Some(crate::config::CONFIG_FILE.into()),
                W::ScanBlocked { targets, .. } => Some(list(targets)),
                W::NoDatabase => Some("opsdeploy.hcl".into()),
                W::AuditDamaged { log, position, .. } => Some(format!("{log}:{position}")),
                W::MigrationSourceDamaged { position, .. } => {
                    Some(format!(".opsdeploy/audit.jsonl:{position}"))
                }
                W::DifferentHistory { target, .. } => Some(target.clone()),
                W::BadSignature { log, seq, .. } => Some(format!("{log}:{seq}")),
                W::CheckpointUnreadable { path, .. }
                | W::NoCheckpoint { path }
                | W::CheckpointNotExtended { path, .. } => Some(path.clone()),
                W::InvalidDatabaseUrl { .. } | W::NoRuntimeRole => Some("opsdeploy.hcl".into()),
                W::Signing(s) => signing_location(s),
                _ => None,
            },
            Error::Authoring(a) => match a {
                AuthoringError::Build(
                    BuildError::NoCrates { dir: p }
                    | BuildError::NotAPolicy { manifest: p, .. }
                    | BuildError::Metadata { manifest: p, .. }
                    | BuildError::MissingArtifact { path: p }
                    | BuildError::Compiler { dir: p, .. }
                    | BuildError::Copy { path: p, .. },
                ) => path(p),
                AuthoringError::Engine(EngineError::Read { path: p, .. }) => path(p),
                AuthoringError::Engine(
                    EngineError::InvalidModule { origin, .. }
                    | EngineError::Compile { origin, .. }
                    | EngineError::TooLarge { origin, .. }
                    | EngineError::ForbiddenImport { origin, .. }
                    | EngineError::AbiMismatch { origin, .. },
                ) => Some(origin.clone()),
                AuthoringError::Fixture(
                    FixtureError::Read { path: p, .. } | FixtureError::Invalid { path: p, .. },
                ) => path(p),
                AuthoringError::Fixture(FixtureError::Empty { dir }) => path(dir),
                AuthoringError::Input { path: p, .. }
                | AuthoringError::TerraformPlan { path: p, .. }
                | AuthoringError::SettingsFile { path: p, .. } => path(p),
                AuthoringError::Settings { from, .. } => Some(from.clone()),
                _ => None,
            },
            Error::Scaffold(
                ScaffoldError::Exists { path: p } | ScaffoldError::Write { path: p, .. },
            ) => path(p),
            Error::Template(TemplateError::Exists { dir, file }) => path(&dir.join(file)),
            Error::Template(TemplateError::Write { path: p, .. }) => path(p),
            Error::WriteReport { path: p, .. } => path(p),
            _ => None,
        }
    }

    /// The one command or edit that moves forward.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Error::Workflow(w) => return workflow_hint(w),
            Error::Authoring(a) => return authoring_hint(a),
            Error::Scaffold(ScaffoldError::InvalidName { .. }) => {
                "try a name like `cost-guard`".into()
            }
            Error::Scaffold(ScaffoldError::Exists { .. }) => {
                "choose another name or remove the directory".into()
            }
            Error::Scaffold(ScaffoldError::Write { .. }) => {
                "run `opsdeploy policy new` in a directory you can write to".into()
            }
            Error::Template(TemplateError::Unknown { known, .. }) => {
                format!("templates: {}", list(known))
            }
            Error::Template(TemplateError::Exists { .. }) => {
                "run init in an empty directory: `opsdeploy init NEW_DIR`".into()
            }
            Error::Template(TemplateError::Write { .. }) => {
                "choose a writable directory: `opsdeploy init NEW_DIR`".into()
            }
            Error::Directory { .. } => "pass an existing project directory".into(),
            Error::CurrentDirectory(_) => {
                "run it from an existing directory, or pass `-C DIR`".into()
            }
            Error::ReportOnlyFormat { .. } => {
                "use it with `opsdeploy plan`, `promote`, `report`, `scan`, `policy eval`, `policy test` or `policy replay` \
                 (and `audit log --format markdown`); other commands write human or json"
                    .into()
            }
            Error::WriteReport { .. } => "choose a writable path for -o".into(),
            Error::Limit { .. } => "pass a limit in that range".into(),
        })
    }
}

/// Where a signing refusal points: the file it concerns.
fn signing_location(e: &SigningError) -> Option<String> {
    use SigningError as S;
    match e {
        S::Trust {
            source: TrustError::Invalid { file, line, .. },
            ..
        } => Some(match line {
            Some(l) => format!("{file}:{l}"),
            None => file.clone(),
        }),
        S::SignersUnreadable { path, .. } | S::NotASignatureFile { path } => Some(path.clone()),
        S::NoSigningKey { signers, .. } | S::DoesNotCount { signers, .. } => Some(signers.clone()),
        S::DetachedUnreadable { sig, .. } => Some(sig.clone()),
        S::NoSigners { .. } => Some(crate::config::CONFIG_FILE.into()),
        _ => None,
    }
}

fn signing_hint(e: &SigningError) -> String {
    use SigningError as S;
    match e {
        S::Trust { step, .. } => match step {
            TrustStep::PlanSigners => {
                "fix the line (ssh-keygen(1), ALLOWED SIGNERS, describes the format), then plan again"
            }
            TrustStep::SignersInForce => "fix the allowed signers file",
            TrustStep::PublicKey => {
                "pass the key with --key FILE (a private key, or a .pub whose private half ssh-agent holds)"
            }
            TrustStep::FindKey => "pass --key FILE",
            TrustStep::Sign => "check the key (`ssh-add -l` lists what ssh-agent holds)",
            TrustStep::CheckOwnSignature => "check the key and try again",
            TrustStep::DetachedStatement => {
                "sign the statement exactly as `opsdeploy approve ENV --plan D --statement` printed it"
            }
            TrustStep::Checkpoint => {
                "restore the checkpoint as `opsdeploy audit checkpoint` printed it"
            }
        }
        .into(),
        S::SignersUnreadable { path, .. } => format!(
            "create {path} with one line per approver (`alice@example.com ssh-ed25519 AAAA...`), or remove `signers` from opsdeploy.hcl"
        ),
        S::NoSigningKey {
            environment,
            digest,
            ..
        } => format!(
            "pass --key ~/.ssh/id_ed25519 (or set OPSDEPLOY_SIGNING_KEY, or git's gpg.format=ssh and user.signingKey); \
             a runner without your key: `opsdeploy approve {environment} --plan {} --statement > s.json`, \
             then `ssh-keygen -Y sign -n opsdeploy -f KEY s.json`",
            short(digest)
        ),
        S::NoSigners { .. } => {
            "add `signers = \"deploy/allowed_signers\"` to the environment's approval block, or approve without a key"
                .into()
        }
        S::KeyAddedByThisPlan { deployed, .. } => format!(
            "ask a signer trusted by the deployment running now (plan {}) to approve; the new key counts once this plan is deployed",
            short(deployed)
        ),
        S::KeyNotListed { signers, .. } => format!(
            "sign with your key listed in {signers} (--key FILE), or have it added there by a plan that is approved and deployed"
        ),
        S::KeyNamespace { signers, .. } => {
            format!("add opsdeploy to its namespaces=\"...\" in {signers}")
        }
        S::KeyNotValidNow { .. } => {
            "sign with a key that is valid now, or renew this one's valid-before in a plan approved by current signers"
                .into()
        }
        S::NotYourKey { principals, .. } => format!(
            "approve as yourself: sign with your own key, or set OPSDEPLOY_USER={}",
            principals.first().map(String::as_str).unwrap_or_default()
        ),
        S::SignedWithAnotherKey { .. } => "pass the key you mean with --key FILE".into(),
        S::DoesNotCount {
            environment,
            digest,
            ..
        } => format!(
            "sign a fresh statement for this plan: `opsdeploy approve {environment} --plan {} --key FILE`",
            short(digest)
        ),
        S::DetachedUnreadable { .. } => {
            "pass the .sig file ssh-keygen wrote, with the statement it signs beside it (s.json and s.json.sig)"
                .into()
        }
        S::NotASignatureFile { .. } => {
            "pass the file `ssh-keygen -Y sign -n opsdeploy s.json` wrote (s.json.sig)".into()
        }
    }
}

const HELM_RENDER_HINT: &str = "fix the chart or its values, then plan again";

fn workflow_hint(e: &WorkflowError) -> Option<String> {
    use WorkflowError as W;
    Some(match e {
        W::Config(ConfigError::Read { path, .. }) => format!(
            "make {} readable by you (`ls -l {}` shows its owner and mode)",
            path.display(),
            path.display()
        ),
        W::Config(ConfigError::NotFound { .. }) => {
            "run `opsdeploy init` to create one, or `-C DIR` to point at a project".into()
        }
        W::Config(ConfigError::Syntax { .. }) => {
            "fix the HCL at that line (README.md has an opsdeploy.hcl reference)".into()
        }
        W::Config(ConfigError::Invalid { .. }) => {
            "fix it as README.md's opsdeploy.hcl reference shows; \
             `opsdeploy init --template quickstart DIR` writes a complete example"
                .into()
        }
        W::Config(ConfigError::Unknown { known, .. }) => format!("known here: {}", list(known)),
        W::Config(ConfigError::NoSuchEnvironment { known, .. }) => {
            if known.is_empty() {
                "add an `environment \"NAME\" { ... }` block to opsdeploy.hcl".into()
            } else {
                format!("environments: {}", list(known))
            }
        }
        W::Store(StoreError::Io { path, .. }) | W::Bundle(BundleError::Io { path, .. }) => format!(
            "check that {} is readable and writable by you (`ls -ld {}`), then run the command again",
            path.display(),
            path.display()
        ),
        W::Store(StoreError::Database { .. }) => {
            "check the PostgreSQL server's log, then `opsdeploy audit verify` to check the stored log"
                .into()
        }
        W::Store(StoreError::Damaged { .. }) => {
            "run `opsdeploy audit verify` to see which entry; restore the log from a backup".into()
        }
        W::Store(StoreError::Unavailable(_)) => {
            "check that the PostgreSQL server is up and that `state { url }` in opsdeploy.hcl points at it"
                .into()
        }
        W::Store(StoreError::BundleKey(_)) => {
            "set OPSDEPLOY_BUNDLE_KEY to the team's bundle key (64 hex characters; `openssl rand -hex 32` makes a new one), or OPSDEPLOY_BUNDLE_KEY_FILE to a file holding it".into()
        }
        W::Store(StoreError::Locked { .. }) => {
            "wait for it to finish, or run `opsdeploy status` to see who holds the lock".into()
        }
        W::Bundle(BundleError::Tampered { .. }) => {
            "plan again (`opsdeploy plan ENV`) and ask for a new approval".into()
        }
        W::Bundle(BundleError::Unreadable { .. }) => {
            "plan again (`opsdeploy plan ENV`); the bundle's files were changed or lost".into()
        }
        W::Bundle(BundleError::NotFound { .. }) => {
            "`opsdeploy status` lists the plans; or plan again".into()
        }
        W::Bundle(BundleError::Ambiguous { .. }) => {
            "pass more of the digest (`opsdeploy status` shows the plans)".into()
        }
        W::Tool { stage, .. } => match stage {
            Stage::FindTerraform => {
                "install terraform, or set its path: terraform { binary = \"...\" }"
            }
            Stage::FindHelm => "install helm, or set its path: tools { helm = \"...\" }",
            Stage::FindTrivy => "install trivy, or set its path: tools { trivy = \"...\" }",
            Stage::TerraformPlan => "fix the terraform configuration, then plan again",
            Stage::TerraformDrift => {
                "fix the terraform configuration or credentials, then run drift again"
            }
            Stage::HelmDrift => "check helm's access to the cluster, then run drift again",
            Stage::HelmRender => HELM_RENDER_HINT,
            Stage::ProjectState => "fix the project state file, then plan again",
            Stage::Migrations => "fix the migration file, then plan again",
            Stage::ScanAllowlist => "fix the allowlist file named in scan { allowlist = ... }",
            Stage::Scan => "check the image reference and trivy's database, then scan again",
            Stage::PolicyCache => "check the cache directory (OPSDEPLOY_CACHE_DIR)",
            Stage::BundleInput => "plan again",
            Stage::TerraformReturn => {
                "fix what terraform reports, then return by hand (`opsdeploy status` shows what runs)"
            }
        }
        .into(),
        W::ChartDoesNotRender { .. } => HELM_RENDER_HINT.into(),
        W::InvalidSettings { .. } => "fix `settings` to match what the policy accepts".into(),
        W::Replay(ReplayError::UnknownBuiltin(_)) => builtin_names(),
        W::Replay(ReplayError::Settings { .. }) => {
            "fix --settings to match what the policy accepts".into()
        }
        W::Replay(ReplayError::NotAPolicy { .. }) => {
            "pass a built policy module (`opsdeploy policy build`) or builtin:NAME".into()
        }
        W::Replay(ReplayError::Since { .. }) => {
            "e.g. --since 2026-11-01, or --since 30d for the last thirty days".into()
        }
        W::NoPlan { environment } => format!("run `opsdeploy plan {environment}`"),
        W::NoSuchBundle { .. } | W::NotABundleDirectory { .. } => {
            "pass a digest `opsdeploy status` shows, or a bundle directory".into()
        }
        W::WrongEnvironment {
            planned_for,
            digest,
            ..
        } => format!(
            "apply it to \"{planned_for}\" (`opsdeploy apply {planned_for} --plan {}`)",
            short(digest)
        ),
        W::UnknownActor => {
            "set OPSDEPLOY_USER=you@example.com, or run `git config --global user.email you@example.com`"
                .into()
        }
        W::NotAnApprover { approvers, .. } | W::SelfApproval { approvers, .. } => {
            if approvers.is_empty() {
                "ask another team member to run `opsdeploy approve`".into()
            } else {
                format!("ask one of: {}", list(approvers))
            }
        }
        W::HardMandatory { environment, .. } => {
            format!("change the plan so the policy passes, then run `opsdeploy plan {environment}`")
        }
        W::NothingToOverride {
            environment,
            digest,
            ..
        } => format!(
            "no override is needed: approve the plan as it is (`opsdeploy approve {environment} --plan {}`)",
            short(digest)
        ),
        W::ApprovalMissing {
            environment,
            digest,
            ..
        } => format!(
            "run `opsdeploy approve {environment} --plan {}`",
            short(digest)
        ),
        W::SourcesChanged { environment, .. } => format!(
            "run `opsdeploy plan {environment}` and ask for a new approval"
        ),
        W::ConfigChanged { environment, .. } => format!(
            "apply with the environment the plan was made with, or run `opsdeploy plan {environment}` and ask for a new approval"
        ),
        W::ProjectFile { problem, .. } => match problem {
            crate::fsutil::ProjectReadError::Escapes { .. } => {
                "replace the symlink with the file itself (or remove it), then plan again"
            }
            crate::fsutil::ProjectReadError::NotAFile { .. } => {
                "make it a regular file, then plan again"
            }
            crate::fsutil::ProjectReadError::Io { .. } => {
                "make it readable by you (`ls -l` shows its owner and mode), then plan again"
            }
        }
        .into(),
        W::Blocked {
            environment,
            digest,
            blocking,
        } => {
            // An override helps only when every blocking policy may be overridden.
            let soft = blocking
                .iter()
                .all(|b| b.enforcement == Enforcement::SoftMandatory);
            match blocking.first() {
                Some(first) if soft => format!(
                    "change the plan so it passes, or have an approver run `opsdeploy approve {environment} --plan {} --override {} --reason \"...\"`",
                    short(digest),
                    first.policy
                ),
                _ => format!(
                    "change the plan so it passes, then run `opsdeploy plan {environment}` again"
                ),
            }
        }
        W::Cancelled {
            environment,
            digest,
        } => format!(
            "run `opsdeploy apply {environment} --plan {} --yes` to apply without asking",
            short(digest)
        ),
        W::LockLost { environment, .. } => format!(
            "run `opsdeploy status {environment}` to see which steps ran, then apply again once no other apply runs"
        ),
        W::AlreadyApplied { environment, .. } => format!(
            "run `opsdeploy plan {environment}` for a new plan of what is there now (`opsdeploy status {environment}` shows it)"
        ),
        W::RolledBack { environment, .. } | W::DeployFailed { environment, .. } => format!(
            "fix the cause (recorded in the continuity file), then `opsdeploy plan {environment}`"
        ),
        W::DeployRollbackFailed { .. } => {
            "follow the rollback runbook; `opsdeploy status` shows what is deployed".into()
        }
        W::PromotesFromAnother { to, expected, .. } => {
            format!("run `opsdeploy promote {expected} {to}`")
        }
        W::PromotesFromNone { from, to } => format!(
            "set `promote_from = \"{from}\"` in environment \"{to}\", or plan it with `opsdeploy plan {to}`"
        ),
        W::NothingToPromote { from } => format!("deploy to {from} first: `opsdeploy plan {from}`"),
        W::SourceUnverified { from, to, .. } => format!(
            "add a `health {{ url = ... }}` block to \"{from}\" and deploy it again, or accept it in \"{to}\" with `promote {{ allow_unverified = true }}`"
        ),
        W::SourceDown { from, .. } => format!(
            "find out why {from} is down (`opsdeploy status {from}`), fix it, then promote again"
        ),
        W::NotHealthy { from, .. } => format!(
            "fix {from} and deploy it again; `opsdeploy status {from}` shows its state"
        ),
        W::NotWhatRuns { from, to, .. } => format!(
            "deploy the same artifacts to {from} first, then `opsdeploy promote {from} {to}` again"
        ),
        W::NothingToRollBack { environment } => {
            format!("`opsdeploy status {environment}` shows what happened there")
        }
        W::NoEarlierDeployment { .. } => "follow the rollback runbook".into(),
        W::NotAnEarlierDeployment { earlier, .. } => {
            if earlier.is_empty() {
                "follow the rollback runbook".into()
            } else {
                format!("earlier successful deployments: {}", list(earlier))
            }
        }
        W::RollbackNotApproved {
            environment,
            digest,
            ..
        } => format!(
            "ask an approver to run `opsdeploy approve {environment} --plan {}`, then roll back again",
            short(digest)
        ),
        W::ReturnBlocked { environment, .. } => format!(
            "nothing was changed; fix forward with `opsdeploy plan {environment}`, or return by hand as the runbook says"
        ),
        W::ReturnImpossible { digest, .. } => format!(
            "return by hand: compare `terraform show` with the configuration kept in {}/terraform/config",
            bundle_dir(digest)
        ),
        W::TerraformFiles { .. } => {
            "keep local terraform modules inside the project, then plan again".into()
        }
        W::CommandMissing {
            program, file: None, ..
        } if !program.contains('/') => {
            format!("install {program}, or name the program by its path in that block")
        }
        W::CommandMissing { program, file, .. } => format!(
            "create {}, or fix `command` in that block",
            file.as_deref().unwrap_or(program)
        ),
        W::RollbackIncomplete { .. } => {
            "follow the rollback runbook; `opsdeploy status` shows what is recorded as deployed"
                .into()
        }
        W::NothingToScan { .. } => {
            "name the images (`opsdeploy scan IMAGE...`), or add `scan { images = [...] }` \
             to the environment and run `opsdeploy scan --env ENV`"
                .into()
        }
        W::ScanBlocked {
            blocking,
            first,
            with_environment,
            ..
        } => {
            let again = this_command();
            let policy = blocking.first().map(String::as_str).unwrap_or_default();
            match first {
                ScanBlock::Failed => format!(
                    "policy `{policy}` could not run (see its finding); fix it or its limits in opsdeploy.hcl, then run `{again}` again"
                ),
                ScanBlock::Vulnerable { unpinned } => {
                    let mut ways = vec!["rebuild the image with the fixed versions"];
                    if *unpinned {
                        ways.push("reference it by digest (name@sha256:...)");
                    }
                    if *with_environment {
                        ways.push(
                            "accept a finding in the scan allowlist (a statement and an expired_at date)",
                        );
                    }
                    format!("{}, then run `{again}` again", ways.join(", or "))
                }
                ScanBlock::Findings => format!(
                    "fix what the findings of `{policy}` name, then run `{again}` again"
                ),
            }
        }
        W::NoDatabase => {
            "set OPSDEPLOY_DATABASE_URL (or pass --url), or add `state { backend = \"postgres\"  url = env(\"OPSDEPLOY_DATABASE_URL\") }`"
                .into()
        }
        W::AuditDamaged { .. } => {
            "restore the log from a backup; entries before it are intact".into()
        }
        W::MigrationSourceDamaged { .. } => {
            "run `opsdeploy audit verify` and restore the log from a backup".into()
        }
        W::DifferentHistory { .. } => {
            "migrate into an empty database (one per project), or point OPSDEPLOY_DATABASE_URL at this project's"
                .into()
        }
        W::CopyDoesNotVerify { .. } => {
            "run `opsdeploy audit verify` with the postgres backend to see which entry".into()
        }
        W::Signing(s) => signing_hint(s),
        W::BadSignature { .. } => {
            "the log or the approval was tampered with; restore the log from a backup and compare with your checkpoints"
                .into()
        }
        W::CheckpointUnreadable { .. } | W::NoCheckpoint { .. } => {
            "pass a file `opsdeploy audit checkpoint` wrote".into()
        }
        W::CheckpointNotExtended { .. } => {
            "the log was cut or rewritten after the checkpoint; restore it from a backup".into()
        }
        W::InvalidDatabaseUrl { .. } => {
            "fix OPSDEPLOY_DATABASE_URL, or pass --runtime-role".into()
        }
        W::NoRuntimeRole => "pass --runtime-role ROLE".into(),
    })
}

fn authoring_hint(e: &AuthoringError) -> Option<String> {
    Some(match e {
        AuthoringError::Build(b) => match b {
            BuildError::MissingTarget => crate::authoring::build::missing_target_hint().into(),
            BuildError::NoCrates { .. } => {
                "create one with `opsdeploy policy new NAME [--lang rust|c|zig|assemblyscript|rego]`"
                    .into()
            }
            BuildError::NotAPolicy { .. } => {
                "point at a crate made by `opsdeploy policy new NAME` (a cdylib depending on policy-sdk)"
                    .into()
            }
            BuildError::Cargo { .. } | BuildError::Compiler { .. } => {
                "fix the compile errors above, then run `opsdeploy policy build` again".into()
            }
            BuildError::MissingToolchain { install, .. } => (*install).into(),
            BuildError::Spawn { .. } => {
                "install Rust with rustup (https://rustup.rs) so `cargo` is on PATH".into()
            }
            BuildError::Metadata { .. } => {
                "fix the Cargo.toml (`cargo metadata` shows the error), then build again".into()
            }
            BuildError::MissingArtifact { .. } => {
                "run `cargo clean` in the policy crate, then `opsdeploy policy build` again".into()
            }
            BuildError::Copy { .. } => "pass a writable directory to --out".into(),
        },
        AuthoringError::Engine(g) => match g {
            EngineError::Read { .. } => {
                "check the path, or build the policy with `opsdeploy policy build`".into()
            }
            EngineError::InvalidModule { .. } | EngineError::Compile { .. } => {
                "policies are core wasm modules implementing policy-sdk/ABI.md".into()
            }
            EngineError::TooLarge { .. } => {
                "policies stay within the limits in policy-sdk/ABI.md (\"Limits\"); split the policy or trim what it links in".into()
            }
            EngineError::ForbiddenImport { .. } => {
                "build for wasm32-unknown-unknown (not wasm32-wasip1) and import only opsdeploy.*"
                    .into()
            }
            EngineError::AbiMismatch { .. } => {
                "rebuild the policy against a policy-sdk for ABI v1".into()
            }
            EngineError::InvalidSettings { .. } => {
                "fix the settings to match the policy's schema".into()
            }
            EngineError::Rego { .. } => {
                "check the `rego` patterns: each names .rego files, a directory or dir/*.rego"
                    .into()
            }
            EngineError::Engine(_) => {
                "the host refused memory or a thread; free some, then run the command again with -v"
                    .into()
            }
        },
        AuthoringError::Fixture(f) => match f {
            FixtureError::Read { .. } => {
                "check the fixture's path and permissions, then run `opsdeploy policy test` again"
                    .into()
            }
            FixtureError::Invalid { .. } => {
                "a fixture is {\"input\": {...}, \"expect\": [...]}; compare with the one `opsdeploy policy new` writes"
                    .into()
            }
            FixtureError::Empty { .. } => {
                "add a fixture: an input document and the violations you expect".into()
            }
        },
        AuthoringError::UnknownBuiltin(_) => builtin_names(),
        AuthoringError::Input { .. } => {
            "an input document is a JSON object with schema_version 1 and an environment (see schema/input-document.schema.json)"
                .into()
        }
        AuthoringError::TerraformPlan { .. } => {
            "pass the output of `terraform show -json PLANFILE`".into()
        }
        AuthoringError::SettingsFile { .. } => {
            "pass an existing JSON file as --settings @FILE, or the JSON itself".into()
        }
        AuthoringError::Settings { .. } => {
            "pass a JSON object, e.g. --settings '{\"types\": [\"aws_db_instance\"]}'".into()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_to_run_again_is_quoted_for_a_shell() {
        let args = ["scan", "nginx:1.27", "--env", "my env", "it's"].map(String::from);
        assert_eq!(
            shell_line(args.into_iter()),
            r#"opsdeploy scan nginx:1.27 --env 'my env' 'it'\''s'"#
        );
    }

    #[test]
    fn every_exit_code_is_the_one_design_gives() {
        let codes: Vec<u8> = [
            Exit::Ok,
            Exit::Error,
            Exit::Usage,
            Exit::BlockedByPolicy,
            Exit::ApprovalMissing,
            Exit::RolledBack,
            Exit::RollbackFailed,
        ]
        .iter()
        .map(|e| e.code())
        .collect();
        assert_eq!(codes, [0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(
            Exit::Drifted.code(),
            2,
            "drift exits like terraform's -detailed-exitcode"
        );
    }

    #[test]
    fn refusals_exit_with_the_code_of_what_is_missing() {
        let err = |w: WorkflowError| exit(&Err(Error::Workflow(w)));
        assert_eq!(err(WorkflowError::UnknownActor), Exit::ApprovalMissing);
        assert_eq!(
            err(WorkflowError::NothingToScan { environment: None }),
            Exit::Usage
        );
        assert_eq!(
            err(WorkflowError::RolledBack {
                environment: "staging".into(),
                digest: "3f9a1c2b4d5e".into(),
                failure: None,
                undone: 1,
                kept: 0,
            }),
            Exit::RolledBack
        );
        assert_eq!(
            exit(&Ok(Outcome::Drifted {
                environment: "staging".into()
            })),
            Exit::Drifted
        );
        assert_eq!(exit(&Ok(Outcome::Done)), Exit::Ok);
    }
}
