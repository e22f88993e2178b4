//! `opsdeploy apply ENV [--plan DIGEST] [--yes]`.

use std::io::{BufRead, IsTerminal, Write};

use clap::Args;
use opsdeploy::error::Outcome;
use opsdeploy::report::table::{Cell, Table, verdict};
use opsdeploy::store::records::ApplyStatus;
use opsdeploy::workflow::apply::{self, ApplyRequest};
use opsdeploy::workflow::short;

use super::args::{EnvArg, PlanArg};
use super::{CliResult, Context, Format, project};

#[derive(Debug, Args)]
#[command(after_help = "Example:\n  opsdeploy apply staging --plan 3f9a1c2b4d5e --yes")]
pub struct ApplyArgs {
    #[command(flatten)]
    pub env: EnvArg,
    #[command(flatten)]
    pub plan: PlanArg,
    /// Do not ask for confirmation (required when stdin is not a terminal)
    #[arg(long, short = 'y')]
    pub yes: bool,
}

pub fn run(ctx: &Context, args: &ApplyArgs) -> CliResult {
    let project = project::open()?;
    let yes = args.yes;
    let env = args.env.environment.clone();
    let confirm = move |bundle: &opsdeploy::store::bundle::Bundle| -> bool {
        if yes {
            return true;
        }
        if !std::io::stdin().is_terminal() {
            anstream::eprintln!(
                "stdin is not a terminal: pass --yes to apply without confirmation"
            );
            return false;
        }
        anstream::eprint!(
            "apply plan {} to {env} ({})? [y/N] ",
            short(&bundle.digest),
            bundle.manifest.summary
        );
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        matches!(answer.trim(), "y" | "Y" | "yes")
    };
    let applied = apply::apply(
        &project,
        &ApplyRequest {
            environment: &args.env.environment,
            digest: args.plan.plan.as_deref(),
            confirm: &confirm,
        },
    )?;
    match ctx.format {
        Format::Json => println!("{}", opsdeploy::report::json(&applied)),
        _ if ctx.quiet => println!(
            "{} {}",
            match applied.status {
                ApplyStatus::Succeeded => "applied",
                ApplyStatus::Failed => "failed",
                ApplyStatus::RolledBack => "rolled-back",
                ApplyStatus::RollbackFailed => "rollback-failed",
            },
            short(&applied.digest)
        ),
        _ => {
            let mut table = Table::new(&["result", "step", "detail"]);
            for s in &applied.steps {
                table.row([
                    verdict(if s.ok { "ok" } else { "FAIL" }),
                    Cell::from(&s.step),
                    Cell::from(&s.detail),
                ]);
            }
            for s in &applied.undone.steps {
                table.row([
                    verdict(if s.ok { "ok" } else { "FAIL" }),
                    Cell::from(format!("rollback {}", s.step)),
                    Cell::from(&s.detail),
                ]);
            }
            anstream::print!("{}", table.render());
            let u = &applied.undone;
            for line in &u.undone {
                println!("undone: {}", opsdeploy::escape::terminal(line));
            }
            for line in &u.kept {
                println!("kept: {}", opsdeploy::escape::terminal(line));
            }
            for line in &u.not_undone {
                println!("NOT undone: {}", opsdeploy::escape::terminal(line));
            }
            if let Some(h) = u.health {
                println!(
                    "after the rollback, {} is {}",
                    args.env.environment,
                    h.as_str()
                );
            }
        }
    }
    if let Some(failed) = applied.failure_error() {
        return Err(failed.into());
    }
    let env = &args.env.environment;
    if ctx.format == Format::Human && !ctx.quiet {
        println!("applied plan {} to {env}", short(&applied.digest));
        anstream::eprintln!("next: {}", after_apply(&project, env));
    }
    Ok(Outcome::Done)
}

/// What follows a successful apply: promoting to the environment that
/// promotes from this one, else checking on it.
fn after_apply(project: &opsdeploy::workflow::Project, env: &str) -> String {
    project
        .config
        .environments
        .iter()
        .find(|e| e.promote_from.as_deref() == Some(env))
        .map(|next| format!("opsdeploy promote {env} {}", next.name))
        .unwrap_or_else(|| format!("opsdeploy status {env}"))
}
