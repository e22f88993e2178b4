//! `opsdeploy rollback ENV`.

use clap::Args;
use opsdeploy::error::Outcome;
use opsdeploy::report::table::{Cell, Table, verdict};
use opsdeploy::workflow::{rollback, short};

use super::args::EnvArg;
use super::{CliResult, Context, Format, project};

#[derive(Debug, Args)]
#[command(after_help = "Example:\n  opsdeploy rollback production")]
pub struct RollbackArgs {
    #[command(flatten)]
    pub env: EnvArg,
}

pub fn run(ctx: &Context, args: &RollbackArgs) -> CliResult {
    let project = project::open()?;
    let r = rollback::rollback(&project, &args.env.environment)?;
    match ctx.format {
        Format::Json => println!("{}", opsdeploy::report::json(&r)),
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
            for s in &r.steps {
                table.row([
                    verdict(if s.ok { "ok" } else { "FAIL" }),
                    Cell::from(&s.step),
                ]);
            }
            anstream::print!("{}", table.render());
            for n in &r.not_rolled_back {
                println!("note: {n}");
            }
        }
    }
    if let Some(incomplete) = r.failure_error() {
        return Err(incomplete.into());
    }
    if ctx.format == Format::Human && !ctx.quiet {
        println!(
            "rolled back {} from {} to {}",
            r.environment,
            short(&r.from),
            short(&r.restored)
        );
        anstream::eprintln!(
            "next: fix what the failed deploy broke, then `opsdeploy plan {}`",
            r.environment
        );
    }
    Ok(Outcome::Done)
}
