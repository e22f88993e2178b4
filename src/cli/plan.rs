//! `opsdeploy plan ENV`.

use clap::Args;
use opsdeploy::error::Outcome;
use opsdeploy::report;
use opsdeploy::workflow::{plan, short};

use super::args::EnvArg;
use super::{CliResult, Context, Format, project};

#[derive(Debug, Args)]
#[command(after_help = "Example:\n  opsdeploy plan staging")]
pub struct PlanArgs {
    #[command(flatten)]
    pub env: EnvArg,
}

pub fn run(ctx: &Context, args: &PlanArgs) -> CliResult {
    let project = project::open()?;
    let planned = plan::plan(&project, &args.env.environment)?;
    let json = || report::json(&planned.output());
    print_planned(ctx, &project, &planned, json, None)?;
    if let Some(refusal) = planned.refusal() {
        return Err(refusal.into());
    }
    if !ctx.quiet {
        anstream::eprintln!(
            "next: opsdeploy approve {} --plan {}",
            args.env.environment,
            short(&planned.bundle.digest)
        );
    }
    Ok(Outcome::Done)
}

/// A fresh plan (of `plan`, or of `promote` with its `promoting` line) in
/// the format asked for; `json` writes the command's own JSON.
pub fn print_planned(
    ctx: &Context,
    project: &opsdeploy::workflow::Project,
    planned: &plan::Planned,
    json: impl FnOnce() -> String,
    promoting: Option<String>,
) -> CliResult<()> {
    let digest = &planned.bundle.digest;
    match ctx.format {
        Format::Json => println!("{}", json()),
        Format::Human if ctx.quiet => println!(
            "{} {}",
            if planned.blocked() {
                "blocked"
            } else {
                "planned"
            },
            short(digest)
        ),
        Format::Human => {
            if let Some(line) = promoting {
                println!("{line}");
            }
            anstream::print!(
                "{}{}",
                report::plan_human(
                    digest,
                    &planned.bundle.manifest,
                    &planned.results.decisions,
                    &planned.incidents,
                    &planned.trust
                ),
                report::rollout::policy_changes(&planned.policy_changes)
            );
        }
        format => print!(
            "{}",
            report::write(&planned.report(project.dir())?, format).unwrap_or_default()
        ),
    }
    if !ctx.quiet {
        print_warnings(&planned.warnings);
    }
    if let Some(warning) = planned.unsigned_warning() {
        anstream::eprintln!("warning: {warning}");
        super::error::print_hint(opsdeploy::error::UNSIGNED_HINT);
    }
    Ok(())
}

/// What the configuration lacks, on stderr in the warning shape.
fn print_warnings(warnings: &[plan::Warning]) {
    for w in warnings {
        anstream::eprintln!(
            "warning: {}\n  --> {}\nhint: {}",
            w.what,
            w.location,
            w.hint
        );
    }
}
