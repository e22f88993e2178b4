//! `opsdeploy report BUNDLE_DIGEST_OR_DIR [-o FILE]`: a stored plan bundle as
//! a report, in the `--format` asked for.

use std::fmt::Write as _;
use std::path::Path;

use clap::Args;
use opsdeploy::error::{Error, Outcome};
use opsdeploy::report::table::Table;
use opsdeploy::report::{self, Format};
use opsdeploy::workflow::{short, stored};

use super::args::OutputArg;
use super::{CliResult, Context, project};

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  opsdeploy report 3f9a1c --format sarif -o opsdeploy.sarif\n  opsdeploy report 3f9a1c --format markdown > comment.md\n  opsdeploy report .opsdeploy/bundles/3f9a1c... --format html -o report.html"
)]
pub struct ReportArgs {
    /// The plan bundle: its digest (or a unique prefix, 6+ characters), or its directory
    #[arg(value_name = "BUNDLE_DIGEST_OR_DIR")]
    pub bundle: String,
    #[command(flatten)]
    pub output: OutputArg,
}

pub fn run(ctx: &Context, args: &ReportArgs) -> CliResult {
    let opened = stored::open(&project::current_dir()?, &args.bundle)?;
    let bundle = &opened.stored.bundle;
    let digest = &bundle.digest;
    // The `-q` line: the plan's verdict, whatever the report says in full.
    let verdict = format!(
        "{} {}",
        if opened.blocked() {
            "blocked"
        } else {
            "planned"
        },
        short(digest)
    );
    let output = args.output.output.as_deref();
    let text = match ctx.format {
        Format::Human if ctx.quiet && output.is_none() => format!("{verdict}\n"),
        Format::Human => {
            let mut text = report::plan_human(
                digest,
                &bundle.manifest,
                &opened.decisions(),
                &[],
                &opened.trust,
            );
            let env = &bundle.manifest.environment;
            if opened.approvals.is_empty() {
                let _ = writeln!(
                    text,
                    "\napprovals: none yet (opsdeploy approve {env} --plan {})",
                    short(digest)
                );
            } else {
                text.push_str("\napprovals\n");
                let mut table = Table::new(&["approver", "at", "comment"]);
                for a in &opened.approvals {
                    table.row([
                        a.approver.as_str(),
                        a.at.as_str(),
                        a.comment.as_deref().unwrap_or("-"),
                    ]);
                }
                text.push_str(&table.render());
            }
            text
        }
        format => report::write(&opened.report()?, format).unwrap_or_default(),
    };
    emit(
        ctx,
        output,
        &text,
        &format!("plan {}", short(digest)),
        &verdict,
    )?;
    Ok(Outcome::Done)
}

/// Writes a report to `-o FILE` (atomically) or stdout; `what` names it in
/// the confirmation, and `-q` prints only `verdict` when the report goes to a file.
pub fn emit(
    ctx: &Context,
    output: Option<&Path>,
    text: &str,
    what: &str,
    verdict: &str,
) -> CliResult<()> {
    match output {
        Some(path) => {
            // A file is not a terminal: human text goes there without colour.
            let plain;
            let text = if ctx.format == Format::Human {
                plain = anstream::adapter::strip_str(text).to_string();
                plain.as_str()
            } else {
                text
            };
            opsdeploy::fsutil::write_atomic(path, text.as_bytes()).map_err(|source| {
                Error::WriteReport {
                    path: path.to_path_buf(),
                    source,
                }
            })?;
            if ctx.quiet {
                println!("{verdict}");
            } else {
                anstream::eprintln!(
                    "wrote {} ({} report of {what})",
                    path.display(),
                    ctx.format.as_str(),
                );
            }
        }
        None if ctx.format == Format::Human => anstream::print!("{text}"),
        None => print!("{text}"),
    }
    Ok(())
}
