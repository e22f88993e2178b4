//! `opsdeploy init --template k8s-app`: a project whose staging plan runs
//! terraform, renders the chart (tests/fake-bin/helm), scans the image
//! (tests/fake-bin/trivy, replaying recorded reports) and is held back only by the gates its checklist and
//! state file leave open — and passes once they are closed.

use std::path::Path;

use crate::support::{corpus, has_row, opsdeploy, repo};

fn run(dir: &Path, reports: &Path, args: &[&str]) -> std::process::Output {
    let cache = tempfile::tempdir().unwrap();
    // With FAKE_TRIVY_REPORTS the fake trivy replays every scan.
    let path = format!(
        "{}:{}",
        repo().join("tests/fake-bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    opsdeploy(cache.path())
        .current_dir(dir)
        .args(args)
        .env("OPSDEPLOY_USER", "dev@example.com")
        .env("PATH", path)
        .env("FAKE_HELM_STATE", dir.join(".fake-helm"))
        .env("FAKE_TRIVY_REPORTS", reports)
        .output()
        .unwrap()
}

#[test]
fn k8s_app_template_plans_staging_and_is_held_only_by_its_open_gates() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("app");
    let cache = tempfile::tempdir().unwrap();
    opsdeploy(cache.path())
        .args(["init"])
        .arg(&dir)
        .args(["--template", "k8s-app"])
        .assert()
        .success();
    for file in [
        "infra/modules/app/main.tf",
        "charts/app/values-staging.yaml",
        "charts/app/values-production.yaml",
        "docker-compose.prod.yml",
        "docs/ROLLBACK.md",
        "SECURITY_CHECKLIST.md",
        "PROJECT_STATE.md",
        "policies/replica-floor/src/lib.rs",
        "policies/replica-floor/vendor/policy-sdk/Cargo.toml",
    ] {
        assert!(dir.join(file).is_file(), "{file} missing");
    }
    let ci = std::fs::read_to_string(dir.join(".github/workflows/deploy.yml")).unwrap();
    assert!(
        ci.contains("--format sarif") && ci.contains("upload-sarif"),
        "{ci}"
    );

    // A clean image: trivy's report of alpine 3.9 with nothing found.
    let reports = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(reports.path().join("image")).unwrap();
    std::fs::create_dir_all(reports.path().join("fs")).unwrap();
    std::fs::copy(
        corpus("trivy/integration/testdata/alpine-39-skip.json.golden"),
        reports
            .path()
            .join("image/registry.example.com_team_app_1.0.0.json"),
    )
    .unwrap();
    for d in ["charts", "infra"] {
        std::fs::write(
            reports.path().join(format!("fs/{d}.json")),
            format!(r#"{{"SchemaVersion":2,"ArtifactName":"{d}","ArtifactType":"filesystem"}}"#),
        )
        .unwrap();
    }

    let out = run(&dir, reports.path(), &["plan", "staging"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(stderr.contains("is blocked by policy: gates\n"), "{stderr}");
    assert!(
        stdout.contains("helm        app charts/app 1.0.0 (2 manifests"),
        "{stdout}"
    );
    for passing in ["no-secrets", "protected-deletes", "image-scan"] {
        assert!(has_row(&stdout, &format!("pass {passing}")), "{stdout}");
    }

    // Close the gates as a reviewer would, and the same plan goes through.
    let checklist = std::fs::read_to_string(dir.join("SECURITY_CHECKLIST.md")).unwrap();
    std::fs::write(
        dir.join("SECURITY_CHECKLIST.md"),
        checklist.replace("- [ ]", "- [x]"),
    )
    .unwrap();
    let state = std::fs::read_to_string(dir.join("PROJECT_STATE.md")).unwrap();
    std::fs::write(
        dir.join("PROJECT_STATE.md"),
        state.replace(
            "| S07 security review | pending | - |",
            "| S07 security review | passed | 2026-11-28 |",
        ),
    )
    .unwrap();
    let out = run(&dir, reports.path(), &["plan", "staging", "-q"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The chart takes its secrets by reference only, per environment.
    let bundles: Vec<_> = std::fs::read_dir(dir.join(".opsdeploy/bundles"))
        .unwrap()
        .filter_map(|e| e.ok())
        .collect();
    let input = bundles
        .iter()
        .map(|b| std::fs::read_to_string(b.path().join("input.json")).unwrap())
        .next()
        .unwrap();
    assert!(
        input.contains("secretKeyRef") && input.contains("app-db-staging"),
        "{input}"
    );
}
