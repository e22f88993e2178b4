//! bench/rego/service_limits.rego in Rust with policy-sdk, for BENCHMARKS.md.

use policy_sdk::prelude::*;
use serde::Deserialize;

#[derive(Deserialize)]
struct After<'a> {
    #[serde(borrow)]
    input: Service<'a>,
}

#[derive(Deserialize)]
struct Service<'a> {
    enabled: bool,
    #[serde(borrow)]
    containers: Vec<Container<'a>>,
}

#[derive(Deserialize)]
struct Container<'a> {
    name: &'a str,
    image: &'a str,
    #[serde(borrow)]
    resources: Resources<'a>,
}

#[derive(Deserialize)]
struct Resources<'a> {
    #[serde(borrow)]
    limits: Limits<'a>,
}

#[derive(Deserialize)]
struct Limits<'a> {
    memory: &'a str,
}

fn mebibytes(quantity: &str) -> Option<f64> {
    quantity.strip_suffix("Mi")?.parse().ok()
}

pub fn evaluate(input: &Input) -> Vec<Violation> {
    let Some(plan) = input.plan() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for rc in &plan.resource_changes {
        if rc.resource_type != "terraform_data" || !rc.change.actions.is_create() {
            continue;
        }
        let Some(after) = rc.change.after else {
            continue;
        };
        let Ok(after) = serde_json::from_str::<After>(after.get()) else {
            continue;
        };
        for c in &after.input.containers {
            let memory = c.resources.limits.memory;
            if mebibytes(memory).is_some_and(|m| m > 512.0) {
                out.push(Violation::deny(
                    "deny",
                    format!(
                        "{}: container {} may use {memory}, over 512Mi",
                        rc.address, c.name
                    ),
                ));
            }
            if !c.image.starts_with("registry.example.com/") {
                out.push(Violation::deny(
                    "deny",
                    format!(
                        "{}: container {} runs {} from outside the registry",
                        rc.address, c.name, c.image
                    ),
                ));
            }
        }
        if !after.input.enabled {
            out.push(Violation::warn(
                "warn",
                format!("{} is created disabled", rc.address),
            ));
        }
    }
    out
}

policy_sdk::export_policy! {
    name: "service-limits",
    description: "Deny containers over 512Mi or from outside the registry",
    reads: [terraform],
    evaluate: evaluate,
}
