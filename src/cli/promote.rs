//! `opsdeploy promote FROM TO`.

use clap::Args;
use opsdeploy::error::Outcome;
use opsdeploy::report;
use opsdeploy::workflow::{promote, short};

use super::{CliResult, Context, project};

#[derive(Debug, Args)]
#[command(after_help = "Example:\n  opsdeploy promote staging production")]
pub struct PromoteArgs {
    /// The environment whose healthy deployment is promoted
    pub from: String,
    /// The environment to plan it for
    pub to: String,
}

pub fn run(ctx: &Context, args: &PromoteArgs) -> CliResult {
    let project = project::open()?;
    let promoted = promote::promote(&project, &args.from, &args.to)?;
    let planned = &promoted.planned;
    let promoting = format!(
        "promoting {} ({}) to {}",
        args.from,
        short(&promoted.from_digest),
        args.to
    );
    let json = || report::json(&promoted.output());
    super::plan::print_planned(ctx, &project, planned, json, Some(promoting))?;
    if let Some(refusal) = planned.refusal() {
        return Err(refusal.into());
    }
    if !ctx.quiet {
        anstream::eprintln!(
            "next: opsdeploy approve {} --plan {}",
            args.to,
            short(&planned.bundle.digest)
        );
    }
    Ok(Outcome::Done)
}
