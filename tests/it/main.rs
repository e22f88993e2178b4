//! Integration tests: one binary (build once, link once), a module per area.

mod engine;
mod migrations;
mod migrations_yardstick;
mod policy_cli;
mod support;
