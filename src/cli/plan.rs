//! `opsdeploy plan ENV`.

use clap::Args;
use opsdeploy::report;
use opsdeploy::workflow::{plan, short};

use super::{CliError, CliResult, Context, Exit, Format, project};

#[derive(Debug, Args)]
#[command(after_help = "Example:\n  opsdeploy plan staging")]
pub struct PlanArgs {
    /// Environment, as named in opsdeploy.hcl
    pub environment: String,
}

pub fn run(ctx: &Context, args: &PlanArgs) -> CliResult {
    let project = project::open()?;
    let planned = plan::plan(&project, &args.environment)?;
    let digest = &planned.bundle.digest;
    let env = &args.environment;
    let blocking = planned.results.blocking();
    match ctx.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "digest": digest,
                "environment": env,
                "manifest": planned.bundle.manifest,
                "decisions": planned.results.decisions,
                "incidents": planned.incidents,
                "policy_changes": planned.policy_changes,
                "blocked": !blocking.is_empty(),
            }))
            .expect("json")
        ),
        Format::Human if ctx.quiet => println!(
            "{} {}",
            if blocking.is_empty() {
                "planned"
            } else {
                "blocked"
            },
            short(digest)
        ),
        Format::Human => anstream::print!(
            "{}{}",
            report::plan_human(
                digest,
                &planned.bundle.manifest,
                &planned.results.decisions,
                &planned.incidents
            ),
            report::rollout::policy_changes(&planned.policy_changes)
        ),
        format => print!(
            "{}",
            super::report::planned_report(&project, &planned.bundle, format)?
        ),
    }
    if blocking.is_empty() {
        if !ctx.quiet {
            anstream::eprintln!("next: opsdeploy approve {env} --plan {}", short(digest));
        }
        return Ok(Exit::Ok);
    }
    Err(blocked_error(env, &planned))
}

/// The refusal for a plan a mandatory policy blocks, with the way forward.
pub fn blocked_error(env: &str, planned: &plan::Planned) -> CliError {
    let digest = &planned.bundle.digest;
    let blocking = planned.results.blocking();
    let names: Vec<&str> = blocking.iter().map(|d| d.policy.as_str()).collect();
    let soft: Vec<&str> = blocking
        .iter()
        .filter(|d| d.enforcement == opsdeploy::config::Enforcement::SoftMandatory)
        .map(|d| d.policy.as_str())
        .collect();
    let hint = match soft.first() {
        Some(p) if soft.len() == blocking.len() => format!(
            "change the plan so it passes, or have an approver run `opsdeploy approve {env} --plan {} --override {p} --reason \"...\"`",
            short(digest)
        ),
        _ => format!("change the plan so it passes, then run `opsdeploy plan {env}` again"),
    };
    CliError::new(
        Exit::BlockedByPolicy,
        format!(
            "plan {} is blocked by policy: {}",
            short(digest),
            names.join(", ")
        ),
    )
    .at(format!(".opsdeploy/bundles/{}", short(digest)))
    .hint(hint)
}
