//! protected-deletes, no-secrets and image-scan on a 10,000-resource plan and a
//! hostile amount of what each reads, with the default fuel, memory and time
//! limits (the figures are in BENCHMARKS.md; `-- --nocapture` prints them).

use opsdeploy::input::InputDocument;
use policy_sdk::Section;
use serde_json::{Value, json};

use crate::migrations::evaluate_within_default_limits;

fn document(env: &str, plan: Value) -> InputDocument {
    let env_json =
        json!({"name": env, "project": "shop", "now": "2026-11-29T12:00:00Z"}).to_string();
    let env: policy_sdk::input::Environment = serde_json::from_str(&env_json).unwrap();
    let mut doc = InputDocument::new(&env);
    let raw = serde_json::value::RawValue::from_string(plan.to_string()).unwrap();
    doc.set_raw(
        Section::Terraform,
        opsdeploy::input::terraform_section("infra", &raw),
    );
    doc
}

#[test]
fn protected_deletes_on_10000_deletes_stays_within_default_limits() {
    let changes: Vec<Value> = (0..10_000)
        .map(|i| {
            json!({"address": format!("aws_db_instance.db[{i}]"), "mode": "managed", "type": "aws_db_instance",
                   "name": "db", "index": i, "provider_name": "registry.terraform.io/hashicorp/aws",
                   "change": {"actions": if i % 2 == 0 { json!(["delete"]) } else { json!(["delete", "create"]) },
                              "before": {"identifier": format!("db-{i}"), "tags": {"team": "shop"}, "engine": "postgres"},
                              "after": if i % 2 == 0 { Value::Null } else { json!({"identifier": format!("db-{i}")}) },
                              "replace_paths": [["engine_version"]]},
                   "action_reason": if i % 2 == 0 { "delete_because_no_resource_config" } else { "replace_because_cannot_update" }})
        })
        .collect();
    let doc = document(
        "production",
        json!({"format_version": "1.2", "terraform_version": "1.11.0", "resource_changes": changes}),
    );
    let v = evaluate_within_default_limits("protected-deletes", &doc);
    assert_eq!(v.len(), 10_000);
}

#[test]
fn no_secrets_on_10000_resources_scripts_and_releases_stays_within_default_limits() {
    // Every resource: twenty environment variables and a 30-line user_data
    // script; every tenth holds a password, every hundredth an AWS key.
    let changes: Vec<Value> = (0..10_000)
        .map(|i| {
            let mut vars = serde_json::Map::new();
            for v in 0..20 {
                vars.insert(format!("SETTING_{v}"), json!(format!("value-{i}-{v}")));
            }
            if i % 10 == 0 {
                vars.insert("DB_PASSWORD".into(), json!(format!("Pw-{i:08}-x9Q")));
            }
            let mut script: Vec<String> = (0..30)
                .map(|l| format!("echo step {l} for instance {i} >> /var/log/boot.log"))
                .collect();
            if i % 100 == 0 {
                // Random-looking, so the stand-in model does not read it as a pattern.
                let key: String = (0..16u64)
                    .map(|k| {
                        let x = (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (k * 4 % 60);
                        b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"[(x % 32) as usize] as char
                    })
                    .collect();
                script.push(format!("export AWS_ACCESS_KEY_ID=AKIA{key}"));
            }
            json!({"address": format!("aws_instance.web[{i}]"), "mode": "managed", "type": "aws_instance",
                   "name": "web", "index": i, "provider_name": "registry.terraform.io/hashicorp/aws",
                   "change": {"actions": ["create"], "before": null,
                              "after": {"ami": "ami-0123456789abcdef0", "environment": [{"variables": vars}],
                                        "user_data": script.join("\n")},
                              "after_sensitive": {}}})
        })
        .collect();
    let mut doc = document(
        "production",
        json!({"format_version": "1.2", "terraform_version": "1.11.0", "resource_changes": changes}),
    );
    let helm: Vec<Value> = (0..1_000)
        .map(|r| {
            let env: Vec<Value> = (0..10)
                .map(|e| json!({"name": format!("SETTING_{e}"), "value": format!("v{r}-{e}")}))
                .collect();
            json!({"release": format!("svc{r}"), "chart": "svc", "namespace": "prod",
                   "values": {"replicas": 3, "image": {"tag": "1.0"}},
                   "manifests": [{"api_version": "apps/v1", "kind": "Deployment", "name": format!("svc{r}"),
                                  "object": {"spec": {"template": {"spec": {"containers": [{"name": "app", "env": env}]}}}}}]})
        })
        .collect();
    doc.set(Section::Helm, &helm);
    let v = evaluate_within_default_limits("no-secrets", &doc);
    // 1,000 passwords and 100 keys (one finding per resource and key).
    assert_eq!(v.len(), 1_100, "{:?}", v.first());
}

#[test]
fn image_scan_on_1000_images_and_100000_vulnerabilities_stays_within_default_limits() {
    let reports: Vec<Value> = (0..1_000)
        .map(|i| {
            let vulns: Vec<Value> = (0..100)
                .map(|v| json!({"VulnerabilityID": format!("CVE-2024-{v:05}"), "PkgName": format!("pkg{v}"),
                               "InstalledVersion": "1.0", "FixedVersion": if v % 2 == 0 { "1.1" } else { "" },
                               "Severity": if v % 10 == 0 { "CRITICAL" } else { "MEDIUM" }}))
                .collect();
            json!({"target": format!("reg.example.com/svc{i}:1.0"), "kind": "image",
                   "report": {"SchemaVersion": 2, "Results": [{"Target": "os", "Class": "os-pkgs", "Vulnerabilities": vulns}]}})
        })
        .collect();
    let entries: Vec<Value> = (0..1_000)
        .map(|e| {
            json!({"id": format!("CVE-2024-{:05}", e * 10), "statement": "accepted",
                        "expired_at": if e % 2 == 0 { "2027-01-01" } else { "2025-01-01" }})
        })
        .collect();
    let mut doc = document(
        "production",
        json!({"format_version": "1.2", "terraform_version": "1.11.0", "resource_changes": []}),
    );
    doc.set_raw(
        Section::Terraform,
        crate::migrations::terraform_section(10_000),
    );
    doc.set(
        Section::Scans,
        &json!({"fail_on": "CRITICAL", "reports": reports,
                "allowlist": {"path": ".trivyignore.yaml", "entries": entries}}),
    );
    let v = evaluate_within_default_limits("image-scan", &doc);
    let count = |rule: &str| v.iter().filter(|x| x.rule == rule).count();
    // Each image has ten fixable CRITICALs (CVE 0, 10, ..., 90); the entries
    // for 0, 20, ..., 80 are current, those for 10, 30, ..., 90 expired.
    assert_eq!(count("image-not-pinned"), 1_000);
    assert_eq!(count("allowlist-expired"), 500);
    assert_eq!(count("vulnerability-accepted"), 5_000);
    assert_eq!(count("vulnerability"), 5_000);
}
