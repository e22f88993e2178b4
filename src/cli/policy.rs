//! `opsdeploy policy new | build | test | eval`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand};
use opsdeploy::authoring::eval::{self, EvalInput, EvalRequest};
use opsdeploy::authoring::{AuthoringError, build, scaffold, testing};
use opsdeploy::engine::{Limits, PolicyEngine};
use opsdeploy::error::Outcome;
use opsdeploy::report;

use super::{CliResult, Context, Format};

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
        Limits::default().overridden(self.fuel, self.memory, self.timeout)
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
        PolicyCommand::Test { dir, wasm, limits } => test(
            ctx,
            &testing::TestRequest {
                dir: &dir,
                wasm: wasm.as_deref(),
                limits: limits.limits(),
            },
        ),
        PolicyCommand::Eval {
            policy,
            input,
            terraform_plan,
            env,
            settings,
            limits,
        } => {
            let input = match (&input, &terraform_plan) {
                (Some(path), _) => EvalInput::Document(path),
                (None, Some(plan)) => EvalInput::TerraformPlan {
                    plan,
                    environment: &env,
                },
                (None, None) => unreachable!("clap requires --input or --terraform-plan"),
            };
            let req = EvalRequest {
                policy: &policy,
                input,
                settings: settings.as_deref(),
                limits: limits.limits(),
            };
            eval(ctx, &req)
        }
    }
}

fn new(ctx: &Context, name: &str) -> CliResult {
    let made = scaffold::new_policy(Path::new("."), name)?;
    if ctx.format == Format::Json {
        println!("{}", report::json(&made));
    } else if ctx.quiet {
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
    Ok(Outcome::Done)
}

fn build_cmd(ctx: &Context, dir: &Path, out: Option<&Path>) -> CliResult {
    let built = build::build_into(dir, out).map_err(AuthoringError::from)?;
    match ctx.format {
        Format::Json => println!("{}", report::json_list(&built)),
        _ if ctx.quiet => println!("built {}", built.len()),
        _ => {
            let mut table = report::table::Table::new(&["policy", "wasm"]).indent(0);
            for b in &built {
                table.row([b.policy.clone(), b.wasm.display().to_string()]);
            }
            anstream::print!("{}", table.render());
        }
    }
    Ok(Outcome::Done)
}

fn engine() -> CliResult<PolicyEngine> {
    Ok(PolicyEngine::with_default_cache().map_err(AuthoringError::from)?)
}

fn test(ctx: &Context, req: &testing::TestRequest) -> CliResult {
    let run = testing::run(&engine()?, req, |suite, files| {
        if !ctx.quiet {
            // Progress, on stderr: stdout carries the results table.
            anstream::eprintln!(
                "running {files} fixture{} for {} ({})",
                if files == 1 { "" } else { "s" },
                suite.policy.name,
                suite.fixtures.display()
            );
        }
    })?;
    let failed = run.failed();
    match ctx.format {
        Format::Json => println!("{}", report::json(&run.output())),
        Format::Human if ctx.quiet => println!("{}", if failed == 0 { "ok" } else { "failed" }),
        Format::Human => anstream::print!("{}{}", run.table(), run.summary()),
        format => print!(
            "{}",
            report::write(&run.report(), format).unwrap_or_default()
        ),
    }
    Ok(if failed == 0 {
        Outcome::Done
    } else {
        Outcome::FixturesFailed {
            dir: req.dir.to_path_buf(),
        }
    })
}

fn eval(ctx: &Context, req: &EvalRequest) -> CliResult {
    let evaluated = eval::eval(&engine()?, req)?;
    let evaluation = &evaluated.evaluation;
    match ctx.format {
        Format::Json => println!("{}", report::json(evaluation)),
        Format::Human if ctx.quiet => println!(
            "{}",
            if evaluation.denies() {
                "denied"
            } else {
                "allowed"
            }
        ),
        Format::Human => anstream::print!("{}", report::evaluation_human(evaluation)),
        format => print!(
            "{}",
            report::write(&evaluated.report(), format).unwrap_or_default()
        ),
    }
    Ok(if evaluation.denies() {
        Outcome::Denied
    } else {
        Outcome::Done
    })
}
