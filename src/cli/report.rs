//! `opsdeploy report BUNDLE_DIGEST_OR_DIR [-o FILE]`: a stored plan bundle as
//! a report, in the `--format` asked for.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;
use opsdeploy::report::table::Table;
use opsdeploy::report::{self, Format, bundle::ReportError, bundle::StoredPlan};
use opsdeploy::store::bundle::{Bundle, MANIFEST};
use opsdeploy::workflow::signing::Judge;
use opsdeploy::workflow::{Project, WorkflowError, approve, short};

use super::{CliError, CliResult, Context, Exit, project};

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  opsdeploy report 3f9a1c --format sarif -o opsdeploy.sarif\n  opsdeploy report 3f9a1c --format markdown > comment.md\n  opsdeploy report .opsdeploy/bundles/3f9a1c... --format html -o report.html"
)]
pub struct ReportArgs {
    /// The plan bundle: its digest (or a unique prefix, 6+ characters), or its directory
    #[arg(value_name = "BUNDLE_DIGEST_OR_DIR")]
    pub bundle: String,
    /// Write the report to FILE instead of stdout
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn report_error(e: ReportError) -> CliError {
    match e {
        ReportError::Bundle(b) => WorkflowError::from(b).into(),
        ReportError::Unreadable { ref digest, .. } => CliError::error(e.to_string())
            .at(format!(".opsdeploy/bundles/{}", short(digest)))
            .hint("plan again (`opsdeploy plan ENV`); the bundle's files were changed or lost"),
    }
}

/// A fresh plan in a report format (no approvals yet).
pub fn planned_report(project: &Project, bundle: &Bundle, format: Format) -> CliResult<String> {
    let stored = StoredPlan::open(bundle.clone()).map_err(report_error)?;
    let history = project.history()?;
    let env = &bundle.manifest.environment;
    let trust = vec![
        Judge::new(&history, &project.config.project)
            .in_force(env, &bundle.digest, u64::MAX)
            .describe(env),
    ];
    let r = stored
        .report(&[], &[], &trust, Some(project.dir()))
        .map_err(report_error)?;
    Ok(report::write(&r, format).unwrap_or_default())
}

fn open_bundle(arg: &str) -> CliResult<(Bundle, Option<Project>)> {
    let dir = Path::new(arg);
    if dir.join(MANIFEST).is_file() {
        let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
            return Err(CliError::new(
                Exit::Usage,
                format!("{arg} is not a bundle directory"),
            )
            .hint("pass a digest `opsdeploy status` shows, or a directory under .opsdeploy/bundles"));
        };
        let bundle = Bundle::open(parent, &name.to_string_lossy()).map_err(WorkflowError::from)?;
        // Approvals live in the project's audit log, when the project is here.
        return Ok((bundle, project::open().ok()));
    }
    let project = project::open()?;
    // Team mode keeps bundles in the database; this brings a copy here.
    project
        .store
        .fetch_bundle(arg)
        .map_err(WorkflowError::from)?;
    let bundle = Bundle::open(&project.store.bundles_dir(), arg).map_err(|e| match e {
        opsdeploy::store::bundle::BundleError::NotFound { .. } => CliError::new(
            Exit::Usage,
            format!("there is no plan bundle {arg} in this project"),
        )
        .at(".opsdeploy/bundles")
        .hint("pass a digest `opsdeploy status` shows, or a bundle directory"),
        e => WorkflowError::from(e).into(),
    })?;
    Ok((bundle, Some(project)))
}

pub fn run(ctx: &Context, args: &ReportArgs) -> CliResult {
    let (bundle, project) = open_bundle(&args.bundle)?;
    let stored = StoredPlan::open(bundle).map_err(report_error)?;
    let digest = stored.bundle.digest.clone();
    let history = match &project {
        Some(p) => Some(p.history()?),
        None => None,
    };
    let env_name = stored.bundle.manifest.environment.clone();
    // With signers, only approvals whose signatures count are shown as such.
    let (approvals, overrides, trust) = match (&project, &history) {
        (Some(p), Some(h)) => {
            let trust = vec![
                Judge::new(h, &p.config.project)
                    .in_force(&env_name, &digest, u64::MAX)
                    .describe(&env_name),
            ];
            match p.config.environment(&env_name) {
                Some(env) => (
                    approve::counted_approvals(p, env, h, &digest).0,
                    approve::counted_overrides(p, env, h, &digest).0,
                    trust,
                ),
                None => (h.approvals(&digest), h.overrides(&digest), trust),
            }
        }
        _ => (
            Vec::new(),
            Vec::new(),
            vec!["approvals: not known (no project log here to check them against)".into()],
        ),
    };
    // The `-q` line: the plan's verdict, whatever the report says in full.
    let verdict = format!(
        "{} {}",
        if stored.decisions(&overrides).iter().any(|d| d.blocks) {
            "blocked"
        } else {
            "planned"
        },
        short(&digest)
    );
    let text = match ctx.format {
        Format::Human if ctx.quiet && args.output.is_none() => format!("{verdict}\n"),
        Format::Human => {
            let mut text = report::plan_human(
                &digest,
                &stored.bundle.manifest,
                &stored.decisions(&overrides),
                &[],
                &trust,
            );
            let env = &stored.bundle.manifest.environment;
            if approvals.is_empty() {
                let _ = writeln!(
                    text,
                    "\napprovals: none yet (opsdeploy approve {env} --plan {})",
                    short(&digest)
                );
            } else {
                text.push_str("\napprovals\n");
                let mut table = Table::new(&["approver", "at", "comment"]);
                for a in &approvals {
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
        format => {
            let r = stored
                .report(
                    &approvals,
                    &overrides,
                    &trust,
                    project.as_ref().map(|p| p.dir()),
                )
                .map_err(report_error)?;
            report::write(&r, format).unwrap_or_default()
        }
    };
    emit(
        ctx,
        args.output.as_deref(),
        &text,
        &format!("plan {}", short(&digest)),
        &verdict,
    )?;
    Ok(Exit::Ok)
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
            opsdeploy::fsutil::write_atomic(path, text.as_bytes()).map_err(|e| {
                CliError::error(format!("could not write the report: {e}"))
                    .at(path.display().to_string())
                    .hint("choose a writable path for -o")
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
