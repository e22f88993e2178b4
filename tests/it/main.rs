//! Integration tests: one binary (build once, link once), a module per area.

mod engine;
mod gates;
mod migrations;
mod migrations_yardstick;
mod policy_cli;
mod promotion;
mod support;
