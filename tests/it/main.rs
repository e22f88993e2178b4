//! Integration tests: one binary (build once, link once), a module per area.

mod corpus;
mod engine;
mod gates;
mod helm_workflow;
mod hostile_scale;
mod migrations;
mod migrations_yardstick;
mod policy_cli;
mod promotion;
mod quickstart;
mod secrets_corpus;
mod support;
mod workflow;
