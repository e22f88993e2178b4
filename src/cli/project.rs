//! Opening the project in the current directory (after `-C`).

use opsdeploy::workflow::Project;

use super::{CliError, CliResult};

pub fn open() -> CliResult<Project> {
    let dir = std::env::current_dir()
        .map_err(|e| CliError::error(format!("cannot read the current directory: {e}")))?;
    Ok(Project::open(&dir)?)
}
