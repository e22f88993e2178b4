//! Deploys with helm releases: rolling and blue-green, their rollbacks, and
//! helm's own failures — against the test helm in tests/fake-bin (Helm 4's own
//! engine rendering the charts, releases kept in files instead of a cluster;
//! tests/helm/README.md), plus one check against a helm binary when one is on
//! PATH.

use predicates::prelude::*;

use crate::support::{repo, row};
use crate::workflow::{HealthServer, TestProject, config, with_staging};

pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.path().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// A project whose environments deploy the `web` chart; production blue-green.
fn helm_project(health_url: &str) -> TestProject {
    let release = "  helm \"web\" {\n    chart     = \"charts/web\"\n    values    = [\"values/web.yaml\"]\n    timeout   = \"2m\"\n  }\n";
    // The test chart's image is not pinned by digest, which image-scan
    // denies in production; scans.rs tests that policy.
    let off = "policy \"image-scan\" {\n  enabled = false\n  reason  = \"the test chart's image is a tag; scans.rs tests image-scan\"\n}\n";
    let cfg = config(health_url, off)
        .replace("  approval { self_approve = true }", &format!("{release}  approval {{ self_approve = true }}"))
        .replace(
            "  promote_from = \"staging\"",
            &format!("  promote_from = \"staging\"\n  strategy     = \"blue-green\"\n{release}  health {{\n    url      = \"{health_url}\"\n    timeout  = \"3s\"\n    interval = \"200ms\"\n  }}"),
        );
    let p = TestProject::new(&cfg);
    copy_dir(&repo().join("tests/data/charts/web"), &p.file("charts/web"));
    std::fs::create_dir_all(p.file("values")).unwrap();
    std::fs::write(p.file("values/web.yaml"), "replicas: 1\n").unwrap();
    p
}

fn helm_calls(p: &TestProject) -> String {
    p.read(".fake-helm/calls.log")
}

fn history(p: &TestProject, ns: &str, release: &str) -> Vec<serde_json::Value> {
    serde_json::from_str(&p.read(&format!(".fake-helm/{ns}/{release}.json"))).unwrap_or_default()
}

#[test]
fn rolling_deploy_renders_manifests_into_the_plan_and_upgrades_atomically() {
    let health = HealthServer::start(200);
    let p = helm_project(&health.url());
    p.run("alice@example.com", &["plan", "staging"])
        .success()
        .stdout(predicate::str::contains(
            "helm        web charts/web 1.2.0 (2 manifests, namespace staging)",
        ));
    let bundle = std::fs::read_dir(p.file(".opsdeploy/bundles"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let input: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("input.json")).unwrap()).unwrap();
    // In the order helm installs them.
    let manifests = &input["helm"][0]["manifests"];
    assert_eq!(manifests[0]["kind"], "Service");
    assert_eq!(manifests[1]["kind"], "Deployment");
    assert_eq!(manifests[1]["source"], "web/templates/deployment.yaml");
    assert_eq!(input["helm"][0]["values"]["replicas"], 1);
    crate::scans::validate(&input);
    assert!(
        std::fs::read_to_string(bundle.join("helm/web.yaml"))
            .unwrap()
            .contains("# Source: web/templates/service.yaml")
    );

    p.run("alice@example.com", &["approve", "staging"])
        .success();
    p.run("alice@example.com", &["apply", "staging", "--yes"])
        .success()
        .stdout(row("ok helm release web upgraded"));
    assert!(helm_calls(&p).contains("upgrade --install web charts/web --atomic --wait --timeout 120s --namespace staging --values values/web.yaml"));
    assert_eq!(history(&p, "staging", "web").len(), 1);
}

