//! `opsdeploy scan [IMAGE]... [--env ENV]`: trivy scans on their own, judged
//! by the policies that read scans, in any report format.

use clap::Args;
use opsdeploy::error::Outcome;
use opsdeploy::report;
use opsdeploy::workflow::scans::{self, ScanOnly};
use policy_sdk::scan::TrivySeverity;

use super::args::OutputArg;
use super::{CliResult, Context, Format};

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  opsdeploy scan registry.example.com/api:1.2.0\n  opsdeploy scan --env staging --format sarif -o trivy.sarif\n  opsdeploy scan nginx:1.27 --fail-on HIGH --format markdown > scan.md"
)]
pub struct ScanArgs {
    /// Images to scan (default: the environment's `scan { images, paths }`)
    #[arg(value_name = "IMAGE")]
    pub images: Vec<String>,
    /// Judge by this environment's scan block (fail_on, allowlist) and policies
    #[arg(long = "env", value_name = "ENV")]
    pub environment: Option<String>,
    /// Lowest severity that fails when a fix exists (overrides `scan { fail_on }`)
    #[arg(long, value_name = "SEVERITY", value_parser = parse_severity)]
    pub fail_on: Option<TrivySeverity>,
    #[command(flatten)]
    pub output: OutputArg,
}

fn parse_severity(s: &str) -> Result<TrivySeverity, String> {
    TrivySeverity::parse(s).ok_or_else(|| "expected CRITICAL, HIGH, MEDIUM, LOW or UNKNOWN".into())
}

pub fn run(ctx: &Context, args: &ScanArgs) -> CliResult {
    let verdict = scans::scan(
        &super::project::current_dir()?,
        &ScanOnly {
            images: args.images.clone(),
            environment: args.environment.clone(),
            fail_on: args.fail_on,
        },
    )?;
    let r = verdict.report()?;
    let output = args.output.output.as_deref();
    let text = match ctx.format {
        Format::Human if ctx.quiet && output.is_none() => format!("{}\n", r.verdict.as_str()),
        Format::Human => report::scan_human(&r, &verdict.decisions),
        format => report::write(&r, format).unwrap_or_default(),
    };
    super::report::emit(
        ctx,
        output,
        &text,
        &format!("the scan of {}", verdict.scanned.targets.join(", ")),
        r.verdict.as_str(),
    )?;
    match verdict.refusal() {
        Some(refusal) => Err(refusal.into()),
        None => Ok(Outcome::Done),
    }
}
