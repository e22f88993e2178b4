//! Integration tests: one binary (build once, link once), a module per area.

mod engine;
mod helm_workflow;
mod policy_cli;
mod support;
mod workflow;