#[test]
fn a_failed_health_check_rolls_the_release_back_to_its_previous_revision() {
    let good = HealthServer::start(200);
    let p = helm_project(&good.url());
    p.plan_approved("alice@example.com", "staging");
    p.run("alice@example.com", &["apply", "staging", "--yes"])
        .success();

    let bad = HealthServer::start(503);
    std::fs::write(
        p.file("opsdeploy.hcl"),
        p.read("opsdeploy.hcl").replace(&good.url(), &bad.url()),
    )
    .unwrap();
    std::fs::write(p.file("values/web.yaml"), "replicas: 3\n").unwrap();
    p.plan_approved("alice@example.com", "staging");
    p.run("alice@example.com", &["apply", "staging", "--yes"])
        .code(5)
        .stdout(row(
            "ok rollback helm release web rolled back to revision 1",
        ));
    let revs = history(&p, "staging", "web");
    assert_eq!(revs.len(), 3);
    assert_eq!(revs[2]["description"], "Rollback to 1");
    // What the rollback left is what opsdeploy recorded: no drift.
    p.run("alice@example.com", &["drift", "staging"]).success();

    // The rollback itself failing is exit 6: manual action needed.
    std::fs::write(p.file("values/web.yaml"), "replicas: 4\n").unwrap();
    p.plan_approved("alice@example.com", "staging");
    p.run_with(
        "alice@example.com",
        &["apply", "staging", "--yes"],
        &[("FAKE_HELM_FAIL_ROLLBACK", "1")],
    )
    .code(6)
    .stdout(row("FAIL rollback helm"))
    .stderr(predicate::str::contains(
        "the rollback is incomplete: manual action needed for helm: release web",
    ));
    assert!(
        p.read("CONTINUITY.md")
            .contains("rollback incomplete: manual action needed")
    );
}

