//! `opsdeploy init [DIR] [--template NAME]`.

use std::path::PathBuf;

use clap::Args;
use opsdeploy::error::Outcome;
use opsdeploy::templates;

use super::{CliResult, Context, Format};

#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  opsdeploy init shop --template quickstart && cd shop && opsdeploy plan staging"
)]
pub struct InitArgs {
    /// Project directory (created if missing)
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Starting point: quickstart (offline demo) or k8s-app
    #[arg(long, default_value = "quickstart")]
    pub template: String,
}

pub fn run(ctx: &Context, args: &InitArgs) -> CliResult {
    let written = templates::init(&args.dir, &args.template)?;
    match ctx.format {
        Format::Json => println!("{}", opsdeploy::report::json(&written)),
        _ if ctx.quiet => println!("created {}", args.dir.display()),
        _ => println!(
            "created {} files from template {} in {}",
            written.files.len(),
            args.template,
            args.dir.display()
        ),
    }
    if !ctx.quiet {
        anstream::eprintln!("next: cd {} && opsdeploy plan staging", args.dir.display());
    }
    Ok(Outcome::Done)
}
