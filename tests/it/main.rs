//! Integration tests: one binary (build once, link once), a module per area.

mod engine;
mod policy_cli;
mod support;
mod workflow;
