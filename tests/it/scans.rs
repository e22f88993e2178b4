//! Scans in a real plan: `trivy fs --scanners secret,misconfig` by the real
//! trivy (installed by scripts/setup.sh), image scans replayed from a real
//! recorded report by tests/fake-bin/trivy (trivy's vulnerability database
//! cannot be downloaded here), the allowlist file, and the input document of
//! such plans checked against schema/input-document.schema.json.

use std::path::Path;

use predicates::prelude::*;

use crate::support::{corpus, has_row, repo};
use crate::workflow::{HealthServer, TestProject, config, with_staging};

const ALPINE_39: &str = "trivy/integration/testdata/alpine-39.json.golden";
const USER: &str = "alice@example.com";
/// Real JSON that is not a trivy report: a terraform plan.
const NOT_A_REPORT: &str = "terraform-json/testdata/120_basic/plan.json";

fn policies() -> &'static str {
    "policy \"no-secrets\" {\n  builtin     = true\n  enforcement = \"hard-mandatory\"\n}\npolicy \"image-scan\" {\n  builtin     = true\n  enforcement = \"hard-mandatory\"\n}\n"
}

fn scan_project(health: &HealthServer, scan: &str) -> TestProject {
    TestProject::new(&with_staging(&config(&health.url(), policies()), scan))
}

