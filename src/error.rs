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
        Ok(Outcome::Denied) => return Exit::BlockedByPolicy,
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
            | W::NothingToScan { .. }
            | W::NoDatabase => Exit::Usage,
            W::Blocked { .. }
            | W::HardMandatory { .. }
            | W::NothingToPromote { .. }
            | W::NotHealthy { .. }
            | W::NotWhatRuns { .. }
            | W::ScanBlocked { .. } => Exit::BlockedByPolicy,
            W::Bundle(BundleError::Tampered { .. })
            | W::UnknownActor
            | W::NotAnApprover { .. }
            | W::SelfApproval { .. }
            | W::ApprovalMissing { .. }
            | W::SourcesChanged { .. } => Exit::ApprovalMissing,
            W::RolledBack { .. } => Exit::RolledBack,
            W::DeployRollbackFailed { .. } | W::LockLost { .. } | W::RollbackIncomplete { .. } => {
                Exit::RollbackFailed
            }
            _ => Exit::Error,
        },
        Error::Authoring(AuthoringError::UnknownBuiltin(_) | AuthoringError::Settings { .. })
        | Error::Scaffold(ScaffoldError::InvalidName { .. })
        | Error::Template(TemplateError::Unknown { .. })
        | Error::ReportOnlyFormat { .. } => Exit::Usage,
        _ => Exit::Error,
    }
}

/// The command line this run was started with, quoted for a shell, to say
/// "run it again" in a hint.
pub fn this_command() -> String {
    shell_line(std::env::args().skip(1))
}

fn shell_line(args: impl Iterator<Item = String>) -> String {
    let quote = |a: String| {
        if !a.is_empty()
            && a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+".contains(c))
        {
            a
        } else {
            format!("'{}'", a.replace('\'', r#"'\''"#))
        }
    };
    std::iter::once("opsdeploy".to_string())
        .chain(args.map(quote))
        .collect::<Vec<_>>()
        .join(" ")
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
        })
    }
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
                W::Blocked {
                    digest, blocking, ..
                } => blocking
                    .iter()
                    .find_map(|b| b.at.clone())
                    .or_else(|| Some(bundle_dir(digest))),
                W::RolledBack { failure, .. } | W::DeployRollbackFailed { failure, .. } => {
                    failure.clone()
                }
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
                _ => None,
            },
            Error::Authoring(a) => match a {
                AuthoringError::Build(
                    BuildError::NoCrates { dir: p }
                    | BuildError::NotAPolicy { manifest: p, .. }
                    | BuildError::Metadata { manifest: p, .. }
                    | BuildError::MissingArtifact { path: p }
                    | BuildError::Copy { path: p, .. },
                ) => path(p),
                AuthoringError::Engine(EngineError::Read { path: p, .. }) => path(p),
                AuthoringError::Engine(
                    EngineError::InvalidModule { origin, .. }
                    | EngineError::Compile { origin, .. }
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
                "use it with `opsdeploy plan`, `promote`, `report`, `scan`, `policy eval` or `policy test` \
                 (and `audit log --format markdown`); other commands write human or json"
                    .into()
            }
            Error::WriteReport { .. } => "choose a writable path for -o".into(),
        })
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
        }
        .into(),
        W::ChartDoesNotRender { .. } => HELM_RENDER_HINT.into(),
        W::InvalidSettings { .. } => "fix `settings` to match what the policy accepts".into(),
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
        W::RolledBack { environment, .. } => format!(
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
        W::NoReleasesToRollBack { runbook, .. } => match runbook {
            Some(r) => format!("follow the runbook: {}", r.display()),
            None => "revert the change in code and deploy it (`opsdeploy plan`)".into(),
        },
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
    })
}

fn authoring_hint(e: &AuthoringError) -> Option<String> {
    Some(match e {
        AuthoringError::Build(b) => match b {
            BuildError::MissingTarget => crate::authoring::build::missing_target_hint().into(),
            BuildError::NoCrates { .. } => "create one with `opsdeploy policy new NAME`".into(),
            BuildError::NotAPolicy { .. } => {
                "point at a crate made by `opsdeploy policy new NAME` (a cdylib depending on policy-sdk)"
                    .into()
            }
            BuildError::Cargo { .. } => {
                "fix the compile errors above, then run `opsdeploy policy build` again".into()
            }
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
        AuthoringError::UnknownBuiltin(_) => format!(
            "built-in policies: {}",
            crate::builtins::names()
                .map(|n| format!("builtin:{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
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
