//! Arguments several commands take, each defined once.

use std::path::PathBuf;

use clap::Args;

/// The environment a command acts on.
#[derive(Debug, Args)]
pub struct EnvArg {
    /// Environment, as named in opsdeploy.hcl
    pub environment: String,
}

/// Which plan a command acts on.
#[derive(Debug, Args)]
pub struct PlanArg {
    /// Plan digest (or a unique prefix); default: the environment's latest plan
    #[arg(long, value_name = "DIGEST")]
    pub plan: Option<String>,
}

/// Where a report goes.
#[derive(Debug, Args)]
pub struct OutputArg {
    /// Write the report to FILE instead of stdout
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}
