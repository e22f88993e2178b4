//! The command line: arguments (each flag defined once: global ones here,
//! shared ones in `args.rs`), logging and colour set-up, one library call
//! per command, and the exit code of its result (`opsdeploy::error::exit`).

mod apply;
mod approve;
mod args;
mod audit;
mod completions;
mod drift;
mod error;
mod init;
mod plan;
mod policy;
mod project;
mod promote;
mod report;
mod rollback;
mod scan;
mod state;
mod status;

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
pub use error::CliResult;
use opsdeploy::error::{Error, Exit};
pub use opsdeploy::report::Format;

const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (policy ABI v1, input schema v1, wasmtime 48)"
);

const EXAMPLES: &str = "Examples:
  opsdeploy init shop --template quickstart && cd shop
  opsdeploy plan staging
  opsdeploy approve staging --comment \"reviewed\"
  opsdeploy apply staging --yes
  opsdeploy report 3f9a1c --format sarif -o opsdeploy.sarif

Each command's --help has an example of its own.";

#[derive(Debug, Parser)]
#[command(
    name = "opsdeploy",
    version = LONG_VERSION,
    after_help = EXAMPLES,
    about = "Deployment gate: terraform, helm and trivy behind sandboxed WebAssembly policies",
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Run as if started in DIR (like `git -C`)
    #[arg(short = 'C', global = true, value_name = "DIR")]
    directory: Option<PathBuf>,

    /// Output format of the result on stdout (sarif, junit, markdown and html
    /// for reports: plan, promote, report, scan, policy eval, policy test, policy replay)
    #[arg(long, global = true, value_enum, default_value_t = Format::Human)]
    format: Format,

    /// More detail on stderr (-v debug, -vv trace)
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    verbose: u8,

    /// Print only the verdict
    #[arg(short, long, global = true)]
    quiet: bool,

    /// Never colour the output (also: NO_COLOR=1)
    #[arg(long, global = true)]
    no_color: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a project from a template (quickstart runs fully offline)
    Init(init::InitArgs),
    /// Plan a deployment: run the tools, evaluate policies, write a plan bundle
    Plan(plan::PlanArgs),
    /// Approve a plan (or override a soft-mandatory policy for it)
    Approve(approve::ApproveArgs),
    /// Apply an approved plan: migrations, terraform, helm, health checks
    Apply(apply::ApplyArgs),
    /// Plan an environment with exactly what runs, healthy, on the one it promotes from
    Promote(promote::PromoteArgs),
    /// Put the previous successful deployment back (helm releases; terraform is reported)
    Rollback(rollback::RollbackArgs),
    /// What is deployed where, pending plans, locks, interrupted applies
    Status(status::StatusArgs),
    /// Has the environment changed outside opsdeploy? (exit 2 when drifted)
    Drift(drift::DriftArgs),
    /// Scan images (or an environment's scan block) with trivy and judge them by policy
    Scan(scan::ScanArgs),
    /// Render a stored plan bundle as a report (sarif, junit, markdown, html, json)
    Report(report::ReportArgs),
    /// Check or print the tamper-evident audit log
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Move the store to another backend (file to PostgreSQL)
    #[command(subcommand)]
    State(state::StateCommand),
    /// Write, build, test and evaluate policies
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Print shell completions
    #[command(
        after_help = "Example:\n  opsdeploy completions bash > /etc/bash_completion.d/opsdeploy"
    )]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// What every command may consult. A command that writes no report sees
/// only `human` or `json`: [`run`] refuses the report formats for it.
pub struct Context {
    pub format: Format,
    pub quiet: bool,
}

pub fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            let exit = if e.use_stderr() {
                Exit::Usage
            } else {
                Exit::Ok
            };
            return exit.code().into();
        }
    };
    let no_color = cli.no_color || std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    if no_color {
        anstream::ColorChoice::Never.write_global();
    }
    init_tracing(cli.verbose, no_color);
    use opsdeploy::adapters::progress;
    progress::set_mode(if cli.quiet {
        progress::Mode::Off
    } else if std::io::stderr().is_terminal() {
        progress::Mode::Spinner
    } else {
        progress::Mode::Lines
    });
    let (quiet, verbose) = (cli.quiet, cli.verbose > 0);
    let result = run(cli);
    match &result {
        Err(e) => anstream::eprint!("{}", error::render(e, verbose)),
        Ok(outcome) if !quiet => {
            if let Some(hint) = outcome.hint() {
                error::print_hint(&hint);
            }
        }
        Ok(_) => {}
    }
    opsdeploy::error::exit(&result).code().into()
}

