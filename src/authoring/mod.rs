//! Tools for policy authors: scaffold a policy crate, build it to wasm, run its fixtures.

pub mod build;
pub mod fixtures;
pub mod project;
pub mod scaffold;
pub mod scaffold_lang;
pub mod toolchain;
pub mod wasm_build;
