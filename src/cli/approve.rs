//! `opsdeploy approve ENV [--plan DIGEST] [--comment TEXT] [--override POLICY --reason TEXT]`.

use clap::Args;
use opsdeploy::error::Outcome;
use opsdeploy::workflow::approve::{self, ApproveOutcome, ApproveRequest};
use opsdeploy::workflow::short;

use super::args::{EnvArg, PlanArg};
use super::{CliResult, Context, Format, project};

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  opsdeploy approve production --plan 3f9a1c2b4d5e --comment \"reviewed with bob\"\n  opsdeploy approve production --override cost-guard --reason \"one-off migration cluster\""
)]
pub struct ApproveArgs {
    #[command(flatten)]
    pub env: EnvArg,
    #[command(flatten)]
    pub plan: PlanArg,
    /// Why you approve; recorded in the audit log
    #[arg(long, value_name = "TEXT")]
    pub comment: Option<String>,
    /// Lift a soft-mandatory policy's denial for this plan only
    #[arg(long = "override", value_name = "POLICY", requires = "reason")]
    pub override_policy: Option<String>,
    /// Why the override is justified (required with --override)
    #[arg(long, value_name = "TEXT", requires = "override_policy")]
    pub reason: Option<String>,
}

pub fn run(ctx: &Context, args: &ApproveArgs) -> CliResult {
    let project = project::open()?;
    let env = &args.env.environment;
    let req = ApproveRequest {
        environment: env,
        digest: args.plan.plan.as_deref(),
        comment: args.comment.as_deref(),
        override_policy: args.override_policy.as_deref().zip(args.reason.as_deref()),
    };
    let approved = approve::approve(&project, &req)?;
    let actor = &approved.actor;
    let (verdict, line, next) = match &approved.outcome {
        ApproveOutcome::Approved {
            digest,
            valid,
            needed,
        } => (
            format!("approved {}", short(digest)),
            format!(
                "approved plan {} for {env} as {actor} ({valid} of {needed} approvals)",
                short(digest),
            ),
            if valid >= needed {
                format!("opsdeploy apply {env} --plan {}", short(digest))
            } else {
                format!(
                    "another approver: opsdeploy approve {env} --plan {}",
                    short(digest)
                )
            },
        ),
        ApproveOutcome::AlreadyApproved { digest } => (
            format!("approved {}", short(digest)),
            format!("{actor} already approved plan {} for {env}", short(digest)),
            format!("opsdeploy apply {env} --plan {}", short(digest)),
        ),
        ApproveOutcome::Overridden { digest, policy } => (
            format!("overridden {}", short(digest)),
            format!(
                "override of policy {policy} for plan {} recorded by {actor}",
                short(digest),
            ),
            // Approving an already approved plan is a no-op, so this is
            // the one next command either way.
            format!("opsdeploy approve {env} --plan {}", short(digest)),
        ),
    };
    match ctx.format {
        Format::Json => println!("{}", opsdeploy::report::json(&approved)),
        _ if ctx.quiet => println!("{verdict}"),
        _ => println!("{line}"),
    }
    if !ctx.quiet {
        anstream::eprintln!("next: {next}");
    }
    Ok(Outcome::Done)
}
