//! Adapters: run the real tools (terraform, helm, trivy, kubectl) and read what
//! they write — and the project's own files (migrations, state) — into typed models.

pub mod health;
pub mod helm;
pub(crate) mod json_check;
pub mod migrations;
pub mod notify;
pub(crate) mod plan_outline;
pub mod process;
pub mod progress;
pub mod project_state;
pub mod terraform;
pub mod trivy;
