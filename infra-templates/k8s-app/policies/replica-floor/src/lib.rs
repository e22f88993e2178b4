//! replica-floor: every Deployment the helm releases render runs at least
//! `min` replicas, so one pod's restart never takes the app down.

use policy_sdk::prelude::*;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Fewest replicas a Deployment may run.
    #[serde(default = "two")]
    min: u64,
}

fn two() -> u64 {
    2
}

impl Default for Settings {
    fn default() -> Self {
        Settings { min: two() }
    }
}

pub fn evaluate(input: &Input) -> Vec<Violation> {
    let settings: Settings = match input.settings_or_denial("replica-floor") {
        Ok(s) => s,
        Err(denial) => return vec![denial],
    };
    let mut out = Vec::new();
    for release in &input.helm {
        for m in release.manifests.iter().filter(|m| m.kind == "Deployment") {
            let replicas = m.object_value()["spec"]["replicas"].as_u64().unwrap_or(1);
            if replicas < settings.min {
                let mut v = Violation::deny(
                    "replica-floor",
                    format!(
                        "{} of release {} runs {replicas} replica{}; at least {} keep it up while a pod restarts",
                        m.display_name(),
                        release.release,
                        if replicas == 1 { "" } else { "s" },
                        settings.min
                    ),
                )
                .at_address(format!("{}/{}", release.release, m.display_name()));
                if let Some(source) = &m.source {
                    v = v.at_path(format!("charts/{source}"));
                }
                out.push(v);
            }
        }
    }
    out
}

policy_sdk::export_policy! {
    name: "replica-floor",
    description: "Every Deployment runs at least min replicas",
    reads: [helm],
    settings_schema: r#"{"type":"object","additionalProperties":false,"properties":{"min":{"type":"integer","minimum":1}}}"#,
    evaluate: evaluate,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(fixture: &str) -> Vec<Violation> {
        let json = std::fs::read_to_string(fixture).unwrap();
        let fixture: serde_json::Value = serde_json::from_str(&json).unwrap();
        let mut doc = fixture["input"].clone();
        doc["settings"] = fixture["settings"].clone();
        let text = doc.to_string();
        evaluate(&Input::from_json(&text).unwrap())
    }

    #[test]
    fn a_single_replica_is_denied_and_three_pass() {
        let v = run("fixtures/deny_single_replica.json");
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].address.as_deref(), Some("app/Deployment/app"));
    }
}
