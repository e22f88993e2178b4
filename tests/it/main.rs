//! Integration tests: one binary (build once, link once), a module per area.

// First: its macros are used by the modules below.
#[macro_use]
mod support;

mod accuracy_migrations;
mod accuracy_secrets;
mod architecture;
mod cli_help;
mod corpus;
mod corpus_copies;
mod corpus_fetch;
mod engine;
mod errors;
mod faults;
mod gates;
mod hardening;
mod helm_workflow;
mod hostile_inputs;
mod hostile_scale;
mod human_output;
mod k8s_template;
mod migrations;
mod migrations_yardstick;
mod policy_cli;
mod polyglot;
mod promotion;
mod quickstart;
mod rego_conformance;
mod replay;
mod reports;
mod rollback;
mod scans;
mod secrets_corpus;
mod team;
mod test_helm;
mod trust;
mod workflow;
