//! Tools for policy authors: scaffold a policy crate, build it to wasm, run its fixtures.

pub mod build;
pub mod fixtures;
pub mod scaffold;
pub mod wasm_build;