#[test]
fn helm_failing_its_own_upgrade_is_reported_with_helms_reason() {
    let health = HealthServer::start(200);
    let p = helm_project(&health.url());
    p.plan_approved("alice@example.com", "staging");
    p.run("alice@example.com", &["apply", "staging", "--yes"])
        .success();
    std::fs::write(p.file("values/web.yaml"), "replicas: 3\n").unwrap();
    p.plan_approved("alice@example.com", "staging");
    p.run_with(
        "alice@example.com",
        &["apply", "staging", "--yes"],
        &[("FAKE_HELM_FAIL_UPGRADE", "web")],
    )
    .code(5)
    .stdout(predicate::str::contains(
        "UPGRADE FAILED: release web failed, and has been rolled back due to rollback-on-failure being set",
    ));
    // Helm itself put revision 1's manifest back.
    let revs = history(&p, "staging", "web");
    let described: Vec<_> = revs
        .iter()
        .map(|r| {
            (
                r["status"].as_str().unwrap(),
                r["description"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        described,
        [
            ("superseded", "Install complete"),
            (
                "failed",
                "Upgrade \"web\" failed: context deadline exceeded"
            ),
            ("deployed", "Rollback to 1"),
        ]
    );
    assert_eq!(revs[2]["manifest"], revs[0]["manifest"]);
    assert!(
        revs[2]["manifest"]
            .as_str()
            .unwrap()
            .contains("replicas: 1")
    );
}

/// The `api` chart (tests/data/charts/api: named templates, include, toYaml,
/// required, a hook) as release `api` of staging, with `values`.
fn api_project(health_url: &str, values: &str) -> TestProject {
    let release = "  helm \"api\" {\n    chart     = \"charts/api\"\n    namespace = \"shop\"\n    values    = [\"values/api.yaml\"]\n  }";
    let p = TestProject::new(&with_staging(&config(health_url, ""), release));
    copy_dir(&repo().join("tests/data/charts/api"), &p.file("charts/api"));
    std::fs::create_dir_all(p.file("values")).unwrap();
    std::fs::write(p.file("values/api.yaml"), values).unwrap();
    p
}

const API_DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[test]
fn a_chart_with_helpers_reaches_the_policies_as_helm_renders_it() {
    let health = HealthServer::start(200);
    let p = api_project(
        &health.url(),
        &format!(
            "image:\n  digest: {API_DIGEST}\nconfig:\n  LOG_LEVEL: debug\n  REGION: eu-west-1\n"
        ),
    );
    let digest = p.plan("alice@example.com", "staging");
    let input = crate::scans::bundle_input(p.path(), &digest);
    let manifests = input["helm"][0]["manifests"].as_array().unwrap();
    let by_kind = |kind: &str| {
        manifests
            .iter()
            .find(|m| m["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in {manifests:#?}"))
    };
    // Helm's install order, then the hook `helm template` prints after them.
    let kinds: Vec<_> = manifests
        .iter()
        .map(|m| m["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["ConfigMap", "Deployment", "Job"]);
    let deployment = &by_kind("Deployment")["object"];
    assert_eq!(
        deployment["metadata"]["labels"]["helm.sh/chart"],
        "api-0.3.0"
    );
    assert_eq!(
        deployment["metadata"]["labels"]["app.kubernetes.io/version"],
        "2.1.0"
    );
    assert_eq!(deployment["metadata"]["namespace"], "shop");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["image"],
        format!("registry.example.com/shop/api@{API_DIGEST}")
    );
    assert_eq!(container["resources"]["limits"]["memory"], "256Mi");
    let config = &by_kind("ConfigMap")["object"]["data"];
    assert_eq!(config["LOG_LEVEL"], "debug");
    assert_eq!(config["REGION"], "eu-west-1");
    let hook = by_kind("Job");
    assert_eq!(hook["source"], "api/templates/migrate-job.yaml");
    assert_eq!(
        hook["object"]["metadata"]["annotations"]["helm.sh/hook"],
        "pre-install,pre-upgrade"
    );
    crate::scans::validate(&input);
}

#[test]
fn a_chart_that_does_not_render_stops_the_plan_naming_chart_template_and_helms_message() {
    let health = HealthServer::start(200);
    let mut transcript = String::new();
    let mut plan = |p: &TestProject| {
        let out = p
            .run("alice@example.com", &["plan", "staging"])
            .code(1)
            .get_output()
            .clone();
        assert!(out.stdout.is_empty());
        let bundles = std::fs::read_dir(p.file(".opsdeploy/bundles"));
        assert!(bundles.is_err() || bundles.unwrap().next().is_none());
        transcript.push_str(&String::from_utf8_lossy(&out.stderr));
    };
    // A required value left out.
    plan(&api_project(&health.url(), "replicas: 2\n"));
    // A template that is not valid template syntax.
    let p = api_project(&health.url(), &format!("image:\n  digest: {API_DIGEST}\n"));
    std::fs::write(
        p.file("charts/api/templates/service.yaml"),
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ include \"api.fullname\" . }\n",
    )
    .unwrap();
    plan(&p);
    insta::assert_snapshot!(transcript);
}

#[test]
fn blue_green_switches_colours_retires_the_old_one_and_rolls_back_to_it() {
    let health = HealthServer::start(200);
    let p = helm_project(&health.url());
    // Staging first (promotion needs it healthy there).
    p.plan_approved("alice@example.com", "staging");
    p.run("alice@example.com", &["apply", "staging", "--yes"])
        .success();
    let first = {
        p.run("alice@example.com", &["promote", "staging", "production"])
            .success();
        p.run("bob@example.com", &["approve", "production"])
            .success();
        p.run("bob@example.com", &["apply", "production", "--yes"])
            .success()
            .stdout(predicate::str::contains("release web-blue upgraded"))
            .stdout(predicate::str::contains("release web upgraded"));
        history(&p, "production", "web")
    };
    assert_eq!(first.len(), 1);
    assert!(
        helm_calls(&p).contains("--set opsdeploy.role=traffic --set opsdeploy.activeColor=blue")
    );

    // A second production deploy: green beside blue, traffic to green, blue retired.
    std::fs::write(p.file("values/web.yaml"), "replicas: 2\n").unwrap();
    p.plan_approved("alice@example.com", "staging");
    p.run("alice@example.com", &["apply", "staging", "--yes"])
        .success();
    p.run("alice@example.com", &["promote", "staging", "production"])
        .success();
    p.run("bob@example.com", &["approve", "production"])
        .success();
    p.run("bob@example.com", &["apply", "production", "--yes"])
        .success()
        .stdout(predicate::str::contains("release web-green upgraded"))
        .stdout(predicate::str::contains("retired web-blue"));
    assert_eq!(
        history(&p, "production", "web-blue").last().unwrap()["status"],
        "uninstalled"
    );
    assert!(helm_calls(&p).contains("--set opsdeploy.activeColor=green"));

    // Rollback brings blue back into service and retires green.
    p.run("bob@example.com", &["rollback", "production"])
        .success()
        .stdout(predicate::str::contains("web-blue back to revision 1"))
        .stdout(predicate::str::contains("traffic of web back to blue"))
        .stdout(predicate::str::contains("retired web-green"));
    assert_eq!(
        history(&p, "production", "web-blue").last().unwrap()["status"],
        "deployed"
    );
    p.run("bob@example.com", &["status", "production"])
        .success()
        .stdout(predicate::str::contains("deployed"));
    p.run("bob@example.com", &["audit", "verify"]).success();
}

#[test]
fn drift_reports_a_release_changed_outside_opsdeploy() {
    let health = HealthServer::start(200);
    let p = helm_project(&health.url());
    p.run("alice@example.com", &["plan", "staging"]).success();
    p.run("alice@example.com", &["approve", "staging"])
        .success();
    p.run("alice@example.com", &["apply", "staging", "--yes"])
        .success();
    p.run("alice@example.com", &["drift", "staging"]).success();
    // Someone upgrades the release by hand.
    let by_hand = std::process::Command::new(repo().join("tests/fake-bin/helm"))
        .args([
            "upgrade",
            "--install",
            "web",
            "charts/web",
            "--atomic",
            "--wait",
        ])
        .args([
            "--timeout",
            "60s",
            "--namespace",
            "staging",
            "--set",
            "replicas=5",
        ])
        .env("FAKE_HELM_STATE", p.file(".fake-helm"))
        .current_dir(p.path())
        .status()
        .unwrap();
    assert!(by_hand.success());
    p.run("alice@example.com", &["drift", "staging"])
        .code(2)
        .stdout(row(
            "drifted helm release web is at revision 2 (deployed, chart web-1.2.0",
        ))
        .stdout(predicate::str::contains("opsdeploy left revision 1"));
}

#[test]
fn drift_after_a_rollback_is_clean() {
    let health = HealthServer::start(200);
    let p = helm_project(&health.url());
    p.plan_approved("alice@example.com", "staging");
    p.run("alice@example.com", &["apply", "staging", "--yes"])
        .success();
    std::fs::write(p.file("values/web.yaml"), "replicas: 3\n").unwrap();
    p.plan_approved("alice@example.com", "staging");
    p.run("alice@example.com", &["apply", "staging", "--yes"])
        .success();
    p.run("alice@example.com", &["rollback", "staging"])
        .success()
        .stdout(row("ok helm release web back to revision 1"));
    // Helm made revision 3 (a rollback to 1); opsdeploy recorded it.
    assert_eq!(history(&p, "staging", "web").len(), 3);
    p.run("alice@example.com", &["drift", "staging"])
        .success()
        .stdout(predicate::str::contains("staging: no drift"));
}

#[test]
fn rollback_with_nothing_deployed_says_what_to_do_instead() {
    let health = HealthServer::start(200);
    let p = TestProject::new(&config(&health.url(), ""));
    p.run("alice@example.com", &["rollback", "staging"])
        .code(1)
        .stderr(predicate::str::contains(
            "nothing is deployed on \"staging\" to roll back",
        ));
}

/// The test helm is Helm's engine behind a simulated release store; where a
/// helm binary is installed, its `template` output must read the same. Prints
/// whether it ran: CI has no helm binary, so there it says `NOT RUN`.
#[test]
fn helm_binary_on_path_if_any_renders_the_test_charts_as_the_test_helm_does() {
    let fake = repo().join("tests/fake-bin");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let others = std::env::join_paths(std::env::split_paths(&path).filter(|d| *d != fake)).unwrap();
    let Ok(binary) = which::which_in("helm", Some(others), repo()) else {
        println!("NOT RUN: no helm binary on PATH besides the test helm; nothing compared");
        return;
    };
    println!("comparing {} with the test helm", binary.display());
    for (chart, extra) in [
        ("web", vec![]),
        ("api", vec!["--set", "image.digest=sha256:00"]),
    ] {
        let template = |helm: &std::path::Path| {
            let out = std::process::Command::new(helm)
                .args(["template", chart])
                .arg(repo().join("tests/data/charts").join(chart))
                .args(["--namespace", "staging"])
                .args(&extra)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let yaml = String::from_utf8_lossy(&out.stdout).into_owned();
            opsdeploy::adapters::helm::parse_manifests(chart, &yaml)
                .unwrap()
                .iter()
                .map(|m| {
                    (
                        m.source.clone(),
                        m.display_name(),
                        m.object.get().to_string(),
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            template(&binary),
            template(&fake.join("helm")),
            "chart {chart}"
        );
    }
}
