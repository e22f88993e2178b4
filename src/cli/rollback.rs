//! `opsdeploy rollback ENV [--to DIGEST]`.

use clap::Args;
use opsdeploy::error::Outcome;
use opsdeploy::report::table::{Cell, Table, verdict};
use opsdeploy::workflow::rollback::{self, Plan, RollbackRequest};
use opsdeploy::workflow::short;

use super::args::EnvArg;
use super::{CliResult, Context, Format, project};

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  opsdeploy rollback production\n  opsdeploy rollback staging --to 3f9a1c2b4d5e"
)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub env: EnvArg,
    /// An earlier successful deployment to return to (digest or unique
    /// prefix); default: the one before the current deployment
    #[arg(long, value_name = "DIGEST")]
    pub to: Option<String>,
}

pub fn run(ctx: &Context, args: &RollbackArgs) -> CliResult {
    let project = project::open()?;
    let human = ctx.format == Format::Human && !ctx.quiet;
    let show = |plan: &Plan| {
        if human {
            print_plan(plan);
        }
    };
    let r = rollback::rollback(
        &project,
        &RollbackRequest {
            environment: &args.env.environment,
            to: args.to.as_deref(),
            show: &show,
        },
    )?;
    match ctx.format {
        Format::Json => println!("{}", opsdeploy::report::json(&r.output())),
        _ if ctx.quiet => println!(
            "{} {}",
            if r.ok {
                "rolled-back"
            } else {
                "rollback-failed"
            },
            short(&r.plan.to)
        ),
        _ => {
            let mut table = Table::new(&["result", "step", "detail"]);
            for s in &r.steps {
                table.row([
                    verdict(if s.ok { "ok" } else { "FAIL" }),
                    Cell::from(&s.step),
                    Cell::from(&s.detail),
                ]);
            }
            anstream::print!("{}", table.render());
            for n in &r.not_undone {
                println!("NOT undone: {}", opsdeploy::escape::terminal(n));
            }
        }
    }
    if let Some(incomplete) = r.failure_error() {
        return Err(incomplete.into());
    }
    if ctx.format == Format::Human && !ctx.quiet {
        println!(
            "rolled back {} from {} to {}",
            r.plan.environment,
            short(&r.plan.from),
            short(&r.plan.to)
        );
        anstream::eprintln!(
            "next: fix what the failed deploy broke, then `opsdeploy plan {}`",
            r.plan.environment
        );
    }
    Ok(Outcome::Done)
}

/// The plan, before anything changes.
fn print_plan(plan: &Plan) {
    println!(
        "rolling back {} from {} to {}",
        plan.environment,
        short(&plan.from),
        short(&plan.to)
    );
    println!("  approval    {}", plan.approval);
    if let Some(t) = &plan.terraform {
        println!("  terraform   {t}");
    }
    for h in &plan.helm {
        println!("  helm        {h}");
    }
    for k in &plan.kept {
        println!("  kept        {k}");
    }
    for n in &plan.not_undone {
        println!("  NOT undone  {n}");
    }
}
