//! opsdeploy: a deployment gate. Modules follow the data flow:
//! config → adapters → input document → policy engine → workflow → store → report.

pub mod adapters;
pub mod authoring;
pub mod config;
pub mod engine;
pub mod escape;
pub mod fsutil;
pub mod generated;
pub mod input;
pub mod report;
pub mod store;
pub mod templates;
pub mod units;
pub mod workflow;

/// Keeps serde_json's many small allocations fast (see BENCHMARKS.md).
pub type GlobalAllocator = mimalloc::MiMalloc;
