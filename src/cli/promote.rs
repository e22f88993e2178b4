//! `opsdeploy promote FROM TO`.

use clap::Args;
use opsdeploy::report;
use opsdeploy::workflow::{promote, short};

use super::{CliResult, Context, Exit, Format, project};

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
    match ctx.format {
        Format::Json => println!(
            "{}",
            serde_json::json!({
                "digest": planned.bundle.digest,
                "from": args.from,
                "from_digest": promoted.from_digest,
                "environment": args.to,
                "decisions": planned.results.decisions,
                "policy_changes": planned.policy_changes,
            })
        ),
        Format::Human if ctx.quiet => println!(
            "{} {}",
            if planned.blocked() {
                "blocked"
            } else {
                "planned"
            },
            short(&planned.bundle.digest)
        ),
        Format::Human => {
            println!(
                "promoting {} ({}) to {}",
                args.from,
                short(&promoted.from_digest),
                args.to
            );
            anstream::print!(
                "{}{}",
                report::plan_human(
                    &planned.bundle.digest,
                    &planned.bundle.manifest,
                    &planned.results.decisions,
                    &planned.incidents
                ),
                report::rollout::policy_changes(&planned.policy_changes)
            );
        }
        format => print!(
            "{}",
            super::report::planned_report(&project, &planned.bundle, format)?
        ),
    }
    if planned.blocked() {
        return Err(super::plan::blocked_error(&args.to, planned));
    }
    if !ctx.quiet {
        anstream::eprintln!(
            "next: opsdeploy approve {} --plan {}",
            args.to,
            short(&planned.bundle.digest)
        );
    }
    Ok(Exit::Ok)
}
