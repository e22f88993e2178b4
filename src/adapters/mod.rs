//! Adapters: run the real tools (terraform, helm, trivy, kubectl) and read what
//! they write — and the project's own files (migrations, state) — into typed models.

pub mod child;
pub mod health;
pub mod helm;
pub mod migrations;
pub mod notify;
pub mod process;
pub mod progress;
pub mod project_state;
pub mod terraform;
pub mod trivy;
