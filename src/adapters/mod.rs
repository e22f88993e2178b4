//! Adapters: run the real tools (terraform, helm, trivy, kubectl) and read what
//! they write into typed models.

pub mod health;
pub mod helm;
pub mod notify;
pub mod process;
pub mod terraform;
pub mod trivy;
