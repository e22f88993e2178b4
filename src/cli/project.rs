//! Opening the project in the current directory (after `-C`).

use opsdeploy::workflow::Project;

use super::{CliError, CliResult};

pub fn open() -> CliResult<Project> {
    Ok(Project::open(&current_dir()?)?)
}

/// The directory the command runs in (after `-C`).
pub fn current_dir() -> CliResult<std::path::PathBuf> {
    std::env::current_dir().map_err(|e| {
        CliError::error(format!("cannot read the current directory: {e}"))
            .hint("run it from an existing directory, or pass `-C DIR`")
    })
}