fn init_tracing(verbose: u8, no_color: bool) {
    // Other crates stay at warn at every verbosity: an HTTP or database
    // client's debug log carries URLs, headers and query parameters.
    let level = match verbose {
        0 => "warn",
        1 => "opsdeploy=debug,warn",
        _ => "opsdeploy=trace,warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("OPSDEPLOY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && !no_color)
        .with_target(false)
        .without_time()
        .init();
}

impl Command {
    /// Whether the command writes `format` (the report formats are not for all).
    fn writes(&self, format: Format) -> bool {
        match self {
            Command::Plan(_) | Command::Promote(_) | Command::Report(_) | Command::Scan(_) => true,
            Command::Policy(cmd) => cmd.writes_reports(),
            Command::Audit(cmd) => format == Format::Markdown && cmd.is_log(),
            _ => false,
        }
    }
}

fn run(cli: Cli) -> CliResult {
    if let Some(dir) = &cli.directory {
        std::env::set_current_dir(dir).map_err(|source| Error::Directory {
            dir: dir.clone(),
            source,
        })?;
    }
    if cli.format.is_report_only() && !cli.command.writes(cli.format) {
        return Err(Error::ReportOnlyFormat {
            format: cli.format.as_str(),
        });
    }
    let ctx = Context {
        format: cli.format,
        quiet: cli.quiet,
    };
    match cli.command {
        Command::Init(args) => init::run(&ctx, &args),
        Command::Plan(args) => plan::run(&ctx, &args),
        Command::Approve(args) => approve::run(&ctx, &args),
        Command::Apply(args) => apply::run(&ctx, &args),
        Command::Promote(args) => promote::run(&ctx, &args),
        Command::Rollback(args) => rollback::run(&ctx, &args),
        Command::Status(args) => status::run(&ctx, &args),
        Command::Drift(args) => drift::run(&ctx, &args),
        Command::Scan(args) => scan::run(&ctx, &args),
        Command::Report(args) => report::run(&ctx, &args),
        Command::Audit(cmd) => audit::run(&ctx, &cmd),
        Command::State(cmd) => state::run(&ctx, &cmd),
        Command::Policy(cmd) => policy::run(&ctx, cmd),
        Command::Completions { shell } => completions::run(shell),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn every_command_has_an_example_in_its_help() {
        fn check(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", cmd.get_name());
            let leaves: Vec<_> = cmd
                .get_subcommands()
                .filter(|c| c.get_name() != "help")
                .collect();
            if leaves.is_empty() {
                let help = cmd
                    .get_after_help()
                    .map(|h| h.to_string())
                    .unwrap_or_default();
                if !help.contains("Example") {
                    missing.push(path);
                }
                return;
            }
            for sub in leaves {
                check(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        check(&super::Cli::command(), "", &mut missing);
        assert!(missing.is_empty(), "no example in --help: {missing:?}");
    }

    #[test]
    fn the_readme_command_table_lists_every_subcommand() {
        let readme = include_str!("../../README.md");
        let table = readme
            .split("## Commands")
            .nth(1)
            .and_then(|rest| rest.split("\n\n").find(|p| p.starts_with("| command")))
            .expect("README.md has a command table under \"## Commands\"");
        let listed: std::collections::BTreeSet<&str> = table
            .lines()
            .filter_map(|row| row.split('|').nth(1))
            .flat_map(|cell| cell.split("`opsdeploy ").skip(1))
            .filter_map(|after| after.split([' ', '`', '\\']).next())
            .collect();
        let known: std::collections::BTreeSet<String> = super::Cli::command()
            .get_subcommands()
            .map(|c| c.get_name().to_string())
            .filter(|n| n != "help")
            .collect();
        let known: std::collections::BTreeSet<&str> = known.iter().map(String::as_str).collect();
        assert_eq!(
            listed, known,
            "README.md's command table and the CLI differ"
        );
    }

    #[test]
    fn the_version_names_the_policy_abi_and_input_schema_it_speaks() {
        let v = super::LONG_VERSION;
        assert!(v.starts_with(env!("CARGO_PKG_VERSION")), "{v}");
        assert!(
            v.contains(&format!("policy ABI v{}", policy_sdk::ABI_VERSION)),
            "{v}"
        );
        assert!(
            v.contains(&format!(
                "input schema v{}",
                policy_sdk::input::SCHEMA_VERSION
            )),
            "{v}"
        );
    }
}
