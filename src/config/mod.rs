//! `opsdeploy.hcl`: the project's configuration, read strictly — an unknown key
//! or a wrong type is an error naming file, line and key.

pub mod effective;
mod reader;

use std::path::{Path, PathBuf};
use std::time::Duration;

use reader::{BodyReader, Source};

pub const CONFIG_FILE: &str = "opsdeploy.hcl";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no {CONFIG_FILE} in {dir}")]
    NotFound { dir: PathBuf },
    #[error("could not read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid HCL: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{}: {message}", location(path, *line))]
    Invalid {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
    #[error("{}: {message}", location(path, *line))]
    Unknown {
        path: PathBuf,
        line: Option<usize>,
        message: String,
        known: Vec<String>,
    },
    #[error("there is no environment \"{name}\" in {path}")]
    NoSuchEnvironment {
        name: String,
        path: PathBuf,
        known: Vec<String>,
    },
}

fn location(path: &Path, line: Option<usize>) -> String {
    match line {
        Some(l) => format!("{}:{l}", path.display()),
        None => path.display().to_string(),
    }
}

impl ConfigError {
    /// `file:line` the error concerns, when known.
    pub fn location(&self) -> Option<String> {
        match self {
            ConfigError::Syntax { path, line, .. } => Some(location(path, Some(*line))),
            ConfigError::Invalid { path, line, .. } | ConfigError::Unknown { path, line, .. } => {
                Some(location(path, *line))
            }
            ConfigError::Read { path, .. } | ConfigError::NoSuchEnvironment { path, .. } => {
                Some(path.display().to_string())
            }
            ConfigError::NotFound { .. } => None,
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The project directory (where opsdeploy.hcl is).
    pub dir: PathBuf,
    pub project: String,
    /// Project files the gates and post-deploy steps read and write, relative to `dir`.
    pub files: ProjectFiles,
    pub state: StateConfig,
    pub tools: Tools,
    pub notify: Option<Notify>,
    /// Every policy that runs: those configured, then each built-in policy
    /// the file does not mention, with its defaults (safe by default).
    pub policies: Vec<PolicyConfig>,
    /// Policies turned off with `enabled = false`, and why.
    pub disabled: Vec<DisabledPolicy>,
    pub environments: Vec<Environment>,
}

/// A policy turned off in opsdeploy.hcl; every plan shows it with its reason.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DisabledPolicy {
    pub name: String,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct ProjectFiles {
    pub state_file: PathBuf,
    pub continuity_file: PathBuf,
    pub security_checklist: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateConfig {
    /// Files under `.opsdeploy/` (the default, no server).
    File,
    /// Team mode: a PostgreSQL database.
    Postgres { url: String },
}

/// Paths to the tools, when not found on PATH.
#[derive(Debug, Clone, Default)]
pub struct Tools {
    pub terraform: Option<PathBuf>,
    pub helm: Option<PathBuf>,
    pub trivy: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Notify {
    /// Slack-compatible incoming webhook: JSON POST with a `text` field.
    pub webhook: String,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Enforcement {
    /// Evaluated and recorded on every plan and apply, shown as `shadow`;
    /// never blocks and never needs an override (a policy being rolled out).
    Shadow,
    /// Reported, never blocks.
    Advisory,
    /// Blocks unless an approver logs an override for the plan.
    SoftMandatory,
    /// Blocks; no override.
    HardMandatory,
}

impl Enforcement {
    pub const NAMES: [&str; 4] = ["shadow", "advisory", "soft-mandatory", "hard-mandatory"];

    pub fn as_str(self) -> &'static str {
        match self {
            Enforcement::Shadow => "shadow",
            Enforcement::Advisory => "advisory",
            Enforcement::SoftMandatory => "soft-mandatory",
            Enforcement::HardMandatory => "hard-mandatory",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "shadow" => Some(Enforcement::Shadow),
            "advisory" => Some(Enforcement::Advisory),
            "soft-mandatory" => Some(Enforcement::SoftMandatory),
            "hard-mandatory" => Some(Enforcement::HardMandatory),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySource {
    Builtin,
    /// A `.wasm` file, relative to the project.
    File(PathBuf),
    /// Rego files run by the built-in Rego runtime.
    Rego(RegoConfig),
}

/// `rego = [...]` and how to read the files (conftest's conventions by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegoConfig {
    /// Files, directories or `dir/*.rego` patterns, relative to the project.
    pub files: Vec<String>,
    /// The package whose deny / violation / warn rules count, e.g. `data.main`.
    pub query: Option<String>,
    /// Where `input` comes from, e.g. `terraform.plan` or `kubernetes`.
    pub input: Option<String>,
    /// `auto` (each file as Rego v1, else v0), `v0` or `v1`.
    pub rego_version: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PolicyConfig {
    pub name: String,
    pub source: PolicySource,
    pub enforcement: Enforcement,
    pub settings: Option<serde_json::Value>,
    /// Environments it applies to; all when empty.
    pub environments: Vec<String>,
    pub fuel: Option<u64>,
    pub memory: Option<u64>,
    pub timeout: Option<Duration>,
}

impl PolicyConfig {
    /// A policy opsdeploy.hcl does not configure: hard-mandatory, in every
    /// environment, its own default settings and limits.
    pub fn unconfigured(name: &str, source: PolicySource) -> PolicyConfig {
        PolicyConfig {
            name: name.to_string(),
            source,
            enforcement: Enforcement::HardMandatory,
            settings: None,
            environments: Vec::new(),
            fuel: None,
            memory: None,
            timeout: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    Rolling,
    BlueGreen,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Rolling => "rolling",
            Strategy::BlueGreen => "blue-green",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Environment {
    pub name: String,
    pub promote_from: Option<String>,
    pub strategy: Strategy,
    /// How long `apply` waits for another apply of this environment to finish.
    pub lock_timeout: Duration,
    pub terraform: Option<TerraformConfig>,
    pub helm: Vec<HelmRelease>,
    pub scan: Option<ScanConfig>,
    pub migrations: Option<MigrationsConfig>,
    pub health: Option<HealthConfig>,
    pub smoke_test: Option<CommandConfig>,
    pub monitor: Option<MonitorConfig>,
    pub approval: ApprovalConfig,
    pub rollback: Option<RollbackConfig>,
    pub promote: PromoteConfig,
    pub notify: Option<Notify>,
}

#[derive(Debug, Clone)]
pub struct TerraformConfig {
    pub dir: PathBuf,
    pub var_files: Vec<PathBuf>,
    pub vars: Vec<(String, String)>,
    pub workspace: Option<String>,
    pub binary: Option<PathBuf>,
    /// Module arguments and variables that differ between environments by
    /// design; promotion compares configurations without them.
    pub environment_vars: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct HelmRelease {
    pub name: String,
    pub chart: String,
    pub namespace: String,
    pub version: Option<String>,
    pub values: Vec<PathBuf>,
    pub set: Vec<(String, String)>,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct ScanConfig {
    pub images: Vec<String>,
    /// Project paths scanned for secrets and misconfigurations (`trivy fs`).
    pub paths: Vec<PathBuf>,
    pub fail_on: policy_sdk::scan::TrivySeverity,
    pub allowlist: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct MigrationsConfig {
    pub dir: PathBuf,
    /// Runs one migration file; `{file}` is replaced by its path.
    pub command: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct HealthConfig {
    pub url: String,
    pub timeout: Duration,
    pub interval: Duration,
    pub expect_status: u16,
}

#[derive(Debug, Clone)]
pub struct CommandConfig {
    pub command: Vec<String>,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct MonitorConfig {
    pub window: Duration,
    pub interval: Duration,
    pub error_rate_query: Vec<String>,
    pub max_error_rate: f64,
}

#[derive(Debug, Clone, Default)]
pub struct ApprovalConfig {
    /// Who may approve; anyone when empty.
    pub approvers: Vec<String>,
    pub min: u32,
    pub self_approve: bool,
    /// OpenSSH allowed_signers file (relative to the project): approvals
    /// count only when signed by a key it lists; the environment's, else the
    /// project-wide `approval { signers }`.
    pub signers: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct RollbackConfig {
    pub runbook: PathBuf,
}

/// `promote { ... }`: what promoting into this environment accepts.
#[derive(Debug, Clone, Default)]
pub struct PromoteConfig {
    /// The source environment may have no health check (its deployments are
    /// then unverified); recorded with every promotion.
    pub allow_unverified: bool,
}

impl Config {
    /// Reads `opsdeploy.hcl` from `dir`.
    pub fn load(dir: &Path) -> Result<Config, ConfigError> {
        let path = dir.join(CONFIG_FILE);
        if !path.is_file() {
            return Err(ConfigError::NotFound {
                dir: dir.to_path_buf(),
            });
        }
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        Self::parse(dir, Path::new(CONFIG_FILE), &text)
    }

    /// Parses configuration text; `shown` is the path used in messages.
    pub fn parse(dir: &Path, shown: &Path, text: &str) -> Result<Config, ConfigError> {
        let body = hcl::edit::parser::parse_body(text).map_err(|e| ConfigError::Syntax {
            path: shown.to_path_buf(),
            line: e.location().line(),
            message: e.message().to_string(),
        })?;
        let src = Source::new(shown, text);
        let mut top = BodyReader::new(&src, &body, CONFIG_FILE.to_string());
        let project = top.required_string("project")?;
        let files = ProjectFiles {
            state_file: top
                .string("state_file")?
                .unwrap_or_else(|| "PROJECT_STATE.md".into())
                .into(),
            continuity_file: top
                .string("continuity_file")?
                .unwrap_or_else(|| "CONTINUITY.md".into())
                .into(),
            security_checklist: top
                .string("security_checklist")?
                .unwrap_or_else(|| "SECURITY_CHECKLIST.md".into())
                .into(),
        };
        let state = match top.block("state")? {
            None => StateConfig::File,
            Some(mut b) => {
                let backend = b
                    .choice("backend", &["file", "postgres"])?
                    .unwrap_or_else(|| "file".into());
                let state = if backend == "postgres" {
                    StateConfig::Postgres {
                        url: b.required_string("url")?,
                    }
                } else {
                    StateConfig::File
                };
                b.finish()?;
                state
            }
        };
        let tools = match top.block("tools")? {
            None => Tools::default(),
            Some(mut b) => {
                let tools = Tools {
                    terraform: b.string("terraform")?.map(PathBuf::from),
                    helm: b.string("helm")?.map(PathBuf::from),
                    trivy: b.string("trivy")?.map(PathBuf::from),
                };
                b.finish()?;
                tools
            }
        };
        let notify = read_notify(&mut top)?;
        // Project-wide approval settings: only who signs.
        let signers = match top.block("approval")? {
            None => None,
            Some(mut a) => {
                let signers = a.string("signers")?.map(PathBuf::from);
                a.finish()?;
                signers
            }
        };
        let mut policies = Vec::new();
        let mut disabled = Vec::new();
        for (name, b) in top.labeled_blocks("policy")? {
            match read_policy(name, b)? {
                PolicyBlock::On(p) => policies.push(p),
                PolicyBlock::Off(d) => disabled.push(d),
            }
        }
        // Safe by default: a built-in policy the file does not mention runs
        // with its defaults; only `enabled = false` with a reason stops it.
        for name in crate::builtins::names() {
            let mentioned =
                policies.iter().any(|p| p.name == name) || disabled.iter().any(|d| d.name == name);
            if !mentioned {
                policies.push(PolicyConfig::unconfigured(name, PolicySource::Builtin));
            }
        }
        let mut environments = Vec::new();
        for (name, b) in top.labeled_blocks("environment")? {
            if !valid_environment_name(&name) {
                return Err(b.error(format!(
                    "environment name \"{}\" is not allowed: use lower-case letters, digits, `-` and `_`, starting with a letter or digit (it names files such as .opsdeploy/locks/NAME.lock)",
                    name.escape_debug()
                )));
            }
            environments.push(read_environment(name, b, signers.as_ref())?);
        }
        top.finish()?;
        let config = Config {
            dir: dir.to_path_buf(),
            project,
            files,
            state,
            tools,
            notify,
            policies,
            disabled,
            environments,
        };
        config.check_references(shown)?;
        Ok(config)
    }

    fn check_references(&self, shown: &Path) -> Result<(), ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: shown.to_path_buf(),
            line: None,
            message,
        };
        for env in &self.environments {
            if let Some(from) = &env.promote_from
                && (from == &env.name || self.environment(from).is_none())
            {
                return Err(invalid(format!(
                    "environment \"{}\" promotes from \"{from}\", which is not another environment here",
                    env.name
                )));
            }
        }
        for p in &self.policies {
            for e in &p.environments {
                if self.environment(e).is_none() {
                    return Err(invalid(format!(
                        "policy \"{}\" applies to environment \"{e}\", which is not defined",
                        p.name
                    )));
                }
            }
        }
        Ok(())
    }

    pub fn environment(&self, name: &str) -> Option<&Environment> {
        self.environments.iter().find(|e| e.name == name)
    }

    /// The named environment, or an error listing the ones that exist.
    pub fn require_environment(&self, name: &str) -> Result<&Environment, ConfigError> {
        self.environment(name)
            .ok_or_else(|| ConfigError::NoSuchEnvironment {
                name: name.to_string(),
                path: PathBuf::from(CONFIG_FILE),
                known: self.environments.iter().map(|e| e.name.clone()).collect(),
            })
    }

    /// The built-in policies that do not run for `env`, and why: turned off,
    /// or limited to other environments. Every plan shows them.
    pub fn policies_off_for(&self, env: &str) -> Vec<DisabledPolicy> {
        let mut off = self.disabled.clone();
        for p in &self.policies {
            if p.source == PolicySource::Builtin
                && !p.environments.is_empty()
                && !p.environments.iter().any(|e| e == env)
            {
                off.push(DisabledPolicy {
                    name: p.name.clone(),
                    reason: format!("applies only to {}", p.environments.join(", ")),
                });
            }
        }
        off
    }

    /// The policies that apply to an environment, in configuration order.
    pub fn policies_for<'a>(&'a self, env: &'a str) -> impl Iterator<Item = &'a PolicyConfig> {
        self.policies
            .iter()
            .filter(move |p| p.environments.is_empty() || p.environments.iter().any(|e| e == env))
    }

    /// A path from the configuration, resolved against the project directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        self.dir.join(path)
    }
}

fn read_notify(b: &mut BodyReader) -> Result<Option<Notify>, ConfigError> {
    match b.block("notify")? {
        None => Ok(None),
        Some(mut n) => {
            let notify = Notify {
                webhook: n.required_string("webhook")?,
            };
            n.finish()?;
            Ok(Some(notify))
        }
    }
}

/// Names that are safe as file names and in messages: `[a-z0-9][a-z0-9_-]*`.
pub fn valid_environment_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

enum PolicyBlock {
    On(PolicyConfig),
    Off(DisabledPolicy),
}

fn read_policy(name: String, mut b: BodyReader) -> Result<PolicyBlock, ConfigError> {
    let enabled = b.bool("enabled")?.unwrap_or(true);
    let reason = b.string("reason")?;
    let builtin = b.bool("builtin")?.unwrap_or(false);
    let file = b.string("source")?;
    let rego = read_rego(&mut b)?;
    let is_builtin_name = crate::builtins::builtin(&name).is_ok();
    if !enabled {
        let Some(reason) = reason.filter(|r| !r.trim().is_empty()) else {
            return Err(b.error(format!(
                "{} sets `enabled = false` without a `reason`; say why it is off (every plan shows it)",
                b.what()
            )));
        };
        // The rest of the block may stay as it was; it is read (and checked)
        // so turning the policy back on is one line.
        b.choice("enforcement", &Enforcement::NAMES)?;
        b.json("settings")?;
        b.strings("environments")?;
        b.u64("fuel")?;
        b.size("memory")?;
        b.duration("timeout")?;
        if file.is_none() && rego.is_none() && !is_builtin_name {
            return Err(b.error(format!(
                "{} is turned off but names no policy: it needs `source = \"path/to/policy.wasm\"`, or the name of a built-in policy",
                b.what()
            )));
        }
        b.finish()?;
        return Ok(PolicyBlock::Off(DisabledPolicy { name, reason }));
    }
    if reason.is_some() {
        return Err(b.error(format!(
            "`reason` in {} explains `enabled = false`; remove it, or turn the policy off",
            b.what()
        )));
    }
    if !builtin && (file.is_some() || rego.is_some()) && is_builtin_name {
        return Err(b.error(format!(
            "{} has the name of a built-in policy; give your policy another name (the built-in one runs unless turned off with `enabled = false` and a `reason`)",
            b.what()
        )));
    }
    let source = match (builtin, file, rego) {
        (true, None, None) => PolicySource::Builtin,
        (false, Some(f), None) => PolicySource::File(f.into()),
        (false, None, Some(rego)) => PolicySource::Rego(rego),
        (false, None, None) => {
            return Err(b.error(format!(
                "{} needs `builtin = true`, `source = \"path/to/policy.wasm\"` or `rego = [\"policies/*.rego\"]`",
                b.what()
            )));
        }
        _ => {
            return Err(b.error(format!(
                "{} sets more than one of `builtin = true`, `source` and `rego`; choose one",
                b.what()
            )));
        }
    };
    if source == PolicySource::Builtin
        && let Err(unknown) = crate::builtins::builtin(&name)
    {
        let known: Vec<&str> = crate::builtins::names().collect();
        return Err(b.error(format!("{unknown} (built in: {})", known.join(", "))));
    }
    let enforcement = match b.choice("enforcement", &Enforcement::NAMES)? {
        Some(e) => Enforcement::parse(&e).expect("choice() checked it"),
        None => Enforcement::HardMandatory,
    };
    let policy = PolicyConfig {
        name,
        source,
        enforcement,
        settings: b.json("settings")?,
        environments: b.strings("environments")?.unwrap_or_default(),
        fuel: b.u64("fuel")?,
        memory: b.size("memory")?,
        timeout: b.duration("timeout")?,
    };
    crate::engine::Limits::check(policy.fuel, policy.memory, policy.timeout)
        .map_err(|(key, why)| b.error(format!("`{key}` in {} {why}", b.what())))?;
    b.finish()?;
    Ok(PolicyBlock::On(policy))
}

/// `rego`, with `query`, `input` and `rego_version`, which only it uses.
fn read_rego(b: &mut BodyReader) -> Result<Option<RegoConfig>, ConfigError> {
    let files = b.strings("rego")?;
    let query = b.string("query")?;
    let input = b.string("input")?;
    let rego_version = b.choice("rego_version", &["auto", "v0", "v1"])?;
    match files {
        Some(files) if files.is_empty() => Err(b.error(format!(
            "`rego` in {} is empty; list the policy's .rego files",
            b.what()
        ))),
        Some(files) => Ok(Some(RegoConfig {
            files,
            query,
            input,
            rego_version,
        })),
        None if query.is_some() || input.is_some() || rego_version.is_some() => {
            Err(b.error(format!(
                "{} sets `query`, `input` or `rego_version`, which only a Rego policy (`rego = [...]`) uses",
                b.what()
            )))
        }
        None => Ok(None),
    }
}

fn read_environment(
    name: String,
    mut b: BodyReader,
    project_signers: Option<&PathBuf>,
) -> Result<Environment, ConfigError> {
    let strategy = match b.choice("strategy", &["rolling", "blue-green"])?.as_deref() {
        Some("blue-green") => Strategy::BlueGreen,
        _ => Strategy::Rolling,
    };
    let promote_from = b.string("promote_from")?;
    let lock_timeout = b
        .duration("lock_timeout")?
        .unwrap_or(Duration::from_secs(300));
    let terraform = match b.block("terraform")? {
        None => None,
        Some(mut t) => {
            let tf = TerraformConfig {
                dir: t.required_string("dir")?.into(),
                var_files: paths(t.strings("var_files")?),
                vars: t.string_map("vars")?.unwrap_or_default(),
                workspace: t.string("workspace")?,
                binary: t.string("binary")?.map(PathBuf::from),
                environment_vars: t.strings("environment_vars")?.unwrap_or_default(),
            };
            t.finish()?;
            Some(tf)
        }
    };
    let mut helm = Vec::new();
    for (release, mut h) in b.labeled_blocks("helm")? {
        helm.push(HelmRelease {
            name: release,
            chart: h.required_string("chart")?,
            namespace: h.string("namespace")?.unwrap_or_else(|| name.clone()),
            version: h.string("version")?,
            values: paths(h.strings("values")?),
            set: h.string_map("set")?.unwrap_or_default(),
            timeout: h.duration("timeout")?.unwrap_or(Duration::from_secs(300)),
        });
        h.finish()?;
    }
    let scan = match b.block("scan")? {
        None => None,
        Some(mut s) => {
            let fail_on = match s.string("fail_on")? {
                None => policy_sdk::scan::TrivySeverity::Critical,
                Some(v) => policy_sdk::scan::TrivySeverity::parse(&v).ok_or_else(|| {
                    s.error(format!(
                        "`fail_on` in {} is \"{v}\"; it must be one of: CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN",
                        s.what()
                    ))
                })?,
            };
            let scan = ScanConfig {
                images: s.strings("images")?.unwrap_or_default(),
                paths: paths(s.strings("paths")?),
                fail_on,
                allowlist: s.string("allowlist")?.map(PathBuf::from),
            };
            s.finish()?;
            Some(scan)
        }
    };
    let migrations = match b.block("migrations")? {
        None => None,
        Some(mut m) => {
            let dir = m.required_string("dir")?.into();
            // Apply runs every pending file with it: missing, it is a
            // configuration error now rather than a failed deploy later.
            let command = s_strings(&mut m, "command")?;
            let mig = MigrationsConfig {
                dir,
                command: non_empty_command(&m, command)?,
            };
            m.finish()?;
            Some(mig)
        }
    };
    let health = match b.block("health")? {
        None => None,
        Some(mut h) => {
            let status = h.u64("expect_status")?.unwrap_or(200);
            let url = h.required_string("url")?;
            check_health_url(&h, &url, strategy)?;
            let health = HealthConfig {
                url,
                timeout: h.duration("timeout")?.unwrap_or(Duration::from_secs(60)),
                interval: h.duration("interval")?.unwrap_or(Duration::from_secs(2)),
                expect_status: u16::try_from(status).map_err(|_| {
                    h.error(format!("`expect_status` {status} is not an HTTP status"))
                })?,
            };
            h.finish()?;
            Some(health)
        }
    };
    let smoke_test = match b.block("smoke_test")? {
        None => None,
        Some(mut s) => {
            let command = s_strings(&mut s, "command")?;
            let cmd = CommandConfig {
                command: non_empty_command(&s, command)?,
                timeout: s.duration("timeout")?.unwrap_or(Duration::from_secs(300)),
            };
            s.finish()?;
            Some(cmd)
        }
    };
    let monitor = match b.block("monitor")? {
        None => None,
        Some(mut m) => {
            let query = s_strings(&mut m, "error_rate_query")?;
            let interval = m.duration("interval")?.unwrap_or(Duration::from_secs(30));
            if interval.is_zero() {
                return Err(m.error(format!("`interval` in {} must be longer than 0s", m.what())));
            }
            let mon = MonitorConfig {
                window: m
                    .duration("window")?
                    .unwrap_or(Duration::from_secs(15 * 60)),
                interval,
                error_rate_query: non_empty_command(&m, query)?,
                max_error_rate: m.f64("max_error_rate")?.unwrap_or(0.01),
            };
            m.finish()?;
            Some(mon)
        }
    };
    let approval = match b.block("approval")? {
        None => ApprovalConfig {
            min: 1,
            signers: project_signers.cloned(),
            ..ApprovalConfig::default()
        },
        Some(mut a) => {
            let approval = ApprovalConfig {
                approvers: a.strings("approvers")?.unwrap_or_default(),
                min: a.u64("min")?.unwrap_or(1) as u32,
                self_approve: a.bool("self_approve")?.unwrap_or(false),
                signers: a
                    .string("signers")?
                    .map(PathBuf::from)
                    .or_else(|| project_signers.cloned()),
            };
            if approval.min == 0 {
                return Err(a.error(format!(
                    "`min` in {} is 0; every deployment needs at least one approval",
                    a.what()
                )));
            }
            if !approval.approvers.is_empty() && (approval.min as usize) > approval.approvers.len()
            {
                return Err(a.error(format!(
                    "`min` in {} is {} but only {} approvers are listed",
                    a.what(),
                    approval.min,
                    approval.approvers.len()
                )));
            }
            a.finish()?;
            approval
        }
    };
    let rollback = match b.block("rollback")? {
        None => None,
        Some(mut r) => {
            let rb = RollbackConfig {
                runbook: r.required_string("runbook")?.into(),
            };
            r.finish()?;
            Some(rb)
        }
    };
    let promote = match b.block("promote")? {
        None => PromoteConfig::default(),
        Some(mut p) => {
            let promote = PromoteConfig {
                allow_unverified: p.bool("allow_unverified")?.unwrap_or(false),
            };
            p.finish()?;
            promote
        }
    };
    if strategy == Strategy::BlueGreen && helm.is_empty() {
        return Err(b.error(format!(
            "{} has `strategy = \"blue-green\"` but no `helm` release: blue-green switches helm releases between two colours; add a `helm \"NAME\" {{ ... }}` block or remove the strategy",
            b.what()
        )));
    }
    let notify = read_notify(&mut b)?;
    b.finish()?;
    Ok(Environment {
        name,
        promote_from,
        strategy,
        lock_timeout,
        terraform,
        helm,
        scan,
        migrations,
        health,
        smoke_test,
        monitor,
        approval,
        rollback,
        promote,
        notify,
    })
}

/// A health URL opsdeploy can request: http(s) with a host; `{color}` only
/// where there is a colour to put in it.
fn check_health_url(b: &BodyReader, url: &str, strategy: Strategy) -> Result<(), ConfigError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    if rest.is_none_or(|r| r.is_empty() || r.starts_with('/')) {
        return Err(b.error(format!(
            "`url` in {} is \"{url}\"; it must be an http:// or https:// URL with a host",
            b.what()
        )));
    }
    if url.contains("{color}") && strategy != Strategy::BlueGreen {
        return Err(b.error(format!(
            "`url` in {} names `{{color}}`, which only a `strategy = \"blue-green\"` environment has; remove it or deploy blue-green",
            b.what()
        )));
    }
    Ok(())
}

fn paths(list: Option<Vec<String>>) -> Vec<PathBuf> {
    list.unwrap_or_default()
        .into_iter()
        .map(PathBuf::from)
        .collect()
}

fn s_strings(b: &mut BodyReader, key: &'static str) -> Result<Vec<String>, ConfigError> {
    b.strings(key)?.ok_or_else(|| {
        b.error(format!(
            "{} needs `{key}` (a command as a list of strings)",
            b.what()
        ))
    })
}

fn non_empty_command(b: &BodyReader, cmd: Vec<String>) -> Result<Vec<String>, ConfigError> {
    if cmd.is_empty() {
        Err(b.error(format!("the command in {} is empty", b.what())))
    } else {
        Ok(cmd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/p"), Path::new("opsdeploy.hcl"), text)
    }

    /// DESIGN.md's sketch, with one argument per line: HCL (like terraform)
    /// allows a single argument only in a one-line block. Blue-green needs a
    /// helm release and migrations their runner, so those are added.
    const SKETCH: &str = r#"
project = "shop"

policy "protected-deletes" {
  builtin     = true
  enforcement = "hard-mandatory"
}
policy "cost-guard" {
  source      = "policies/cost_guard.wasm"
  enforcement = "soft-mandatory"
  settings    = { max_monthly = 100, types = ["aws_instance"] }
  memory      = "512MiB"
  timeout     = "10s"
}

environment "staging" {
  terraform {
    dir       = "infra/staging"
    var_files = ["staging.tfvars"]
    vars      = { region = "eu-west-1" }
  }
  helm "api" {
    chart     = "charts/api"
    namespace = "staging"
    values    = ["charts/api/values-staging.yaml"]
  }
  scan {
    images  = ["registry.example.com/api:1.2.0"]
    fail_on = "CRITICAL"
  }
  migrations {
    dir     = "db/migrations"
    command = ["psql", "-f", "{file}"]
  }
  health {
    url     = "http://127.0.0.1:8080/healthz"
    timeout = "60s"
  }
  smoke_test { command = ["./scripts/smoke.sh", "staging"] }
  approval { self_approve = true }
}

environment "production" {
  promote_from = "staging"
  strategy     = "blue-green"
  helm "api" { chart = "charts/api" }
  approval {
    approvers = ["alice@example.com", "bob@example.com"]
    min       = 1
  }
  rollback { runbook = "docs/ROLLBACK.md" }
  monitor {
    window           = "15m"
    error_rate_query = ["./scripts/error_rate.sh"]
    max_error_rate   = 0.01
  }
}
"#;

    #[test]
    fn the_design_sketch_parses() {
        let c = parse(SKETCH).unwrap();
        assert_eq!(c.project, "shop");
        // The two configured, then the five built-ins the sketch leaves out.
        assert_eq!(c.policies.len(), 7);
        assert_eq!(c.policies[1].enforcement, Enforcement::SoftMandatory);
        assert_eq!(c.policies[1].memory, Some(512 << 20));
        assert_eq!(
            c.policies[1].settings.as_ref().unwrap()["types"][0],
            "aws_instance"
        );
        let staging = c.environment("staging").unwrap();
        assert_eq!(
            staging.terraform.as_ref().unwrap().vars,
            vec![("region".into(), "eu-west-1".into())]
        );
        assert_eq!(staging.helm[0].name, "api");
        assert!(staging.approval.self_approve);
        let prod = c.environment("production").unwrap();
        assert_eq!(prod.strategy, Strategy::BlueGreen);
        assert_eq!(prod.promote_from.as_deref(), Some("staging"));
        assert_eq!(
            prod.monitor.as_ref().unwrap().window,
            Duration::from_secs(900)
        );
        assert!(!prod.approval.self_approve);
    }

    #[test]
    fn unknown_keys_name_line_and_block() {
        let err =
            parse("project = \"p\"\nenvironment \"staging\" {\n  healthcheck { url = \"x\" }\n}\n")
                .unwrap_err();
        assert_eq!(err.location().as_deref(), Some("opsdeploy.hcl:3"));
        assert!(
            err.to_string()
                .contains("unknown block `healthcheck` in environment \"staging\""),
            "{err}"
        );
        let ConfigError::Unknown { known, .. } = err else {
            panic!()
        };
        assert!(known.contains(&"health".to_string()));
    }

    #[test]
    fn settings_nothing_reads_are_refused_not_ignored() {
        // kubectl and a release's colour value were once accepted and never used.
        let tools =
            parse("project = \"p\"\ntools { kubectl = \"/usr/bin/kubectl\" }\n").unwrap_err();
        assert!(tools.to_string().contains("`kubectl`"), "{tools}");
        let ConfigError::Unknown { known, .. } = tools else {
            panic!("{tools}")
        };
        assert_eq!(known, ["helm", "terraform", "trivy"]);
        let helm = parse(
            "project = \"p\"\nenvironment \"s\" {\n  helm \"api\" {\n    chart = \"c\"\n    color_value = \"tint\"\n  }\n}\n",
        )
        .unwrap_err();
        assert!(helm.to_string().contains("`color_value`"), "{helm}");
    }

    #[test]
    fn wrong_types_name_the_key_and_the_type() {
        let err = parse("project = 42\n").unwrap_err();
        assert!(
            err.to_string()
                .contains("`project` in opsdeploy.hcl must be a string, not a number"),
            "{err}"
        );
        let err = parse(
            "project = \"p\"\nenvironment \"s\" {\n health {\n url = \"http://u\"\n timeout = 60\n }\n}",
        )
        .unwrap_err();
        assert!(err.to_string().contains("opsdeploy.hcl:5"), "{err}");
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let err = parse("project = \"p\"\nenvironment \"s\" {\n").unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::Syntax { line: 3, .. } | ConfigError::Syntax { line: 2, .. }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn references_and_enforcement_are_checked() {
        let err = parse("project = \"p\"\nenvironment \"prod\" { promote_from = \"stage\" }")
            .unwrap_err();
        assert!(err.to_string().contains("promotes from \"stage\""), "{err}");
        let err = parse("project = \"p\"\npolicy \"x\" { builtin = true }").unwrap_err();
        assert!(
            err.to_string().contains("no built-in policy \"x\""),
            "{err}"
        );
        let err = parse("project = \"p\"\npolicy \"protected-deletes\" {\n builtin = true\n enforcement = \"strict\"\n}").unwrap_err();
        assert!(
            err.to_string()
                .contains("shadow, advisory, soft-mandatory, hard-mandatory"),
            "{err}"
        );
    }

    #[test]
    fn what_apply_would_need_is_checked_when_the_configuration_is_read() {
        let env = |body: &str| {
            parse(&format!(
                "project = \"p\"\nenvironment \"prod\" {{\n{body}\n}}\n"
            ))
        };
        let err = env("  migrations { dir = \"db\" }").unwrap_err();
        assert!(
            err.to_string()
                .contains("migrations block of environment \"prod\" needs `command`"),
            "{err}"
        );
        let err = env("  strategy = \"blue-green\"").unwrap_err();
        assert!(err.to_string().contains("but no `helm` release"), "{err}");
        let err = env("  health { url = \"http://{color}.app/healthz\" }").unwrap_err();
        assert!(
            err.to_string()
                .contains("names `{color}`, which only a `strategy = \"blue-green\"`"),
            "{err}"
        );
        let err = env("  health { url = \"localhost:8080/healthz\" }").unwrap_err();
        assert!(
            err.to_string()
                .contains("must be an http:// or https:// URL"),
            "{err}"
        );
        let err =
            env("  monitor {\n error_rate_query = [\"x\"]\n interval = \"0s\"\n }").unwrap_err();
        assert!(err.to_string().contains("must be longer than 0s"), "{err}");
        let c = env("  promote { allow_unverified = true }").unwrap();
        assert!(c.environments[0].promote.allow_unverified);
    }

    #[test]
    fn a_rego_policy_names_its_files_query_and_input() {
        let c = parse("project = \"p\"\npolicy \"k8s\" {\n rego = [\"policies/k8s/*.rego\"]\n query = \"data.main\"\n input = \"terraform.plan\"\n}").unwrap();
        let PolicySource::Rego(rego) = &c.policies[0].source else {
            panic!("{:?}", c.policies[0].source)
        };
        assert_eq!(rego.files, ["policies/k8s/*.rego"]);
        assert_eq!(rego.query.as_deref(), Some("data.main"));
        assert_eq!(rego.input.as_deref(), Some("terraform.plan"));
        let err = parse(
            "project = \"p\"\npolicy \"x\" {\n source = \"x.wasm\"\n query = \"data.main\"\n}",
        )
        .unwrap_err();
        assert!(err.to_string().contains("only a Rego policy"), "{err}");
        let err =
            parse("project = \"p\"\npolicy \"x\" {\n source = \"x.wasm\"\n rego = [\"a.rego\"]\n}")
                .unwrap_err();
        assert!(err.to_string().contains("more than one of"), "{err}");
    }

    #[test]
    fn env_function_reads_the_environment() {
        // SAFETY: tests in this module do not read this variable concurrently.
        unsafe { std::env::set_var("OPSDEPLOY_TEST_DB_URL", "postgres://localhost/x") };
        let c = parse("project = \"p\"\nstate {\n backend = \"postgres\"\n url = env(\"OPSDEPLOY_TEST_DB_URL\")\n}").unwrap();
        assert_eq!(
            c.state,
            StateConfig::Postgres {
                url: "postgres://localhost/x".into()
            }
        );
        let err = parse("project = \"p\"\nstate {\n backend = \"postgres\"\n url = env(\"OPSDEPLOY_TEST_UNSET_VAR\")\n}").unwrap_err();
        assert!(
            err.to_string()
                .contains("OPSDEPLOY_TEST_UNSET_VAR is not set"),
            "{err}"
        );
    }

    #[test]
    fn built_in_policies_run_unless_turned_off_with_a_reason() {
        let c = parse("project = \"p\"\nenvironment \"staging\" {}\n").unwrap();
        let names: Vec<&str> = c.policies.iter().map(|p| p.name.as_str()).collect();
        for builtin in crate::builtins::names() {
            assert!(
                names.contains(&builtin),
                "{builtin} is not on by default: {names:?}"
            );
        }
        assert!(
            c.policies
                .iter()
                .all(|p| p.enforcement == Enforcement::HardMandatory)
        );

        let c = parse(
            "project = \"p\"\npolicy \"no-secrets\" {\n  enabled = false\n  reason  = \"scanned by the vault team\"\n}\n",
        )
        .unwrap();
        assert!(!c.policies.iter().any(|p| p.name == "no-secrets"));
        assert_eq!(
            c.policies_off_for("staging"),
            vec![DisabledPolicy {
                name: "no-secrets".into(),
                reason: "scanned by the vault team".into()
            }]
        );

        let err = parse("project = \"p\"\npolicy \"gates\" { enabled = false }\n").unwrap_err();
        assert!(err.to_string().contains("without a `reason`"), "{err}");
        let err =
            parse("project = \"p\"\npolicy \"gates\" {\n  builtin = true\n  reason = \"x\"\n}\n")
                .unwrap_err();
        assert!(
            err.to_string().contains("explains `enabled = false`"),
            "{err}"
        );
        let err =
            parse("project = \"p\"\npolicy \"gates\" { source = \"allow.wasm\" }\n").unwrap_err();
        assert!(
            err.to_string().contains("name of a built-in policy"),
            "{err}"
        );
    }

    #[test]
    fn a_built_in_limited_to_some_environments_is_shown_as_off_for_the_others() {
        let c = parse(
            "project = \"p\"\npolicy \"promotion\" {\n  builtin = true\n  environments = [\"production\"]\n}\nenvironment \"staging\" {}\nenvironment \"production\" {}\n",
        )
        .unwrap();
        assert_eq!(
            c.policies_off_for("staging")[0].reason,
            "applies only to production"
        );
        assert!(c.policies_off_for("production").is_empty());
    }

    #[test]
    fn environment_names_that_could_name_other_files_are_refused() {
        for bad in [
            "../../../../tmp/evil",
            "Prod",
            "-x",
            "a b",
            "stag\\u001bing",
            "",
        ] {
            let text = format!("project = \"p\"\nenvironment \"{bad}\" {{}}\n");
            let err = parse(&text).unwrap_err();
            assert!(err.to_string().contains("is not allowed"), "{bad:?}: {err}");
        }
        for good in ["staging", "prod-eu_1", "0"] {
            parse(&format!("project = \"p\"\nenvironment \"{good}\" {{}}\n")).unwrap();
        }
    }

    #[test]
    fn absurd_limits_are_configuration_errors() {
        for (key, value) in [
            ("timeout", "\"18446744073709551615s\""),
            ("timeout", "\"0s\""),
            ("memory", "\"64GiB\""),
            ("fuel", "0"),
            ("fuel", "18446744073709551615"),
        ] {
            let text = format!(
                "project = \"p\"\npolicy \"gates\" {{\n  builtin = true\n  {key} = {value}\n}}\n"
            );
            let err = parse(&text).unwrap_err();
            assert!(
                err.to_string().contains(&format!("`{key}`")),
                "{key} = {value}: {err}"
            );
        }
    }
}
