//! Adapters: run the real tools (terraform, helm, trivy, kubectl) and read what
//! they write into typed models.

pub mod migrations;
pub mod project_state;
pub mod terraform;
