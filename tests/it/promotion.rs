//! Promotion: fixtures around a real trivy image report (trivy-action's
//! `alpine:3.10` report, whose RepoDigests give the image digest), which the
//! fixtures name in the corpus rather than copy, and migrations written here
//! and read by the migrations reader. Regenerate the fixtures with
//! `OPSDEPLOY_UPDATE_FIXTURES=1 cargo test --test it fixtures_are`.

use opsdeploy::adapters::migrations::{Source, migrations_from_sources};
use serde_json::{Value, json};

use crate::migrations::{Dir, catalogue_files, check_fixtures, migrations_section};
use crate::support::corpus;

const REPORT: &str = "trivy-action/test/data/with-trivy-yaml-cfg/report.json";
const ALPINE_DIGEST: &str =
    "sha256:451eee8bedcb2f029756dc3e9d73bab0e7943c1ac55cff3a4861c52a0fdd3e98";

fn report() -> Value {
    serde_json::from_slice(&std::fs::read(corpus(REPORT)).unwrap()).unwrap()
}

/// The first `ids` migrations of the catalogue; `ran` lists (id, env).
fn migrations(ids: usize, ran: &[(&str, &str)]) -> Value {
    migrations_section(&Dir {
        files: catalogue_files()[..ids].to_vec(),
        ran,
        edited: &[],
    })
}

fn helm(chart_version: &str, image: &str) -> Value {
    json!([{
        "release": "shop", "chart": "shop", "chart_version": chart_version, "namespace": "production",
        "manifests": [{
            "source": "shop/templates/deployment.yaml", "api_version": "apps/v1", "kind": "Deployment",
            "name": "shop", "namespace": "production",
            "object": {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "shop"},
                       "spec": {"template": {"spec": {"containers": [{"name": "shop", "image": image}]}}}}
        }]
    }])
}

fn staging(healthy: bool, image_digest: &str, migrations: &[&str]) -> Value {
    json!({"environment": "staging", "digest": "sha256:5ca1ab1e0c0ffee0", "at": "2025-03-04T15:20:00Z",
           "status": if healthy { "succeeded" } else { "rolled_back" }, "healthy": healthy,
           "images": [{"reference": "alpine:3.10", "digest": image_digest},
                      {"reference": "nginx:1.27"}],
           "charts": [{"release": "shop", "chart": "shop", "version": "0.4.2"}],
           "migrations": migrations})
}

const BOTH_RAN: &[(&str, &str)] = &[
    ("V1_1__create_products", "staging"),
    ("V1_1__create_products", "production"),
    ("V1_2__require_product_name", "staging"),
];

/// The input document; the fixture adds the scan of alpine:3.10 (`scan_reports`).
fn doc(environment: Value, helm: Value, deployments: Value, migrations: Value) -> Value {
    json!({
        "schema_version": 1,
        "environment": environment,
        "helm": helm,
        "deployments": {"by_environment": deployments},
        "migrations": migrations,
    })
}

fn production() -> Value {
    json!({"name": "production", "project": "shop", "promote_from": "staging"})
}

fn fixtures() -> Vec<(&'static str, Value)> {
    let healthy = json!({"staging": staging(true, ALPINE_DIGEST, &["V1_1__create_products", "V1_2__require_product_name"])});
    let scan = json!([{"target": "alpine:3.10", "kind": "image", "report": format!("$OPSDEPLOY_CORPUS/{REPORT}")}]);
    let f = |description: &str, input: Value, expect: Value| json!({"description": description, "input": input, "scan_reports": scan, "expect": expect});
    vec![
        (
            "same_digest_chart_and_migrations_as_staging_pass",
            f(
                "production ships alpine:3.10 (digest from trivy's RepoDigests), chart shop 0.4.2 and V1_2, all deployed and healthy on staging",
                doc(
                    production(),
                    helm("0.4.2", "alpine:3.10"),
                    healthy.clone(),
                    migrations(2, BOTH_RAN),
                ),
                json!([]),
            ),
        ),
        (
            "image_digest_differs_from_staging_is_denied",
            f(
                "the tag is the same but staging ran another build of alpine:3.10",
                doc(
                    production(),
                    helm("0.4.2", "alpine:3.10"),
                    json!({"staging": staging(true, "sha256:0d0d0d0d0d0d0d0d", &["V1_1__create_products", "V1_2__require_product_name"])}),
                    migrations(2, BOTH_RAN),
                ),
                json!([{"rule": "image-not-on-source", "address": "alpine:3.10",
                        "message_contains": "alpine:3.10 (451eee8bedcb) from the scan report, which is not deployed on staging: staging runs alpine:3.10 (0d0d0d0d0d0d)"}]),
            ),
        ),
        (
            "unhealthy_staging_blocks_promotion",
            f(
                "staging's last deployment was rolled back",
                doc(
                    production(),
                    helm("0.4.2", "alpine:3.10"),
                    json!({"staging": staging(false, ALPINE_DIGEST, &["V1_1__create_products", "V1_2__require_product_name"])}),
                    migrations(2, BOTH_RAN),
                ),
                json!([{"rule": "source-not-healthy", "message_contains": "is rolled_back and not healthy"}]),
            ),
        ),
        (
            "chart_bump_and_new_migration_not_on_staging_are_denied",
            f(
                "production would deploy chart 0.5.0 and run V2_1, neither part of staging's healthy deployment",
                doc(
                    production(),
                    helm("0.5.0", "alpine:3.10"),
                    healthy.clone(),
                    migrations(3, BOTH_RAN),
                ),
                json!([
                    {"rule": "chart-not-on-source", "address": "shop",
                     "message_contains": "shop 0.5.0 to production, which is not deployed on staging: staging runs shop 0.4.2"},
                    {"rule": "migration-not-on-source", "path": "db/migrations/V2_1__create_suppliers.sql"}
                ]),
            ),
        ),
        (
            "staging_never_deployed_is_denied",
            f(
                "nothing was ever deployed to staging",
                doc(
                    production(),
                    helm("0.4.2", "alpine:3.10"),
                    json!({}),
                    migrations(2, BOTH_RAN),
                ),
                json!([{"rule": "source-not-deployed"}]),
            ),
        ),
        (
            "tag_only_image_matches_with_a_warning",
            f(
                "nginx:1.27 is neither pinned nor scanned: it matches staging by tag only, which cannot prove it is the same image",
                doc(
                    production(),
                    helm("0.4.2", "nginx:1.27"),
                    healthy.clone(),
                    migrations(2, BOTH_RAN),
                ),
                json!([{"rule": "image-unverified", "severity": "warn", "address": "nginx:1.27"}]),
            ),
        ),
        (
            "environment_without_promote_from_is_not_checked",
            f(
                "staging itself is not promoted from anywhere",
                doc(
                    json!({"name": "staging", "project": "shop"}),
                    helm("0.9.9", "alpine:3.10"),
                    json!({}),
                    migrations(3, &[]),
                ),
                json!([]),
            ),
        ),
    ]
}

