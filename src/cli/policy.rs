//! `opsdeploy policy new | build | test | eval`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand};
use opsdeploy::adapters::terraform::read_plan_file;
use opsdeploy::authoring::build::{self, BuildError};
use opsdeploy::authoring::fixtures::{self, CaseResult, FixtureError};
use opsdeploy::authoring::scaffold::{self, ScaffoldError};
use opsdeploy::engine::{
    BUILTIN_POLICIES, EngineError, Evaluation, Limits, ModuleSource, Policy, PolicyEngine,
};
use opsdeploy::input::{InputDocument, InputError};
use opsdeploy::report;
use serde_json::value::RawValue;

use super::{CliError, CliResult, Context, Exit, Format};

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Create a policy crate NAME with a passing fixture
    #[command(
        after_help = "Example:\n  opsdeploy policy new cost-guard && opsdeploy policy test cost-guard"
    )]
    New {
        /// Crate name (lowercase letters, digits, `-`, `_`)
        name: String,
    },
    /// Compile policy crates to wasm32-unknown-unknown
    #[command(after_help = "Example:\n  opsdeploy policy build policies/ --out build/policies")]
    Build {
        /// A policy crate, or a directory of policy crates
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Copy the built modules into this directory
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Build policy crates and run their fixtures (fixtures/*.json)
    #[command(
        after_help = "Example:\n  opsdeploy policy test policies/\n  opsdeploy policy test fixtures/ --wasm my_policy.wasm"
    )]
    Test {
        /// A policy crate, a directory of policy crates, or (with --wasm) a fixtures directory
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Test this prebuilt module instead of building a crate
        #[arg(long, value_name = "FILE")]
        wasm: Option<PathBuf>,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Evaluate one policy on an input document
    #[command(
        after_help = "Examples:\n  opsdeploy policy eval builtin:protected-deletes --terraform-plan plan.json\n  opsdeploy policy eval cost_guard.wasm --input input.json --settings '{\"max\": 100}'"
    )]
    Eval {
        /// A .wasm module, or builtin:NAME for a built-in policy
        policy: String,
        /// Input document (JSON, schema version 1)
        #[arg(long, value_name = "FILE", required_unless_present = "terraform_plan")]
        input: Option<PathBuf>,
        /// A terraform plan JSON (`terraform show -json`), wrapped into an input document
        #[arg(long, value_name = "FILE", conflicts_with = "input")]
        terraform_plan: Option<PathBuf>,
        /// Environment name for --terraform-plan
        #[arg(
            long,
            value_name = "NAME",
            default_value = "local",
            requires = "terraform_plan"
        )]
        env: String,
        /// The policy's settings: JSON text or @FILE
        #[arg(long, value_name = "JSON|@FILE")]
        settings: Option<String>,
        #[command(flatten)]
        limits: LimitArgs,
    },
}

impl PolicyCommand {
    /// `eval` and `test` write reports (`--format sarif|junit|markdown|html`).
    pub fn writes_reports(&self) -> bool {
        matches!(
            self,
            PolicyCommand::Eval { .. } | PolicyCommand::Test { .. }
        )
    }
}

#[derive(Debug, Args)]
pub struct LimitArgs {
    /// Fuel (roughly: wasm instructions) per evaluation
    #[arg(long, value_name = "UNITS")]
    fuel: Option<u64>,
    /// Memory cap per evaluation, e.g. 256MiB
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    memory: Option<u64>,
    /// Wall-clock deadline per evaluation, e.g. 30s
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    timeout: Option<Duration>,
}

impl LimitArgs {
    fn limits(&self) -> Limits {
        let d = Limits::default();
        Limits {
            fuel: self.fuel.unwrap_or(d.fuel),
            memory_bytes: self.memory.unwrap_or(d.memory_bytes),
            timeout: self.timeout.unwrap_or(d.timeout),
            output_bytes: d.output_bytes,
        }
    }
}

fn parse_size(s: &str) -> Result<u64, String> {
    opsdeploy::units::parse_size(s)
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    opsdeploy::units::parse_duration(s)
}

pub fn run(ctx: &Context, cmd: PolicyCommand) -> CliResult {
    match cmd {
        PolicyCommand::New { name } => new(ctx, &name),
        PolicyCommand::Build { dir, out } => build_cmd(ctx, &dir, out.as_deref()),
        PolicyCommand::Test { dir, wasm, limits } => {
            test(ctx, &dir, wasm.as_deref(), &limits.limits())
        }
        PolicyCommand::Eval {
            policy,
            input,
            terraform_plan,
            env,
            settings,
            limits,
        } => eval(
            ctx,
            &policy,
            input.as_deref(),
            terraform_plan.as_deref(),
            &env,
            settings.as_deref(),
            &limits.limits(),
        ),
    }
}

fn new(ctx: &Context, name: &str) -> CliResult {
    let made = scaffold::new_policy(Path::new("."), name).map_err(|e| match e {
        ScaffoldError::InvalidName { .. } => {
            CliError::new(Exit::Usage, e.to_string()).hint("try a name like `cost-guard`")
        }
        ScaffoldError::Exists { ref path } => CliError::error(e.to_string())
            .at(path.display().to_string())
            .hint("choose another name or remove the directory"),
        ScaffoldError::Write { ref path, .. } => CliError::error(e.to_string())
            .at(path.display().to_string())
            .hint("run `opsdeploy policy new` in a directory you can write to"),
    })?;
    if ctx.quiet {
        println!("created {}", made.dir.display());
    } else {
        let sdk = if made.sdk_vendored {
            "vendored copy of policy-sdk in vendor/policy-sdk".to_string()
        } else {
            format!("policy-sdk at {}", made.sdk.display())
        };
        anstream::eprintln!("created policy crate {} ({sdk})", made.dir.display());
        anstream::eprintln!("next: opsdeploy policy test {name}");
    }
    Ok(Exit::Ok)
}

fn build_error(e: BuildError) -> CliError {
    match e {
        BuildError::MissingTarget => {
            CliError::error(e.to_string()).hint(build::missing_target_hint())
        }
        BuildError::NoCrates { ref dir } => CliError::error(e.to_string())
            .at(dir.display().to_string())
            .hint("create one with `opsdeploy policy new NAME`"),
        BuildError::NotAPolicy { ref manifest, .. } => CliError::error(e.to_string())
            .at(manifest.display().to_string())
            .hint("point at a crate made by `opsdeploy policy new NAME` (a cdylib depending on policy-sdk)"),
        BuildError::Cargo { .. } => CliError::error(e.to_string())
            .hint("fix the compile errors above, then run `opsdeploy policy build` again"),
        BuildError::Spawn { .. } => CliError::error(e.to_string())
            .hint("install Rust with rustup (https://rustup.rs) so `cargo` is on PATH"),
        BuildError::Metadata { ref manifest, .. } => CliError::error(e.to_string())
            .at(manifest.display().to_string())
            .hint("fix the Cargo.toml (`cargo metadata` shows the error), then build again"),
        BuildError::MissingArtifact { ref path } => CliError::error(e.to_string())
            .at(path.display().to_string())
            .hint("run `cargo clean` in the policy crate, then `opsdeploy policy build` again"),
    }
}

fn build_cmd(ctx: &Context, dir: &Path, out: Option<&Path>) -> CliResult {
    let crates = build::discover(dir).map_err(build_error)?;
    let built = build::build(&crates).map_err(build_error)?;
    let mut paths = Vec::new();
    for (krate, wasm) in crates.iter().zip(&built) {
        let path = match out {
            Some(out) => {
                let dest = out.join(wasm.file_name().expect("artifact has a file name"));
                std::fs::create_dir_all(out)
                    .and_then(|()| std::fs::copy(wasm, &dest).map(|_| ()))
                    .map_err(|e| {
                        CliError::error(format!("could not copy the built module: {e}"))
                            .at(dest.display().to_string())
                            .hint("pass a writable directory to --out")
                    })?;
                dest
            }
            None => wasm.clone(),
        };
        paths.push((krate.package.clone(), path));
    }
    match ctx.format {
        Format::Json => {
            let list: Vec<_> = paths
                .iter()
                .map(|(name, path)| serde_json::json!({"policy": name, "wasm": path}))
                .collect();
            println!("{}", serde_json::to_string_pretty(&list).expect("json"));
        }
        _ if ctx.quiet => println!("built {}", paths.len()),
        _ => {
            let mut table = report::table::Table::new(&["policy", "wasm"]).indent(0);
            for (name, path) in &paths {
                table.row([name.clone(), path.display().to_string()]);
            }
            anstream::print!("{}", table.render());
        }
    }
    Ok(Exit::Ok)
}

fn engine() -> CliResult<PolicyEngine> {
    PolicyEngine::with_default_cache().map_err(engine_error)
}

pub fn engine_error(e: EngineError) -> CliError {
    match &e {
        EngineError::Read { path, .. } => CliError::error(e.to_string())
            .at(path.display().to_string())
            .hint("check the path, or build the policy with `opsdeploy policy build`"),
        EngineError::InvalidModule { origin, .. } | EngineError::Compile { origin, .. } => {
            let at = origin.clone();
            CliError::error(e.to_string())
                .at(at)
                .hint("policies are core wasm modules implementing policy-sdk/ABI.md")
        }
        EngineError::ForbiddenImport { origin, .. } => {
            let at = origin.clone();
            CliError::error(e.to_string()).at(at).hint(
                "build for wasm32-unknown-unknown (not wasm32-wasip1) and import only opsdeploy.*",
            )
        }
        EngineError::AbiMismatch { origin, .. } => {
            let at = origin.clone();
            CliError::error(e.to_string())
                .at(at)
                .hint("rebuild the policy against a policy-sdk for ABI v1")
        }
        EngineError::InvalidSettings { .. } => {
            CliError::error(e.to_string()).hint("fix the settings to match the policy's schema")
        }
        EngineError::Engine(_) => CliError::error(e.to_string()).hint(
            "the host refused memory or a thread; free some, then run the command again with -v",
        ),
    }
}

fn fixture_error(e: FixtureError) -> CliError {
    match &e {
        FixtureError::Read { path, .. } => {
            let at = path.display().to_string();
            CliError::error(e.to_string()).at(at).hint(
                "check the fixture's path and permissions, then run `opsdeploy policy test` again",
            )
        }
        FixtureError::Invalid { path, .. } => {
            let at = path.display().to_string();
            CliError::error(e.to_string()).at(at).hint(
                "a fixture is {\"input\": {...}, \"expect\": [...]}; compare with the one `opsdeploy policy new` writes",
            )
        }
        FixtureError::Empty { dir } => {
            let at = dir.display().to_string();
            CliError::error(e.to_string())
                .at(at)
                .hint("add a fixture: an input document and the violations you expect")
        }
    }
}

fn test(ctx: &Context, dir: &Path, wasm: Option<&Path>, limits: &Limits) -> CliResult {
    let engine = engine()?;
    // (policy, fixtures directory)
    let mut suites: Vec<(Policy, PathBuf)> = Vec::new();
    match wasm {
        Some(wasm) => {
            let source = ModuleSource::read(wasm).map_err(engine_error)?;
            let policy = engine.load(&source).map_err(engine_error)?;
            let fixtures = if dir.join("fixtures").is_dir() {
                dir.join("fixtures")
            } else {
                dir.to_path_buf()
            };
            suites.push((policy, fixtures));
        }
        None => {
            let crates = build::discover(dir).map_err(build_error)?;
            let built = build::build(&crates).map_err(build_error)?;
            for (krate, wasm) in crates.iter().zip(built) {
                let source = ModuleSource::read(&wasm).map_err(engine_error)?;
                let policy = engine.load(&source).map_err(engine_error)?;
                suites.push((policy, krate.dir.join("fixtures")));
            }
        }
    }
    let mut results: Vec<(String, CaseResult)> = Vec::new();
    for (policy, fixtures_dir) in &suites {
        let files = fixtures::fixture_files(fixtures_dir).map_err(fixture_error)?;
        if !ctx.quiet {
            // Progress, on stderr: stdout carries the results table.
            anstream::eprintln!(
                "running {} fixture{} for {} ({})",
                files.len(),
                if files.len() == 1 { "" } else { "s" },
                policy.name,
                fixtures_dir.display()
            );
        }
        for file in files {
            let case =
                fixtures::run_fixture(&engine, policy, &file, limits).map_err(fixture_error)?;
            results.push((policy.name.clone(), case));
        }
    }
    let failed = results.iter().filter(|(_, c)| !c.passed()).count();
    match ctx.format {
        Format::Json => println!("{}", report::fixtures_json(&results)),
        Format::Human if ctx.quiet => println!("{}", if failed == 0 { "ok" } else { "failed" }),
        Format::Human => anstream::print!(
            "{}{}",
            report::fixtures_table(&results),
            report::fixtures_summary(&results)
        ),
        format => {
            let written = report::write(&report::Report::from_fixtures(&results), format);
            print!("{}", written.unwrap_or_default());
        }
    }
    if failed == 0 {
        return Ok(Exit::Ok);
    }
    if !ctx.quiet {
        super::error::print_hint(&format!(
            "fix the policy or the fixture's expected violations, then run `opsdeploy policy test {}` again",
            dir.display()
        ));
    }
    Ok(Exit::Error)
}

#[allow(clippy::too_many_arguments)]
fn eval(
    ctx: &Context,
    policy_arg: &str,
    input_file: Option<&Path>,
    terraform_plan: Option<&Path>,
    env: &str,
    settings: Option<&str>,
    limits: &Limits,
) -> CliResult {
    let engine = engine()?;
    let source = match policy_arg.strip_prefix("builtin:") {
        Some(name) => ModuleSource::builtin(name).ok_or_else(|| {
            CliError::new(Exit::Usage, format!("there is no built-in policy `{name}`")).hint(
                format!(
                    "built-in policies: {}",
                    BUILTIN_POLICIES
                        .iter()
                        .map(|(n, _)| format!("builtin:{n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?,
        None => ModuleSource::read(Path::new(policy_arg)).map_err(engine_error)?,
    };

    let doc = match (input_file, terraform_plan) {
        (Some(path), _) => InputDocument::from_file(path).map_err(|e| input_error(e, path))?,
        (None, Some(plan)) => {
            let plan_json = read_plan_file(plan).map_err(|e| {
                CliError::error(e.to_string())
                    .at(plan.display().to_string())
                    .hint("pass the output of `terraform show -json PLANFILE`")
            })?;
            let mut doc = InputDocument::new(&policy_sdk::input::Environment {
                name: env.into(),
                project: "local".into(),
                strategy: None,
                promote_from: None,
                plan_digest: None,
                rollback_runbook: None,
                now: Some(opsdeploy::store::now_rfc3339().into()),
            });
            doc.set_terraform(".", plan_json);
            doc
        }
        (None, None) => unreachable!("clap requires --input or --terraform-plan"),
    };

    let settings = match settings {
        Some(s) => Some(read_settings(s)?),
        None => None,
    };
    let evaluation = match engine.load(&source) {
        Ok(policy) => {
            if let Some(s) = &settings {
                let value: serde_json::Value =
                    serde_json::from_str(s.get()).expect("validated JSON");
                policy.check_settings(&value).map_err(engine_error)?;
            }
            let input = doc.parts(
                policy.reads.as_deref(),
                policy.plan_keys.as_deref(),
                settings.as_deref(),
            );
            engine.evaluate_parts(&policy, &input, limits)
        }
        // A defective module is a denial, like a policy that fails while running.
        Err(e) if e.is_policy_defect() => Evaluation::refused(&source, &e),
        Err(e) => return Err(engine_error(e)),
    };
    // What the policy said, without the values the plan marks sensitive.
    let redactor = report::Redactor::from_values(doc.sensitive_values());
    let evaluation = redactor.scrub_evaluation(&evaluation);
    match ctx.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&evaluation).expect("evaluation serializes")
        ),
        Format::Human if ctx.quiet => {
            println!(
                "{}",
                if evaluation.denies() {
                    "denied"
                } else {
                    "allowed"
                }
            )
        }
        Format::Human => anstream::print!("{}", report::evaluation_human(&evaluation)),
        format => {
            let r = report::Report::from_evaluation(&evaluation, &redactor);
            print!("{}", report::write(&r, format).unwrap_or_default());
        }
    }
    if !evaluation.denies() {
        return Ok(Exit::Ok);
    }
    if !ctx.quiet {
        super::error::print_hint(&format!(
            "change the input as the violations say (or the policy, if it is wrong), then run `{}` again",
            super::error::this_command()
        ));
    }
    Ok(Exit::BlockedByPolicy)
}

fn input_error(e: InputError, path: &Path) -> CliError {
    CliError::error(e.to_string())
        .at(path.display().to_string())
        .hint("an input document is a JSON object with schema_version 1 and an environment (see schema/input-document.schema.json)")
}

fn read_settings(arg: &str) -> CliResult<Box<RawValue>> {
    let (text, source) = match arg.strip_prefix('@') {
        Some(path) => (
            std::fs::read_to_string(path).map_err(|e| {
                CliError::error(format!("could not read settings file: {e}"))
                    .at(path.to_string())
                    .hint("pass an existing JSON file as --settings @FILE, or the JSON itself")
            })?,
            path.to_string(),
        ),
        None => (arg.to_string(), "--settings".to_string()),
    };
    serde_json::from_str::<Box<RawValue>>(&text).map_err(|e| {
        CliError::new(Exit::Usage, format!("settings are not valid JSON: {e}"))
            .at(source)
            .hint("pass a JSON object, e.g. --settings '{\"types\": [\"aws_db_instance\"]}'")
    })
}