/// The input document of the bundle whose digest starts with `digest` (what
/// `plan -q` prints).
/// The input document of the bundle whose digest starts with `digest`.
pub fn bundle_input(project: &Path, digest: &str) -> serde_json::Value {
    let bundle = std::fs::read_dir(project.join(".opsdeploy/bundles"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(digest))
        .unwrap_or_else(|| panic!("no bundle {digest}"));
    serde_json::from_slice(&std::fs::read(bundle.join("input.json")).unwrap()).unwrap()
}

/// Checks a document against schema/input-document.schema.json.
pub fn validate(doc: &serde_json::Value) {
    let schema: serde_json::Value = serde_json::from_slice(
        &std::fs::read(repo().join("schema/input-document.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema is valid");
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| {
            let message: String = e
                .to_string()
                .chars()
                .rev()
                .take(160)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            format!("at {}: …{message}", e.instance_path())
        })
        .take(10)
        .collect();
    assert!(
        errors.is_empty(),
        "input document does not fit the schema: {errors:#?}"
    );
}

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn real_trivy_fs_scan_finds_a_token_and_no_secrets_denies_it_and_the_env_file() {
    let health = HealthServer::start(200);
    let p = scan_project(&health, "  scan { paths = [\"app\"] }\n");
    write(
        p.path(),
        "app/deploy.sh",
        "#!/bin/sh\nexport GITHUB_PAT=ghp_R2x7Yh3Kq9Lm4Np8Vt1Wz6Bc5Df0Gj2Hs7Qe\n",
    );
    write(
        p.path(),
        "app/.env",
        "DB_HOST=db\nDB_PASSWORD=8ae31cacf1416\n",
    );
    write(p.path(), "infra/prod.env", "DB_PASSWORD=8ae31cacf1416\n");
    let out = p.run("alice@example.com", &["plan", "staging", "--no-color"]);
    let out = out.code(3);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(
        stdout.contains(
            "trivy found GitHub Personal Access Token (github-pat, CRITICAL) in deploy.sh"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("infra/prod.env line 1"), "{stdout}");
    for secret in ["ghp_R2x7Yh3Kq9Lm4Np8Vt1Wz6Bc5Df0Gj2Hs7Qe", "8ae31cacf1416"] {
        assert!(!stdout.contains(secret), "{secret} shown: {stdout}");
    }
    // trivy's own report is kept in the bundle as trivy wrote it.
    let bundles = std::fs::read_dir(p.file(".opsdeploy/bundles")).unwrap();
    let bundle = bundles.map(|b| b.unwrap().path()).next().unwrap();
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("scans/fs-0.json")).unwrap()).unwrap();
    assert_eq!(report["SchemaVersion"], 2);
    assert_eq!(report["Results"][0]["Secrets"][0]["RuleID"], "github-pat");
}

#[test]
fn image_report_critical_is_denied_until_the_allowlist_accepts_it_and_documents_fit_the_schema() {
    let health = HealthServer::start(200);
    let scan = "  scan {\n    images    = [\"registry.example.com/base:3.9\"]\n    fail_on   = \"CRITICAL\"\n    allowlist = \".trivyignore.yaml\"\n  }\n";
    let p = scan_project(&health, scan);
    let report = corpus(ALPINE_39).display().to_string();
    let env = [("FAKE_TRIVY_IMAGE_REPORT", report.as_str())];

    write(p.path(), ".trivyignore.yaml", "vulnerabilities: []\n");
    p.run_with("alice@example.com", &["plan", "staging", "--no-color"], &env)
        .code(3)
        .stdout(predicate::str::contains(
            "registry.example.com/base:3.9: CVE-2019-14697 (CRITICAL, at or above fail_on CRITICAL) in musl 1.1.20-r4, fixed in 1.1.20-r5",
        ));

    write(
        p.path(),
        ".trivyignore.yaml",
        "vulnerabilities:\n  - id: CVE-2019-14697\n    statement: musl's affected code is not reachable from the app\n    expired_at: 2099-12-31\n",
    );
    let out = p
        .run_with("alice@example.com", &["plan", "staging", "-q"], &env)
        .success();
    let digest = String::from_utf8_lossy(&out.get_output().stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    let doc = bundle_input(p.path(), &digest);
    assert_eq!(doc["scans"]["allowlist"]["entries"][0]["line"], 2);
    assert_eq!(
        doc["scans"]["reports"][0]["report"]["ArtifactName"],
        "registry.example.com/base:3.9"
    );
    validate(&doc);

    // An entry without its reason is refused before any scan, naming the file.
    write(
        p.path(),
        ".trivyignore.yaml",
        "vulnerabilities:\n  - id: CVE-2019-14697\n    expired_at: 2099-12-31\n",
    );
    p.run_with("alice@example.com", &["plan", "staging"], &env)
        .code(1)
        .stderr(predicate::str::contains(
            "the scan allowlist .trivyignore.yaml is not valid: CVE-2019-14697 (line 2) has no `statement`",
        ));
}

#[test]
fn quickstart_input_document_with_every_section_fits_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let project = dir.path().join("shop");
    crate::support::opsdeploy(cache.path())
        .args(["init"])
        .arg(&project)
        .assert()
        .success();
    // A git revision, a scanned image and a scanned path on top of the
    // template's terraform, migrations, gates and approvals.
    for args in [
        vec!["init", "-q"],
        vec![
            "-c",
            "user.email=t@example.com",
            "-c",
            "user.name=t",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "init",
        ],
    ] {
        assert!(
            std::process::Command::new("git")
                .args(&args)
                .current_dir(&project)
                .status()
                .unwrap()
                .success()
        );
    }
    let hcl = std::fs::read_to_string(project.join("opsdeploy.hcl")).unwrap().replacen(
        "  approval { self_approve = true }",
        "  approval { self_approve = true }\n  scan {\n    images = [\"registry.example.com/base:3.9\"]\n    paths  = [\"scripts\"]\n  }",
        1,
    );
    std::fs::write(project.join("opsdeploy.hcl"), hcl).unwrap();
    let fake = repo().join("tests/fake-bin");
    let path = format!(
        "{}:{}",
        fake.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = crate::support::opsdeploy(cache.path())
        .arg("-C")
        .arg(&project)
        .args(["plan", "staging", "-q"])
        .env("PATH", path)
        .env("OPSDEPLOY_USER", "alice@example.com")
        .env(
            "FAKE_TRIVY_IMAGE_REPORT",
            corpus("trivy-action/test/data/with-trivy-yaml-cfg/report.json"),
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let digest = stdout.split_whitespace().nth(1).unwrap_or_else(|| {
        panic!(
            "no digest: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let doc = bundle_input(&project, digest);
    for section in [
        "terraform",
        "scans",
        "migrations",
        "gates",
        "approvals",
        "git",
        "files",
    ] {
        assert!(!doc[section].is_null(), "{section} missing");
    }
    validate(&doc);
}

/// `opsdeploy ARGS` outside any project, with the fake trivy on PATH
/// replaying `image_report` for image scans.
fn scan_outside(dir: &Path, image_report: &str, args: &[&str]) -> std::process::Output {
    let cache = dir.join(".cache");
    let fake = repo().join("tests/fake-bin");
    crate::support::opsdeploy(&cache)
        .current_dir(dir)
        .args(args)
        .env(
            "PATH",
            format!(
                "{}:{}",
                fake.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("FAKE_TRIVY_IMAGE_REPORT", corpus(image_report))
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn scan_of_an_image_is_judged_by_image_scan_in_every_report_format() {
    let dir = tempfile::tempdir().unwrap();
    let image = "registry.example.com/base:3.9";

    let human = scan_outside(dir.path(), ALPINE_39, &["scan", image]);
    assert_eq!(human.status.code(), Some(3), "{}", text(&human.stderr));
    let out = text(&human.stdout);
    // One aligned row per target under its header, counts as trivy reported.
    let header = out.lines().find(|l| l.contains("critical")).unwrap();
    let row = out.lines().find(|l| l.contains(image)).unwrap();
    assert_eq!(
        header.find("critical").unwrap() + "critical".len(),
        row.find(" 2 ").unwrap() + 2,
        "counts right-aligned under their header:\n{out}"
    );
    assert!(
        crate::support::has_row(&out, "deny image-scan hard-mandatory 1"),
        "{out}"
    );
    assert!(out.contains("CVE-2019-14697 (CRITICAL"), "{out}");
    let err = text(&human.stderr);
    assert!(
        err.contains("error: the scan is blocked by policy: image-scan"),
        "{err}"
    );
    assert!(
        err.contains("hint: rebuild the image with the fixed versions") && err.contains(image),
        "{err}"
    );

    let quiet = scan_outside(dir.path(), ALPINE_39, &["scan", image, "-q"]);
    assert_eq!(text(&quiet.stdout), "blocked\n");

    let json = scan_outside(dir.path(), ALPINE_39, &["scan", image, "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(doc["verdict"], "blocked");
    assert_eq!(doc["scans"][0]["target"], image);
    assert_eq!(doc["scans"][0]["counts"]["critical"], 2);
    assert!(doc["scans"][0].get("file").is_none(), "no bundle: {doc}");
    assert_eq!(doc["policies"][0]["name"], "image-scan");

    let sarif = scan_outside(dir.path(), ALPINE_39, &["scan", image, "--format", "sarif"]);
    let sarif: serde_json::Value = serde_json::from_slice(&sarif.stdout).unwrap();
    let errors = crate::reports::schema_errors(&crate::reports::sarif_validator(), &sarif);
    assert!(errors.is_empty(), "{errors:#?}");
    let tools: Vec<&str> = sarif["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["tool"]["driver"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(tools, ["opsdeploy", "trivy"]);

    // A stricter threshold on the command line counts the MEDIUM ones too.
    let medium = scan_outside(
        dir.path(),
        ALPINE_39,
        &["scan", image, "--fail-on", "medium", "--format", "json"],
    );
    let doc: serde_json::Value = serde_json::from_slice(&medium.stdout).unwrap();
    assert_eq!(doc["policies"][0]["findings"].as_array().unwrap().len(), 3);

    let md = dir.path().join("scan.md");
    let written = scan_outside(
        dir.path(),
        ALPINE_39,
        &[
            "scan",
            image,
            "--format",
            "markdown",
            "-o",
            md.to_str().unwrap(),
        ],
    );
    assert_eq!(written.status.code(), Some(3));
    assert!(written.stdout.is_empty());
    let md = std::fs::read_to_string(md).unwrap();
    // Human text written to a file carries no colour codes.
    let txt = dir.path().join("scan.txt");
    scan_outside(
        dir.path(),
        ALPINE_39,
        &["scan", image, "-o", txt.to_str().unwrap()],
    );
    let txt = std::fs::read_to_string(txt).unwrap();
    assert!(
        txt.contains("image-scan") && !txt.contains('\x1b'),
        "{txt:?}"
    );
    assert!(
        md.contains("| image-scan | hard-mandatory | ❌ deny | 1 |"),
        "{md}"
    );
}

#[test]
fn scan_output_in_every_format_matches_its_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    for format in crate::reports::FORMATS {
        let out = scan_outside(
            dir.path(),
            ALPINE_39,
            &["scan", "registry.example.com/base:3.9", "--format", format],
        );
        assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
        insta::with_settings!({filters => crate::reports::snapshot_filters()}, {
            insta::assert_snapshot!(format!("scan_{format}"), text(&out.stdout));
        });
    }
}

#[test]
fn scan_env_uses_the_environments_paths_allowlist_and_policies_and_never_shows_a_secret() {
    let health = HealthServer::start(200);
    let scan = "  scan {\n    images    = [\"registry.example.com/base:3.9\"]\n    paths     = [\"app\"]\n    allowlist = \".trivyignore.yaml\"\n  }\n";
    let p = scan_project(&health, scan);
    let report = corpus(ALPINE_39).display().to_string();
    let env = [("FAKE_TRIVY_IMAGE_REPORT", report.as_str())];
    write(
        p.path(),
        ".trivyignore.yaml",
        "vulnerabilities:\n  - id: CVE-2019-14697\n    statement: musl's affected code is not reachable from the app\n    expired_at: 2099-12-31\n",
    );
    write(p.path(), "app/run.sh", "#!/bin/sh\nexec ./server\n");
    let out = p
        .run_with(
            USER,
            &["scan", "--env", "staging", "--format", "json"],
            &env,
        )
        .success();
    let doc: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    // Accepted by the allowlist: findings remain visible, nothing blocks.
    assert_eq!(doc["verdict"], "warn");
    let targets: Vec<&str> = doc["scans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["target"].as_str().unwrap())
        .collect();
    assert_eq!(targets, ["registry.example.com/base:3.9", "app"]);
    let hcl = std::fs::read_to_string(p.file("opsdeploy.hcl")).unwrap();
    let images_line = hcl
        .lines()
        .position(|l| l.contains("\"registry.example.com/base:3.9\""))
        .unwrap()
        + 1;
    assert_eq!(doc["scans"][0]["configured_at"], images_line, "{doc}");
    // Scanning stores nothing: no bundle, no audit entry.
    assert!(
        !p.file(".opsdeploy/bundles").exists() || {
            std::fs::read_dir(p.file(".opsdeploy/bundles"))
                .unwrap()
                .next()
                .is_none()
        }
    );
    assert!(
        p.audit_entries().is_empty(),
        "scanning wrote to the audit log"
    );

    let token = "ghp_R2x7Yh3Kq9Lm4Np8Vt1Wz6Bc5Df0Gj2Hs7Qe";
    write(
        p.path(),
        "app/run.sh",
        &format!("#!/bin/sh\nexport GITHUB_PAT={token}\nexec ./server\n"),
    );
    for format in crate::reports::FORMATS {
        let out = p
            .run_with(
                USER,
                &["scan", "--env", "staging", "--format", format],
                &env,
            )
            .code(3);
        let o = out.get_output();
        let all = format!("{}{}", text(&o.stdout), text(&o.stderr));
        assert!(!all.contains(token), "{format} shows the token:\n{all}");
        assert!(all.contains("no-secrets"), "{format}:\n{all}");
    }
}

#[test]
fn scan_refuses_what_it_cannot_do_with_the_way_forward() {
    let dir = tempfile::tempdir().unwrap();
    let nothing = scan_outside(dir.path(), ALPINE_39, &["scan"]);
    assert_eq!(nothing.status.code(), Some(2));
    let err = text(&nothing.stderr);
    assert!(err.contains("error: nothing to scan"), "{err}");
    assert!(
        err.contains("hint: name the images (`opsdeploy scan IMAGE...`)"),
        "{err}"
    );

    let no_project = scan_outside(dir.path(), ALPINE_39, &["scan", "--env", "staging"]);
    assert_eq!(no_project.status.code(), Some(1));
    assert!(text(&no_project.stderr).contains("hint: run `opsdeploy init`"));

    let health = HealthServer::start(200);
    let p = scan_project(&health, "");
    p.run(USER, &["scan", "--env", "staging"])
        .code(2)
        .stderr(predicate::str::contains(
            "error: environment \"staging\" has no scan block",
        ));
    p.run(USER, &["scan", "--env", "prod", "x:1"])
        .code(2)
        .stderr(predicate::str::contains("staging"));

    // trivy answering with JSON that is not a report names what ran.
    let not_a_report = scan_outside(dir.path(), NOT_A_REPORT, &["scan", "x:1"]);
    assert_eq!(not_a_report.status.code(), Some(1));
    let err = text(&not_a_report.stderr);
    assert!(
        err.contains("error: trivy image x:1 is not a trivy JSON report: it has no SchemaVersion"),
        "{err}"
    );
    assert!(err.contains("hint: check the image reference"), "{err}");
}

/// A policy without metadata reads every section, scans included, so it
/// judges a scan; an environment none of whose policies reads scans is judged
/// by the built-in ones rather than passed.
#[test]
fn scan_env_is_judged_by_every_policy_that_may_read_scans_and_never_unjudged() {
    let health = HealthServer::start(200);
    let scan = "  scan {\n    images    = [\"registry.example.com/base:3.9\"]\n    allowlist = \".trivyignore.yaml\"\n  }\n";
    let legacy = "policy \"legacy\" {\n  source      = \"legacy.wasm\"\n  enforcement = \"hard-mandatory\"\n}\n";
    let p = TestProject::new(&with_staging(
        &config(&health.url(), &format!("{}{legacy}", policies())),
        scan,
    ));
    std::fs::write(
        p.file("legacy.wasm"),
        crate::support::abi_module("unreachable", ""),
    )
    .unwrap();
    write(
        p.path(),
        ".trivyignore.yaml",
        "vulnerabilities:\n  - id: CVE-2019-14697\n    statement: not reachable\n    expired_at: 2099-12-31\n",
    );
    let report = corpus(ALPINE_39).display().to_string();
    let env = [("FAKE_TRIVY_IMAGE_REPORT", report.as_str())];
    let out = p
        .run_with(USER, &["scan", "--env", "staging"], &env)
        .code(3);
    let o = out.get_output();
    assert!(
        has_row(&text(&o.stdout), "failed legacy hard-mandatory"),
        "{}",
        text(&o.stdout)
    );
    assert!(
        text(&o.stderr).contains("hint: policy `legacy` could not run"),
        "{}",
        text(&o.stderr)
    );

    // Only protected-deletes (terraform) here, the scan policies turned off:
    // the built-in scan policies judge all the same.
    let off = ["image-scan", "no-secrets"]
        .map(|p| {
            format!(
                "policy \"{p}\" {{\n  enabled = false\n  reason  = \"judged by the fallback\"\n}}\n"
            )
        })
        .concat();
    let bare = TestProject::new(&with_staging(&config(&health.url(), &off), scan));
    write(bare.path(), ".trivyignore.yaml", "vulnerabilities: []\n");
    let out = bare
        .run_with(USER, &["scan", "--env", "staging"], &env)
        .code(3);
    let o = out.get_output();
    assert!(
        text(&o.stderr).contains(
            "no policy of \"staging\" reads scans; judging by the built-in image-scan and no-secrets"
        ),
        "{}",
        text(&o.stderr)
    );
    assert!(has_row(
        &text(&o.stdout),
        "deny image-scan hard-mandatory 1"
    ));
}
