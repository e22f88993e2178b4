//! `opsdeploy rollback ENV`.

use clap::Args;
use opsdeploy::report::table::{Cell, Table, verdict};
use opsdeploy::workflow::{rollback, short};

use super::{CliError, CliResult, Context, Exit, Format, project};

#[derive(Debug, Args)]
#[command(after_help = "Example:\n  opsdeploy rollback production")]
pub struct RollbackArgs {
    /// Environment, as named in opsdeploy.hcl
    pub environment: String,
}

pub fn run(ctx: &Context, args: &RollbackArgs) -> CliResult {
    let project = project::open()?;
    let r = rollback::rollback(&project, &args.environment)?;
    match ctx.format {
        Format::Json => println!(
            "{}",
            serde_json::json!({
                "environment": args.environment,
                "from": r.from,
                "restored": r.restored,
                "ok": r.ok,
                "steps": r.steps.iter().map(|(s, ok)| serde_json::json!({"step": s, "ok": ok})).collect::<Vec<_>>(),
                "not_rolled_back": r.not_rolled_back,
            })
        ),
        _ if ctx.quiet => println!(
            "{} {}",
            if r.ok {
                "rolled-back"
            } else {
                "rollback-failed"
            },
            short(&r.restored)
        ),
        _ => {
            let mut table = Table::new(&["result", "step"]);
            for (s, ok) in &r.steps {
                table.row([verdict(if *ok { "ok" } else { "FAIL" }), Cell::from(s)]);
            }
            anstream::print!("{}", table.render());
            for n in &r.not_rolled_back {
                println!("note: {}", opsdeploy::escape::terminal(n));
            }
        }
    }
    if r.ok {
        if ctx.format == Format::Human && !ctx.quiet {
            println!(
                "rolled back {} from {} to {}",
                args.environment,
                short(&r.from),
                short(&r.restored)
            );
            anstream::eprintln!(
                "next: fix what the failed deploy broke, then `opsdeploy plan {}`",
                args.environment
            );
        }
        Ok(Exit::Ok)
    } else {
        Err(CliError::new(
            Exit::RollbackFailed,
            format!(
                "rollback of {} did not complete: manual action needed",
                args.environment
            ),
        )
        .hint("follow the rollback runbook; `opsdeploy status` shows what is recorded as deployed"))
    }
}
