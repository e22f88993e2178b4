//! `opsdeploy drift ENV`: exit 2 when drifted, like terraform's detailed exit code.

use clap::Args;
use opsdeploy::error::Outcome;
use opsdeploy::report::table::{Table, verdict};
use opsdeploy::workflow::drift;

use super::args::EnvArg;
use super::{CliResult, Context, Format, project};

#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  opsdeploy drift production || echo \"drifted (exit 2) or failed (exit 1)\""
)]
pub struct DriftArgs {
    #[command(flatten)]
    pub env: EnvArg,
}

pub fn run(ctx: &Context, args: &DriftArgs) -> CliResult {
    let project = project::open()?;
    let d = drift::drift(&project, &args.env.environment)?;
    match ctx.format {
        Format::Json => println!("{}", opsdeploy::report::json(&d)),
        _ if ctx.quiet => println!("{}", if d.drifted { "drifted" } else { "ok" }),
        _ => {
            if d.drifted {
                println!("{} has drifted:", d.environment);
                anstream::print!("{}", findings_table(&d.findings).render());
            } else {
                println!("{}: no drift", d.environment);
            }
            for u in &d.unchecked {
                anstream::eprintln!("note: {u}");
            }
        }
    }
    Ok(if d.drifted {
        Outcome::Drifted {
            environment: d.environment,
        }
    } else {
        Outcome::Done
    })
}

/// Findings read `tool: what`; the tool becomes a column of its own.
fn findings_table(findings: &[String]) -> Table {
    let mut table = Table::new(&["result", "source", "finding"]);
    for f in findings {
        let (source, what) = f.split_once(": ").unwrap_or(("-", f.as_str()));
        table.row([verdict("drifted"), source.into(), what.into()]);
    }
    table
}

#[cfg(test)]
mod tests {
    #[test]
    fn findings_are_split_into_source_and_finding() {
        let t = super::findings_table(&[
            "terraform: aws_s3_bucket.logs has changed".into(),
            "helm: release web is at revision 3".into(),
            "odd finding".into(),
        ]);
        let text = anstream::adapter::strip_str(&t.render()).to_string();
        assert_eq!(
            text,
            "  result   source     finding\n  drifted  terraform  aws_s3_bucket.logs has changed\n  drifted  helm       release web is at revision 3\n  drifted  -          odd finding\n"
        );
    }
}
