//! Tools for policy authors: scaffold a policy crate, build it to wasm, run its
//! fixtures (`policy test`) or evaluate it on one input (`policy eval`).

pub mod build;
pub mod fixtures;
pub mod scaffold;
pub mod testing;
pub mod wasm_build;

use build::BuildError;
use fixtures::FixtureError;

use crate::engine::EngineError;

/// Why `policy test` or `policy eval` could not run.
#[derive(Debug, thiserror::Error)]
pub enum AuthoringError {
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Fixture(#[from] FixtureError),
}
