//! opsdeploy: a deployment gate. Modules follow the data flow:
//! config → adapters → input document → policy engine → workflow → store → report,
//! and import only down it (docs/architecture.md draws it and says where each
//! command's behaviour lives).

pub mod adapters;
pub mod authoring;
pub mod builtins;
pub mod config;
pub mod engine;
pub mod error;
pub mod escape;
pub mod fsutil;
pub mod generated;
pub mod input;
pub mod redact;
pub mod report;
pub mod store;
pub mod templates;
pub mod trust;
pub mod units;
pub mod workflow;

/// Keeps serde_json's many small allocations fast (see BENCHMARKS.md).
pub type GlobalAllocator = mimalloc::MiMalloc;
