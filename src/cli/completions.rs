//! `opsdeploy completions SHELL`: generated from the one CLI definition.

use clap::CommandFactory;
use clap_complete::Shell;

use super::{Cli, CliResult, Exit};

pub fn run(shell: Shell) -> CliResult {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "opsdeploy", &mut std::io::stdout());
    Ok(Exit::Ok)
}
