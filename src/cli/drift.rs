//! `opsdeploy drift ENV`: exit 2 when drifted, like terraform's detailed exit code.

use clap::Args;
use opsdeploy::workflow::drift;

use super::{CliResult, Context, Exit, Format, project};

#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  opsdeploy drift production || echo \"drifted (exit 2) or failed (exit 1)\""
)]
pub struct DriftArgs {
    /// Environment, as named in opsdeploy.hcl
    pub environment: String,
}

pub fn run(ctx: &Context, args: &DriftArgs) -> CliResult {
    let project = project::open()?;
    let d = drift::drift(&project, &args.environment)?;
    match ctx.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&d).expect("json")),
        _ => {
            if d.drifted {
                println!("{} has drifted:", d.environment);
                for f in &d.findings {
                    println!("  {f}");
                }
            } else {
                println!("{}: no drift", d.environment);
            }
            if !ctx.quiet {
                for u in &d.unchecked {
                    anstream::eprintln!("note: {u}");
                }
            }
        }
    }
    // Exit 2 like `terraform plan -detailed-exitcode`, not a usage error.
    Ok(if d.drifted { Exit::Usage } else { Exit::Ok })
}
