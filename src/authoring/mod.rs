//! Tools for policy authors: scaffold a policy crate, build it to wasm, run its
//! fixtures (`policy test`) or evaluate it on one input (`policy eval`).

pub mod build;
pub mod eval;
pub mod fixtures;
pub mod project;
pub mod scaffold;
pub mod scaffold_lang;
pub mod testing;
pub mod toolchain;
pub mod wasm_build;

use std::path::PathBuf;

use build::BuildError;
use fixtures::FixtureError;

use crate::adapters::terraform::TerraformError;
use crate::builtins::UnknownBuiltin;
use crate::engine::EngineError;
use crate::input::InputError;

/// Why `policy build`, `test` or `eval` could not run.
#[derive(Debug, thiserror::Error)]
pub enum AuthoringError {
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Fixture(#[from] FixtureError),
    #[error(transparent)]
    UnknownBuiltin(#[from] UnknownBuiltin),
    #[error("{source}")]
    Input {
        path: PathBuf,
        #[source]
        source: InputError,
    },
    #[error("{source}")]
    TerraformPlan {
        path: PathBuf,
        #[source]
        source: TerraformError,
    },
    #[error("could not read settings file: {source}")]
    SettingsFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("settings are not valid JSON: {source}")]
    Settings {
        /// `--settings` or the file they came from.
        from: String,
        #[source]
        source: serde_json::Error,
    },
}