#[test]
fn fixtures_are_built_around_a_real_trivy_report_they_name_and_the_migrations_reader() {
    check_fixtures("promotion", fixtures());
}

#[test]
fn promotion_on_a_10000_resource_plan_stays_within_default_limits() {
    use opsdeploy::input::InputDocument;
    use policy_sdk::Section;
    // 1,000 releases of 10 containers: 10,000 images, half of them another build.
    let helm: Vec<Value> = (0..1_000)
        .map(|r| {
            let containers: Vec<Value> = (0..10)
                .map(|c| {
                    let n = r * 10 + c;
                    json!({"name": format!("c{c}"), "image": format!("reg.example.com/svc{n}@sha256:{n:064x}")})
                })
                .collect();
            json!({"release": format!("svc{r}"), "chart": "svc", "chart_version": "1.0.0", "namespace": "prod",
                   "manifests": [{"api_version": "apps/v1", "kind": "Deployment", "name": format!("svc{r}"),
                                  "object": {"spec": {"template": {"spec": {"containers": containers}}}}}]})
        })
        .collect();
    let images: Vec<Value> = (0..10_000)
        .map(|n| {
            let digest = if n % 2 == 0 {
                format!("sha256:{n:064x}")
            } else {
                format!("sha256:{:064x}", n + 1_000_000)
            };
            json!({"reference": format!("reg.example.com/svc{n}:1.0"), "digest": digest})
        })
        .collect();
    let charts: Vec<Value> = (0..1_000)
        .map(|r| json!({"release": format!("svc{r}"), "chart": "svc", "version": if r % 2 == 0 { "1.0.0" } else { "0.9.0" }}))
        .collect();
    let files = crate::migrations::hostile_migrations(2_000);
    let sources: Vec<Source> = files
        .iter()
        .map(|(name, text)| Source {
            file_name: name,
            path: name,
            bytes: text.as_bytes(),
        })
        .collect();
    let migrations = migrations_from_sources(&sources).unwrap();
    let on_staging: Vec<&str> = migrations
        .iter()
        .step_by(2)
        .map(|m| m.id.as_ref())
        .collect();
    let scans: Vec<Value> = (0..100)
        .map(|i| json!({"target": format!("alpine:3.10-{i}"), "kind": "image", "report": report()}))
        .collect();
    let env: policy_sdk::input::Environment =
        serde_json::from_str(r#"{"name":"production","project":"shop","promote_from":"staging"}"#)
            .unwrap();
    let mut doc = InputDocument::new(&env);
    doc.set_raw(
        Section::Terraform,
        crate::migrations::terraform_section(10_000),
    );
    doc.set(Section::Helm, &helm);
    doc.set(Section::Scans, &json!({"reports": scans}));
    doc.set(Section::Migrations, &migrations);
    doc.set(
        Section::Deployments,
        &json!({"by_environment": {"staging": {"environment": "staging", "digest": "sha256:beef", "at": "t",
            "status": "succeeded", "healthy": true, "images": images, "charts": charts, "migrations": on_staging}}}),
    );
    let v = crate::migrations::evaluate_within_default_limits("promotion", &doc);
    let count = |rule: &str| v.iter().filter(|x| x.rule == rule).count();
    // Half the service images, and the 100 scanned alpine tags staging never ran.
    assert_eq!(count("image-not-on-source"), 5_000 + 100);
    assert_eq!(count("chart-not-on-source"), 500);
    assert_eq!(count("migration-not-on-source"), 1_000);
}
