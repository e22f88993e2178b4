//! The helm the tests put on PATH (tests/fake-bin/helm): Helm 4's own engine
//! for charts, helm's command line and output formats, releases kept in files
//! instead of a cluster (tests/helm/README.md). Its contract, command by
//! command, and every chart in the repository rendered and linted by it.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use crate::support::repo;

/// A working directory with the test charts, and the release store beside it.
struct Helm {
    dir: tempfile::TempDir,
}

impl Helm {
    fn new() -> Helm {
        let dir = tempfile::tempdir().unwrap();
        for chart in ["web", "api"] {
            crate::helm_workflow::copy_dir(
                &repo().join("tests/data/charts").join(chart),
                &dir.path().join(chart),
            );
        }
        Helm { dir }
    }

    fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = std::process::Command::new(repo().join("tests/fake-bin/helm"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("FAKE_HELM_STATE", self.dir.path().join("releases"))
            .env_remove("FAKE_HELM_FAIL_UPGRADE")
            .env_remove("FAKE_HELM_FAIL_ROLLBACK");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    /// stdout of a command that must succeed.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run_with(args, &[]);
        assert!(
            out.status.success(),
            "helm {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    /// stderr of a command that must fail with exit 1, as helm does.
    fn err(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = self.run_with(args, env);
        assert_eq!(out.status.code(), Some(1), "helm {args:?} should fail");
        String::from_utf8(out.stderr).unwrap()
    }
}

const DIGEST: &str =
    "image.digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn statuses(history: &Value) -> Vec<(u64, String, String)> {
    history
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["revision"].as_u64().unwrap(),
                r["status"].as_str().unwrap().to_string(),
                r["description"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn test_helm_keeps_every_revision_with_the_manifest_helm_rendered_for_it() {
    let h = Helm::new();
    let upgrade = |extra: &[&str]| {
        let mut args = vec!["upgrade", "--install", "api", "api", "--atomic", "--wait"];
        args.extend(["--timeout", "2m", "--namespace", "shop", "--set", DIGEST]);
        args.extend(extra);
        h.ok(&args)
    };
    let first = upgrade(&[]);
    assert!(
        first.starts_with("Release \"api\" does not exist. Installing it now.\nNAME: api\n"),
        "{first}"
    );
    assert!(first.contains("STATUS: deployed\nREVISION: 1\n"), "{first}");
    // NOTES.txt, rendered by Helm.
    assert!(
        first.contains("NOTES:\napi runs 2 replicas of registry.example.com/shop/api@sha256:0123")
    );
    let second = upgrade(&["--set", "replicas=3"]);
    assert!(second.starts_with("Release \"api\" has been upgraded. Happy Helming!\n"));

    let history = h.json(&["history", "api", "-n", "shop", "-o", "json"]);
    assert_eq!(
        statuses(&history),
        [
            (1, "superseded".into(), "Install complete".into()),
            (2, "deployed".into(), "Upgrade complete".into()),
        ]
    );
    assert_eq!(history[1]["chart"], "api-0.3.0");
    assert_eq!(history[1]["app_version"], "2.1.0");
    // What the user passed, and with --all what the chart made of it.
    let values = h.json(&["get", "values", "api", "-n", "shop", "-o", "json"]);
    assert_eq!(values["replicas"], 3);
    assert_eq!(values.get("resources"), None);
    let all = h.json(&["get", "values", "api", "-n", "shop", "--all", "-o", "json"]);
    assert_eq!(all["resources"]["limits"]["memory"], "256Mi");
    assert!(
        h.ok(&["get", "values", "api", "-n", "shop"])
            .starts_with("USER-SUPPLIED VALUES:\n")
    );
    let manifest = h.ok(&["get", "manifest", "api", "-n", "shop"]);
    assert!(manifest.contains("# Source: api/templates/deployment.yaml\n"));
    assert!(manifest.contains("  replicas: 3\n"));
    // Hooks run at install time; they are not part of the release's manifest.
    assert!(!manifest.contains("migrate-job"));
    let old = h.ok(&["get", "manifest", "api", "-n", "shop", "--revision", "1"]);
    assert!(old.contains("  replicas: 2\n"));

    let listed = h.json(&["list", "-n", "shop", "-o", "json"]);
    assert_eq!(listed[0]["name"], "api");
    assert_eq!(listed[0]["revision"], "2");
    assert_eq!(listed[0]["status"], "deployed");
    assert_eq!(h.json(&["list", "-o", "json"]), Value::Array(vec![]));
    assert_eq!(h.json(&["list", "-A", "-o", "json"]), listed);
    let status = h.json(&["status", "api", "-n", "shop", "-o", "json"]);
    assert_eq!(status["version"], 2);
    assert_eq!(status["info"]["status"], "deployed");
    assert!(
        h.ok(&["status", "api", "-n", "shop"])
            .contains("REVISION: 2\n")
    );

    // Rollback: a new revision carrying revision 1's manifest and values.
    assert_eq!(
        h.ok(&[
            "rollback",
            "api",
            "1",
            "-n",
            "shop",
            "--wait",
            "--timeout",
            "60s"
        ]),
        "Rollback was a success! Happy Helming!\n"
    );
    assert_eq!(h.ok(&["get", "manifest", "api", "-n", "shop"]), old);
    assert_eq!(
        h.json(&["get", "values", "api", "-n", "shop", "-o", "json"])["replicas"],
        Value::Null
    );

    // Uninstalled with its history kept: listed only with --all, and it can
    // be rolled back into service.
    assert_eq!(
        h.ok(&["uninstall", "api", "-n", "shop", "--keep-history", "--wait"]),
        "release \"api\" uninstalled\n"
    );
    assert_eq!(
        h.json(&["list", "-n", "shop", "-o", "json"]),
        Value::Array(vec![])
    );
    assert_eq!(
        h.json(&["list", "-n", "shop", "-a", "-o", "json"])[0]["status"],
        "uninstalled"
    );
    h.ok(&["rollback", "api", "2", "-n", "shop"]);
    assert_eq!(
        statuses(&h.json(&["history", "api", "-n", "shop", "-o", "json"]))[3],
        (4, "deployed".into(), "Rollback to 2".into())
    );
    h.ok(&["uninstall", "api", "-n", "shop"]);
    assert!(
        h.err(&["history", "api", "-n", "shop", "-o", "json"], &[])
            .contains("Error: release: not found")
    );
}

#[test]
fn an_upgrade_that_never_becomes_ready_is_undone_as_rollback_on_failure_says() {
    let h = Helm::new();
    let fail = [("FAKE_HELM_FAIL_UPGRADE", "other,web")];
    let upgrade = [
        "upgrade",
        "--install",
        "web",
        "web",
        "-n",
        "staging",
        "--wait",
    ];
    // A first install: uninstalled again, nothing left.
    let err = h.err(&[&upgrade[..], &["--atomic"]].concat(), &fail);
    assert_eq!(
        err,
        "Flag --atomic has been deprecated, use --rollback-on-failure instead\n\
         Error: release web failed, and has been uninstalled due to rollback-on-failure being set: context deadline exceeded\n"
    );
    h.err(&["history", "web", "-n", "staging"], &[]);
    // An upgrade: recorded as failed, then rolled back by helm.
    h.ok(&upgrade);
    let err = h.err(
        &[
            &upgrade[..],
            &["--rollback-on-failure", "--set", "replicas=5"],
        ]
        .concat(),
        &fail,
    );
    assert!(
        err.contains("UPGRADE FAILED: release web failed, and has been rolled back"),
        "{err}"
    );
    // Without rollback-on-failure the failed revision stays the last one.
    let err = h.err(&[&upgrade[..], &["--set", "replicas=6"]].concat(), &fail);
    assert_eq!(err, "Error: UPGRADE FAILED: context deadline exceeded\n");
    assert_eq!(
        statuses(&h.json(&["history", "web", "-n", "staging", "-o", "json"])),
        [
            (1, "superseded".into(), "Install complete".into()),
            (
                2,
                "failed".into(),
                "Upgrade \"web\" failed: context deadline exceeded".into()
            ),
            (3, "deployed".into(), "Rollback to 1".into()),
            (
                4,
                "failed".into(),
                "Upgrade \"web\" failed: context deadline exceeded".into()
            ),
        ]
    );
    let err = h.err(
        &["rollback", "web", "1", "-n", "staging"],
        &[("FAKE_HELM_FAIL_ROLLBACK", "1")],
    );
    assert!(err.contains("context deadline exceeded"), "{err}");
}

#[test]
fn test_helm_refuses_what_helm_refuses_with_helms_words() {
    let h = Helm::new();
    for (args, expected) in [
        (
            &["upgrade", "web", "web"][..],
            "Error: UPGRADE FAILED: \"web\" has no deployed releases\n",
        ),
        (
            &["upgrade", "--install", "web", "web", "--timeout", "soon"],
            "Error: invalid argument \"soon\" for \"--timeout\" flag: time: invalid duration \"soon\"\n",
        ),
        (
            &["template", "web", "web", "--frobnicate"],
            "Error: unknown flag: --frobnicate\n",
        ),
        (
            &["template", "web", "web", "-f", "missing.yaml"],
            "Error: open missing.yaml: no such file or directory\n",
        ),
        (
            &["template", "web", "nowhere"],
            "Error: path \"nowhere\" not found\n",
        ),
        (&["history", "web"], "Error: release: not found\n"),
        (
            &["uninstall", "web"],
            "Error: uninstall: Release not loaded: web: release: not found\n",
        ),
        (
            &["frobnicate"],
            "Error: unknown command \"frobnicate\" for \"helm\"\n",
        ),
    ] {
        assert_eq!(h.err(args, &[]), expected, "helm {args:?}");
    }
    // A template error is Helm's own message, naming the template.
    let err = h.err(&["template", "api", "api"], &[]);
    assert!(
        err.starts_with("Error: execution error at (api/templates/")
            && err.contains("image.digest is required: pin the image by digest"),
        "{err}"
    );
}

#[test]
fn lint_show_version_and_dependency_build_are_helms_own() {
    let h = Helm::new();
    assert_eq!(
        h.ok(&["lint", "web"]),
        "==> Linting web\n[INFO] Chart.yaml: icon is recommended\n\n1 chart(s) linted, 0 chart(s) failed\n"
    );
    std::fs::write(
        h.dir.path().join("web/templates/broken.yaml"),
        "{{ .Values.x | nosuch }}\n",
    )
    .unwrap();
    let out = h.run_with(&["lint", "web"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("[ERROR] templates/: parse error at (web/templates/broken.yaml:1): function \"nosuch\" not defined"),
        "{stdout}"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Error: 1 chart(s) linted, 1 chart(s) failed\n"
    );
    std::fs::remove_file(h.dir.path().join("web/templates/broken.yaml")).unwrap();

    let chart = h.ok(&["show", "chart", "api"]);
    assert!(
        chart.contains("name: api\n") && chart.contains("version: 0.3.0\n"),
        "{chart}"
    );
    // The file as written, comments kept, and the newline helm prints after it.
    assert_eq!(
        h.ok(&["show", "values", "api"]),
        std::fs::read_to_string(repo().join("tests/data/charts/api/values.yaml")).unwrap() + "\n"
    );
    let version = h.ok(&["version", "--short"]);
    assert!(
        version.starts_with("v4.") && version.ends_with('\n'),
        "{version}"
    );

    // A chart with a local dependency: built into charts/, then rendered with it.
    let umbrella = h.dir.path().join("api/Chart.yaml");
    let mut text = std::fs::read_to_string(&umbrella).unwrap();
    text.push_str(
        "dependencies:\n  - name: web\n    version: 1.2.0\n    repository: file://../web\n",
    );
    std::fs::write(&umbrella, text).unwrap();
    h.ok(&["dependency", "build", "api"]);
    assert!(h.dir.path().join("api/charts/web-1.2.0.tgz").is_file());
    let rendered = h.ok(&["template", "api", "api", "--set", DIGEST]);
    assert!(rendered.contains("# Source: api/charts/web/templates/deployment.yaml\n"));
}

/// Every Chart.yaml in the repository (templates, test charts), except under
/// target/ and .tools/.
fn charts(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let path = e.path();
        let name = e.file_name();
        if [".git", "target", ".tools"].iter().any(|s| name == *s) {
            continue;
        }
        if path.is_dir() {
            charts(&path, out);
        } else if name == "Chart.yaml" {
            out.push(dir.to_path_buf());
        }
    }
}

/// Each chart with its defaults and with each values-*.yaml beside it (or the
/// values its tests give it) is linted and rendered by Helm.
#[test]
fn every_chart_in_the_repository_lints_and_renders_with_helm() {
    let mut found = Vec::new();
    charts(&repo(), &mut found);
    found.sort();
    let shown: Vec<_> = found
        .iter()
        .map(|c| c.strip_prefix(repo()).unwrap().display().to_string())
        .collect();
    assert_eq!(
        shown,
        [
            "infra-templates/k8s-app/charts/app",
            "tests/data/charts/api",
            "tests/data/charts/web"
        ]
    );
    let h = Helm::new();
    for chart in &found {
        let mut variants: Vec<Vec<String>> = std::fs::read_dir(chart)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("values-") && n.ends_with(".yaml"))
            .map(|n| vec!["--values".into(), chart.join(n).display().to_string()])
            .collect();
        if variants.is_empty() {
            // The api chart requires a digest, as its tests give it.
            let needs_digest = chart.ends_with("api");
            variants.push(if needs_digest {
                vec!["--set".into(), DIGEST.into()]
            } else {
                vec![]
            });
        }
        for values in variants {
            let chart = chart.display().to_string();
            let lint = [
                &["lint".to_string(), chart.clone(), "--strict".into()][..],
                &values,
            ]
            .concat();
            h.ok(&lint.iter().map(String::as_str).collect::<Vec<_>>());
            let template = [
                &["template".to_string(), "r".into(), chart.clone()][..],
                &values,
            ]
            .concat();
            let yaml = h.ok(&template.iter().map(String::as_str).collect::<Vec<_>>());
            let manifests = opsdeploy::adapters::helm::parse_manifests("r", &yaml).unwrap();
            assert!(!manifests.is_empty(), "{chart} {values:?} rendered nothing");
        }
    }
}
