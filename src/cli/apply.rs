//! `opsdeploy apply ENV [--plan DIGEST] [--yes]`.

use std::io::{BufRead, IsTerminal, Write};

use clap::Args;
use opsdeploy::report::table::{Cell, Table, verdict};
use opsdeploy::workflow::apply::{self, ApplyRequest};
use opsdeploy::workflow::history::ApplyStatus;
use opsdeploy::workflow::short;

use super::{CliError, CliResult, Context, Exit, Format, project};

#[derive(Debug, Args)]
#[command(after_help = "Example:\n  opsdeploy apply staging --plan 3f9a1c2b4d5e --yes")]
pub struct ApplyArgs {
    /// Environment, as named in opsdeploy.hcl
    pub environment: String,
    /// Plan digest (or a unique prefix); default: the environment's latest plan
    #[arg(long, value_name = "DIGEST")]
    pub plan: Option<String>,
    /// Do not ask for confirmation (required when stdin is not a terminal)
    #[arg(long, short = 'y')]
    pub yes: bool,
}

pub fn run(ctx: &Context, args: &ApplyArgs) -> CliResult {
    let project = project::open()?;
    let yes = args.yes;
    let env = args.environment.clone();
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
            opsdeploy::workflow::plan::summary_line(&bundle.manifest.summary)
        );
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        matches!(answer.trim(), "y" | "Y" | "yes")
    };
    let applied = apply::apply(
        &project,
        &ApplyRequest {
            environment: &args.environment,
            digest: args.plan.as_deref(),
            confirm: &confirm,
        },
    )?;
    match ctx.format {
        Format::Json => println!(
            "{}",
            serde_json::json!({
                "digest": applied.digest,
                "environment": args.environment,
                "status": applied.status,
                "steps": applied.steps.iter().map(|s| serde_json::json!({"step": s.step, "ok": s.ok, "detail": s.detail})).collect::<Vec<_>>(),
                "failure": applied.failure,
                "rollback": applied.rollback.iter().map(|s| serde_json::json!({"step": s.step, "ok": s.ok, "detail": s.detail})).collect::<Vec<_>>(),
                "not_rolled_back": applied.not_rolled_back,
            })
        ),
        _ if ctx.quiet => println!(
            "{} {}",
            match applied.status {
                ApplyStatus::Succeeded => "applied",
                ApplyStatus::RolledBack | ApplyStatus::Failed => "rolled-back",
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
            for s in &applied.rollback {
                table.row([
                    verdict(if s.ok { "ok" } else { "FAIL" }),
                    Cell::from(format!("rollback {}", s.step)),
                    Cell::from(&s.detail),
                ]);
            }
            anstream::print!("{}", table.render());
            for n in &applied.not_rolled_back {
                println!("note: {}", opsdeploy::escape::terminal(n));
            }
        }
    }
    let env = &args.environment;
    match applied.status {
        ApplyStatus::Succeeded => {
            if ctx.format == Format::Human && !ctx.quiet {
                println!("applied plan {} to {env}", short(&applied.digest));
                anstream::eprintln!("next: {}", after_apply(&project, env));
            }
            Ok(Exit::Ok)
        }
        ApplyStatus::RolledBack | ApplyStatus::Failed => Err(CliError::new(
            Exit::RolledBack,
            format!(
                "deploy of plan {} to {env} failed and was rolled back",
                short(&applied.digest)
            ),
        )
        .hint(format!(
            "fix the cause (recorded in the continuity file), then `opsdeploy plan {env}`"
        ))
        .at_opt(applied.failure)),
        ApplyStatus::RollbackFailed => Err(CliError::new(
            Exit::RollbackFailed,
            format!(
                "deploy of plan {} to {env} failed and the rollback failed too: manual action needed",
                short(&applied.digest)
            ),
        )
        .hint("follow the rollback runbook; `opsdeploy status` shows what is deployed")
        .at_opt(applied.failure)),
    }
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
