//! `opsdeploy policy new | build | test | eval | replay`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand};
use opsdeploy::authoring::eval::{self, EvalInput, EvalRequest};
use opsdeploy::authoring::project::{self, Language};
use opsdeploy::authoring::{AuthoringError, scaffold_lang, testing};
use opsdeploy::engine::{Limits, PolicyEngine};
use opsdeploy::error::Outcome;
use opsdeploy::report;

use super::{CliResult, Context, Format};

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Create a policy NAME with a passing fixture
    #[command(
        after_help = "Examples:\n  opsdeploy policy new cost-guard && opsdeploy policy test cost-guard\n  opsdeploy policy new replica-floor --lang zig"
    )]
    New {
        /// Policy name (lowercase letters, digits, `-`, `_`)
        name: String,
        /// The language to write it in
        #[arg(long, value_name = "LANG", default_value = "rust", value_parser = clap::builder::PossibleValuesParser::new(Language::NAMES))]
        lang: String,
    },
    /// Compile policies (Rust, C, Zig, AssemblyScript) to wasm32 modules
    #[command(after_help = "Example:\n  opsdeploy policy build policies/ --out build/policies")]
    Build {
        /// A policy directory, or a directory of them
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Copy the built modules into this directory
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Build policies and run their fixtures (fixtures/*.json) and Rego tests
    #[command(
        after_help = "Example:\n  opsdeploy policy test policies/\n  opsdeploy policy test fixtures/ --wasm my_policy.wasm"
    )]
    Test {
        /// A policy directory, a directory of them, or (with --wasm) a fixtures directory
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
        after_help = "Examples:\n  opsdeploy policy eval builtin:protected-deletes --terraform-plan plan.json\n  opsdeploy policy eval deny.rego --terraform-plan plan.json\n  opsdeploy policy eval cost_guard.wasm --input input.json --settings '{\"max\": 100}'"
    )]
    Eval {
        /// A .wasm module, a .rego file, or builtin:NAME for a built-in policy
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
    /// What a policy would have said about every stored plan: verdict then and now
    #[command(
        after_help = "Examples:\n  opsdeploy policy replay builtin:protected-deletes --settings '{\"addresses\": [\"aws_db_instance.*\"]}'\n  opsdeploy policy replay policies/cost_guard.wasm --env production --since 30d --format markdown > replay.md\n  opsdeploy policy replay --config --last 50 --fail-on-change"
    )]
    Replay(ReplayArgs),
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// A .wasm module, or builtin:NAME for a built-in policy
    #[arg(required_unless_present = "config", conflicts_with = "config")]
    policy: Option<String>,
    /// Replay the project's current opsdeploy.hcl as a whole instead
    #[arg(long)]
    config: bool,
    /// Only plans of this environment
    #[arg(long, value_name = "ENV")]
    env: Option<String>,
    /// Only plans made since DATE (2026-11-24, 2026-11-24T20:15:03Z) or DURATION ago (30d, 12h)
    #[arg(long, value_name = "DATE|DURATION")]
    since: Option<String>,
    /// Only the newest N plans (of those --env and --since select)
    #[arg(long, value_name = "N")]
    last: Option<usize>,
    /// The policy's settings: JSON text or @FILE (default: as opsdeploy.hcl configures it)
    #[arg(long, value_name = "JSON|@FILE", conflicts_with = "config")]
    settings: Option<String>,
    /// Exit 3 when any plan's verdict would change
    #[arg(long)]
    fail_on_change: bool,
}

impl PolicyCommand {
    /// `eval`, `test` and `replay` write reports (`--format sarif|junit|markdown|html`).
    pub fn writes_reports(&self) -> bool {
        matches!(
            self,
            PolicyCommand::Eval { .. } | PolicyCommand::Test { .. } | PolicyCommand::Replay(_)
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
    fn limits(&self) -> CliResult<Limits> {
        Limits::check(self.fuel, self.memory, self.timeout)
            .map_err(|(flag, reason)| opsdeploy::error::Error::Limit { flag, reason })?;
        Ok(Limits::default().overridden(self.fuel, self.memory, self.timeout))
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
        PolicyCommand::New { name, lang } => new(ctx, &name, &lang),
        PolicyCommand::Build { dir, out } => build_cmd(ctx, &dir, out.as_deref()),
        PolicyCommand::Test { dir, wasm, limits } => test(
            ctx,
            &testing::TestRequest {
                dir: &dir,
                wasm: wasm.as_deref(),
                limits: limits.limits()?,
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
                limits: limits.limits()?,
            };
            eval(ctx, &req)
        }
        PolicyCommand::Replay(args) => replay(ctx, &args),
    }
}

fn replay(ctx: &Context, args: &ReplayArgs) -> CliResult {
    use opsdeploy::workflow::replay::{self, Selection, Subject};
    let since = args
        .since
        .as_deref()
        .map(replay::since)
        .transpose()
        .map_err(opsdeploy::workflow::WorkflowError::from)?;
    let subject = match &args.policy {
        Some(policy) => Subject::Policy {
            policy: policy.clone(),
            settings: args
                .settings
                .as_deref()
                .map(eval::read_settings)
                .transpose()?
                .map(|raw| serde_json::from_str(raw.get()).expect("settings were read as JSON")),
        },
        None => Subject::Config,
    };
    let project = super::project::open()?;
    let selection = Selection {
        environment: args.env.clone(),
        since,
        last: args.last,
    };
    let replayed = replay::replay(&project, &subject, &selection)?;
    match ctx.format {
        Format::Human if ctx.quiet => println!("{}", report::replay::summary_line(&replayed)),
        Format::Human => anstream::print!("{}", report::replay::write(&replayed, ctx.format)),
        format => print!("{}", report::replay::write(&replayed, format)),
    }
    Ok(if args.fail_on_change && replayed.verdicts_changed() {
        Outcome::VerdictsChanged
    } else {
        Outcome::Done
    })
}

fn new(ctx: &Context, name: &str, lang: &str) -> CliResult {
    let lang = Language::parse(lang).expect("clap checked the language");
    let made = scaffold_lang::new_policy_in(Path::new("."), name, lang)?;
    if ctx.format == Format::Json {
        println!("{}", report::json(&made));
    } else if ctx.quiet {
        println!("created {}", made.dir.display());
    } else if lang != Language::Rust {
        anstream::eprintln!("created {} policy {}", lang.as_str(), made.dir.display());
        anstream::eprintln!("next: opsdeploy policy test {name}");
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
    let built = project::build_into(dir, out).map_err(AuthoringError::from)?;
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
