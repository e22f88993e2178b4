//! `opsdeploy rollback ENV`.

use clap::Args;
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
        _ if !ctx.quiet => {
            for (s, ok) in &r.steps {
                println!("  {:<4} {s}", if *ok { "ok" } else { "FAIL" });
            }
            for n in &r.not_rolled_back {
                println!("  note {n}");
            }
        }
        _ => {}
    }
    if r.ok {
        if ctx.format == Format::Human {
            println!(
                "rolled back {} from {} to {}",
                args.environment,
                short(&r.from),
                short(&r.restored)
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
