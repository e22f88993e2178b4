//! replica-floor: deny a Deployment or StatefulSet whose replica count is below
//! the floor this environment sets (settings `{"floors": {"production": 3}}`).
//! The same policy is written in C, Zig, AssemblyScript and Rego
//! (src/authoring/templates/); all pass the same fixtures with the same verdicts.

use std::collections::BTreeMap;

use policy_sdk::prelude::*;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
pub struct Settings {
    #[serde(default)]
    floors: BTreeMap<String, serde_json::Value>,
}

/// A JSON integer, as the other versions read one (no fraction, no exponent).
fn whole(v: &serde_json::Value) -> Option<i64> {
    v.as_i64()
}

pub fn evaluate(input: &Input) -> Vec<Violation> {
    let settings: Settings = match input.settings() {
        Ok(s) => s,
        Err(e) => return vec![Violation::deny("invalid-settings", e.to_string())],
    };
    let env = &input.environment.name;
    let Some(floor) = settings.floors.get(&**env).and_then(whole) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for release in &input.helm {
        for m in &release.manifests {
            if m.kind != "Deployment" && m.kind != "StatefulSet" {
                continue;
            }
            let object = m.object_value();
            let replicas = match object.pointer("/spec/replicas") {
                None => 1,
                Some(v) => match whole(v) {
                    Some(n) => n,
                    None => continue,
                },
            };
            if replicas < floor {
                let address = m.display_name();
                out.push(
                    Violation::deny(
                        "replica-floor",
                        format!("{address} has {replicas} replicas; {env} needs at least {floor}"),
                    )
                    .at_address(address),
                );
            }
        }
    }
    out
}

policy_sdk::export_policy! {
    name: "replica-floor",
    description: "Deny workloads with fewer replicas than the environment's floor",
    reads: [helm],
    evaluate: evaluate,
}
