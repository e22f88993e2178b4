//! `opsdeploy completions SHELL`: generated from the one CLI definition.

use clap::CommandFactory;
use clap_complete::Shell;

use opsdeploy::error::Outcome;

use super::{Cli, CliResult};

pub fn run(shell: Shell) -> CliResult {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "opsdeploy", &mut std::io::stdout());
    Ok(Outcome::Done)
}
