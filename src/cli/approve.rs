//! `opsdeploy approve ENV [--plan DIGEST] [--comment TEXT] [--override POLICY --reason TEXT]
//! [--key FILE | --statement | --signature FILE.sig]`.

use std::path::PathBuf;

use clap::Args;
use opsdeploy::error::Outcome;
use opsdeploy::workflow::approve::{self, ApproveOutcome, ApproveRequest};
use opsdeploy::workflow::short;

use super::args::{EnvArg, PlanArg};
use super::{CliResult, Context, Format, project};

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  opsdeploy approve production --plan 3f9a1c2b4d5e --comment \"reviewed with bob\"\n  opsdeploy approve production --key ~/.ssh/id_ed25519\n  opsdeploy approve production --override cost-guard --reason \"one-off migration cluster\"\n  opsdeploy approve production --plan 3f9a1c --statement > s.json   # on a runner\n  ssh-keygen -Y sign -n opsdeploy -f ~/.ssh/id_ed25519 s.json      # anywhere\n  opsdeploy approve production --plan 3f9a1c --signature s.json.sig"
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
    /// SSH key to sign with: a private key, or a .pub whose private half
    /// ssh-agent holds (default: OPSDEPLOY_SIGNING_KEY, else git's
    /// user.signingKey when gpg.format=ssh)
    #[arg(long, value_name = "FILE", conflicts_with_all = ["statement", "signature"])]
    pub key: Option<PathBuf>,
    /// Print the approval statement to sign elsewhere (`ssh-keygen -Y sign -n opsdeploy`)
    #[arg(long, conflicts_with = "signature")]
    pub statement: bool,
    /// Log a detached signature: FILE.sig, with the statement it signs beside it
    #[arg(long, value_name = "FILE.sig", conflicts_with_all = ["comment", "override_policy"])]
    pub signature: Option<PathBuf>,
    /// How long a signed approval counts
    #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = opsdeploy::units::parse_duration)]
    pub expires_in: std::time::Duration,
}

pub fn run(ctx: &Context, args: &ApproveArgs) -> CliResult {
    let project = project::open()?;
    let env = &args.env.environment;
    let quiet = ctx.quiet;
    let show = move |bundle: &opsdeploy::store::bundle::Bundle, trust: &str| {
        // What is being vouched for, before anything is signed: on stderr,
        // so stdout stays the result.
        if !quiet {
            anstream::eprint!(
                "{}",
                opsdeploy::report::approval_summary(&bundle.digest, &bundle.manifest, trust)
            );
        }
    };
    let req = ApproveRequest {
        environment: env,
        digest: args.plan.plan.as_deref(),
        comment: args.comment.as_deref(),
        override_policy: args.override_policy.as_deref().zip(args.reason.as_deref()),
        key: args.key.as_deref(),
        signature: args.signature.as_deref(),
        // At most ten years: an approval is for a plan about to be applied.
        expires_in_secs: args.expires_in.as_secs().min(3650 * 86_400) as i64,
        show: &show,
    };
    if args.statement {
        print!("{}", approve::detached_statement(&project, &req)?);
        if !ctx.quiet {
            anstream::eprintln!(
                "next: ssh-keygen -Y sign -n opsdeploy -f KEY FILE, then opsdeploy approve {env} --plan {} --signature FILE.sig",
                args.plan.plan.as_deref().unwrap_or("DIGEST")
            );
        }
        return Ok(Outcome::Done);
    }
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
