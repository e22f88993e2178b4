//! Adapters: run the real tools (terraform, helm, trivy) and read what
//! they write — and the project's own files (migrations, state) — into typed models.

pub(crate) mod child;
pub(crate) mod health;
pub mod helm;
pub(crate) mod json_check;
pub mod migrations;
pub(crate) mod notify;
pub(crate) mod plan_outline;
pub mod plan_view;
pub(crate) mod process;
pub mod progress;
pub mod project_state;
pub mod terraform;
pub mod trivy;
