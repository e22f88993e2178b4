//! `opsdeploy scan [IMAGE]... [--env ENV]`: trivy scans on their own, judged
//! by the policies that read scans, in any report format.

use std::path::PathBuf;

use clap::Args;
use opsdeploy::config::Config;
use opsdeploy::report::{self, Report};
use opsdeploy::store::results::Decision;
use opsdeploy::workflow::scans::{self, ScanOnly};
use policy_sdk::scan::{Scans, TrivySeverity};

use super::{CliError, CliResult, Context, Exit, Format};

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
    /// Write the report to FILE instead of stdout
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

fn parse_severity(s: &str) -> Result<TrivySeverity, String> {
    TrivySeverity::parse(s).ok_or_else(|| "expected CRITICAL, HIGH, MEDIUM, LOW or UNKNOWN".into())
}

pub fn run(ctx: &Context, args: &ScanArgs) -> CliResult {
    let dir = super::project::current_dir()?;
    // The project's configuration judges when an environment is named; a bare
    // image scan works anywhere (and uses `tools { trivy }` when there is one).
    let config = match Config::load(&dir) {
        Ok(c) => Some(c),
        Err(opsdeploy::config::ConfigError::NotFound { .. }) if args.environment.is_none() => None,
        Err(e) => return Err(opsdeploy::workflow::WorkflowError::from(e).into()),
    };
    let verdict = scans::scan_only(
        config.as_ref(),
        &dir,
        &ScanOnly {
            images: args.images.clone(),
            environment: args.environment.clone(),
            fail_on: args.fail_on,
        },
    )?;
    let parsed: Scans<'_> = serde_json::from_str(verdict.scanned.section.get()).map_err(|e| {
        CliError::error(format!("trivy's reports could not be read back: {e}"))
            .hint("run with -v and report this as a bug in opsdeploy")
    })?;
    let r = Report::from_scans(
        &verdict.decisions,
        &parsed,
        config.as_ref().map(|c| c.dir.as_path()),
    );
    let text = match ctx.format {
        Format::Human if ctx.quiet && args.output.is_none() => format!("{}\n", r.verdict.as_str()),
        Format::Human => report::scan_human(&r, &verdict.decisions),
        format => report::write(&r, format).unwrap_or_default(),
    };
    let targets: Vec<&str> = r.scans.iter().map(|s| s.target.as_str()).collect();
    super::report::emit(
        ctx,
        args.output.as_deref(),
        &text,
        &format!("the scan of {}", targets.join(", ")),
        r.verdict.as_str(),
    )?;
    let blocking: Vec<&Decision> = verdict.decisions.iter().filter(|d| d.blocks).collect();
    let Some(first) = blocking.first() else {
        return Ok(Exit::Ok);
    };
    let names: Vec<&str> = blocking.iter().map(|d| d.policy.as_str()).collect();
    let again = super::error::this_command();
    let hint = if first.failure().is_some() {
        format!(
            "policy `{}` could not run (see its finding); fix it or its limits in opsdeploy.hcl, then run `{again}` again",
            first.policy
        )
    } else if first.policy == "image-scan" {
        let mut ways = vec!["rebuild the image with the fixed versions"];
        if first
            .violations
            .iter()
            .any(|v| v.rule == "image-not-pinned")
        {
            ways.push("reference it by digest (name@sha256:...)");
        }
        if args.environment.is_some() {
            ways.push(
                "accept a finding in the scan allowlist (a statement and an expired_at date)",
            );
        }
        format!("{}, then run `{again}` again", ways.join(", or "))
    } else {
        format!(
            "fix what the findings of `{}` name, then run `{again}` again",
            first.policy
        )
    };
    Err(CliError::new(
        Exit::BlockedByPolicy,
        format!("the scan is blocked by policy: {}", names.join(", ")),
    )
    .at(targets.join(", "))
    .hint(hint))
}
