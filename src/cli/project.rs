//! Opening the project in the current directory (after `-C`).

use opsdeploy::error::Error;
use opsdeploy::workflow::Project;

use super::CliResult;

pub fn open() -> CliResult<Project> {
    Ok(Project::open(&current_dir()?)?)
}

/// The directory the command runs in (after `-C`).
pub fn current_dir() -> CliResult<std::path::PathBuf> {
    std::env::current_dir().map_err(Error::CurrentDirectory)
}
