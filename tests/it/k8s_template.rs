//! `opsdeploy init --template k8s-app`, then its CI as generated
//! (.github/workflows/deploy.yml, a push to main): every job on a fresh
//! checkout, as throwaway runners have it, with team mode and terraform's
//! state in a PostgreSQL server, the test helm (Helm's engine; its release
//! store stands in for the cluster) and trivy replaying recorded reports. The
//! app's hosts are a local server here. Then production is promoted as a person
//! would: refused only for the reason the template documents (phase S09), and
//! at S10 its manifests, rendered by Helm, pass every built-in policy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::helm_workflow::copy_dir;
use crate::support::{corpus, create_database, has_row, repo, test_server};
use crate::workflow::HealthServer;

/// The image the template's chart and scan blocks pin.
const IMAGE: &str = "registry.example.com/team/app@sha256:d37360cc0b1806e4bb676c4e226c9bf8a5dba79a8d9f348fd64a8e643fdf5db0";

/// The actions whose effect the test provides: a fresh checkout, the tools on
/// PATH; uploads keep nothing here.
const ACTIONS: &[&str] = &[
    "actions/checkout@",
    "hashicorp/setup-terraform@",
    "azure/setup-helm@",
    "aquasecurity/setup-trivy@",
    "github/codeql-action/upload-sarif@",
    "actions/upload-artifact@",
];

/// Runs a workflow's jobs the way GitHub runs them on a push to main: `run`
/// steps in `bash -eo pipefail` with the workflow's, job's and step's `env`,
/// `${{ }}` expressions from `context` and earlier steps' outputs, `if:`
/// conditions evaluated. An expression or action it does not know fails the
/// test, so the template cannot grow a step this test does not run.
struct Ci {
    workflow: Value,
    /// `secrets.*`, `vars.*`, `github.*`.
    context: BTreeMap<&'static str, String>,
    /// The tools and their test settings.
    env: Vec<(String, String)>,
}

/// What a job did: each step's name and whether it ran and passed (`None`:
/// skipped by its condition), and the output of the steps that failed.
struct JobRun {
    steps: Vec<(String, Option<bool>)>,
    failures: String,
}

impl JobRun {
    fn outcome(&self, step: &str) -> Option<bool> {
        self.steps
            .iter()
            .find(|(name, _)| name == step)
            .unwrap_or_else(|| panic!("no step {step}"))
            .1
    }
}

type Outputs = BTreeMap<String, BTreeMap<String, String>>;

impl Ci {
    fn value(&self, expr: &str, outputs: &Outputs) -> String {
        let expr = expr.trim();
        if let Some(rest) = expr.strip_prefix("steps.") {
            let (id, key) = rest
                .split_once(".outputs.")
                .unwrap_or_else(|| panic!("unsupported expression {expr}"));
            return outputs
                .get(id)
                .and_then(|o| o.get(key))
                .cloned()
                .unwrap_or_default();
        }
        self.context
            .get(expr)
            .cloned()
            .unwrap_or_else(|| panic!("the workflow uses `{expr}`, which this test does not model"))
    }

    /// `${{ expr }}` replaced in `text`.
    fn substitute(&self, text: &str, outputs: &Outputs) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${{") {
            let end = rest[start..].find("}}").expect("closed expression") + start;
            out.push_str(&rest[..start]);
            out.push_str(&self.value(&rest[start + 3..end], outputs));
            rest = &rest[end + 2..];
        }
        out + rest
    }

    /// An `if:` of `&&`-joined terms: `always()`, `success()`, `failure()`,
    /// `EXPR == 'literal'`, `EXPR != 'literal'`.
    fn condition(&self, cond: Option<&Value>, outputs: &Outputs, failed: bool) -> bool {
        let Some(cond) = cond.and_then(Value::as_str) else {
            return !failed;
        };
        let cond = cond.trim().trim_start_matches("${{").trim_end_matches("}}");
        let mut explicit_status = false;
        let holds = cond.split("&&").map(str::trim).all(|term| match term {
            "always()" => {
                explicit_status = true;
                true
            }
            "success()" => {
                explicit_status = true;
                !failed
            }
            "failure()" => {
                explicit_status = true;
                failed
            }
            _ => {
                let (lhs, rhs, equal) = match term.split_once("!=") {
                    Some((l, r)) => (l, r, false),
                    None => {
                        let (l, r) = term
                            .split_once("==")
                            .unwrap_or_else(|| panic!("unsupported condition {term}"));
                        (l, r, true)
                    }
                };
                let literal = rhs.trim().trim_matches('\'');
                (self.value(lhs, outputs) == literal) == equal
            }
        });
        holds && (explicit_status || !failed)
    }

    fn env_of(&self, node: &Value, outputs: &Outputs) -> Vec<(String, String)> {
        node["env"]
            .as_object()
            .map(|env| {
                env.iter()
                    .map(|(k, v)| (k.clone(), self.substitute(v.as_str().unwrap(), outputs)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Runs job `name` in `workspace`, a fresh copy of `checkout`.
    fn job(&self, name: &str, checkout: &Path, workspace: &Path) -> JobRun {
        let job = &self.workflow["jobs"][name];
        let mut outputs = Outputs::new();
        let mut run = JobRun {
            steps: Vec::new(),
            failures: String::new(),
        };
        assert!(
            self.condition(job.get("if"), &outputs, false),
            "job {name} does not run on a push to main"
        );
        let mut env = self.env_of(&self.workflow, &outputs);
        env.extend(self.env_of(job, &outputs));
        let mut failed = false;
        for (i, step) in job["steps"].as_array().unwrap().iter().enumerate() {
            let title = step["name"]
                .as_str()
                .or(step["uses"].as_str())
                .unwrap_or("step")
                .to_string();
            if !self.condition(step.get("if"), &outputs, failed) {
                run.steps.push((title, None));
                continue;
            }
            if let Some(action) = step["uses"].as_str() {
                assert!(
                    ACTIONS.iter().any(|a| action.starts_with(a)),
                    "the workflow uses {action}, which this test does not stand in for"
                );
                if action.starts_with("actions/checkout@") {
                    copy_dir(checkout, workspace);
                }
                run.steps.push((title, Some(true)));
                continue;
            }
            let script = self.substitute(step["run"].as_str().expect("a run step"), &outputs);
            let output_file = workspace.join(format!("../github-output-{name}-{i}"));
            std::fs::write(&output_file, "").unwrap();
            let mut cmd = std::process::Command::new("bash");
            cmd.args(["--noprofile", "--norc", "-eo", "pipefail", "-c", &script])
                .current_dir(workspace)
                .env("GITHUB_OUTPUT", &output_file)
                .env_remove("OPSDEPLOY_USER")
                .env_remove("OPSDEPLOY_LOG");
            for (k, v) in self
                .env
                .iter()
                .cloned()
                .chain(env.iter().cloned())
                .chain(self.env_of(step, &outputs))
            {
                cmd.env(k, v);
            }
            let out = cmd.output().unwrap();
            let passed = out.status.success();
            if !passed {
                failed = true;
                run.failures.push_str(&format!(
                    "step {title} (exit {:?}):\n{}{}\n",
                    out.status.code(),
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            if let Some(id) = step["id"].as_str() {
                let written = std::fs::read_to_string(&output_file).unwrap();
                outputs.insert(
                    id.to_string(),
                    written
                        .lines()
                        .filter_map(|l| l.split_once('='))
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                );
            }
            run.steps.push((title, Some(passed)));
        }
        run
    }
}

/// `opsdeploy init --template k8s-app`, with its hosts pointed at `app`.
fn generated_project(tmp: &Path, app: &HealthServer) -> PathBuf {
    let dir = tmp.join("repository");
    let cache = tmp.join("cache");
    crate::support::opsdeploy(&cache)
        .arg("init")
        .arg(&dir)
        .args(["--template", "k8s-app"])
        .assert()
        .success();
    for file in [
        "infra/modules/app/main.tf",
        "infra/staging/backend.tf",
        "charts/app/values-staging.yaml",
        "charts/app/values-production.yaml",
        "charts/app/templates/ingress.yaml",
        "docker-compose.prod.yml",
        "docs/ROLLBACK.md",
        "SECURITY_CHECKLIST.md",
        "PROJECT_STATE.md",
        "policies/replica-floor/src/lib.rs",
        "policies/replica-floor/vendor/policy-sdk/Cargo.toml",
        ".github/workflows/deploy.yml",
    ] {
        assert!(dir.join(file).is_file(), "{file} missing");
    }
    // Nothing the generated project would download comes from a guessed address.
    let install = std::fs::read_to_string(dir.join("scripts/install-tools.sh")).unwrap();
    assert!(!install.contains("http"), "{install}");
    // DNS: the app's hosts are a local server here.
    let local = format!("http://127.0.0.1:{}", app.port);
    let hcl = std::fs::read_to_string(dir.join("opsdeploy.hcl"))
        .unwrap()
        .replace("https://app.staging.example.com", &local)
        .replace(
            "https://{color}.app.example.com",
            &format!("{local}/{{color}}"),
        )
        .replace("https://app.example.com", &local)
        // The staging monitor window, shortened for the test.
        .replace(
            "window           = \"5m\"",
            "window           = \"1s\"\n    interval         = \"1s\"",
        );
    assert!(!hcl.contains("example.com/healthz"), "{hcl}");
    std::fs::write(dir.join("opsdeploy.hcl"), hcl).unwrap();
    dir
}

/// trivy's answers: a clean report for the pinned image, nothing in the paths.
fn trivy_reports(dir: &Path) {
    std::fs::create_dir_all(dir.join("image")).unwrap();
    std::fs::create_dir_all(dir.join("fs")).unwrap();
    std::fs::copy(
        corpus("trivy/integration/testdata/alpine-39-skip.json.golden"),
        dir.join(format!("image/{}.json", IMAGE.replace(['/', ':'], "_"))),
    )
    .unwrap();
    for d in ["charts", "infra"] {
        std::fs::write(
            dir.join(format!("fs/{d}.json")),
            format!(r#"{{"SchemaVersion":2,"ArtifactName":"{d}","ArtifactType":"filesystem"}}"#),
        )
        .unwrap();
    }
}

#[test]
fn k8s_app_template_ci_passes_as_generated_and_production_is_held_only_by_its_phase() {
    let Some(admin) = test_server() else {
        return;
    };
    let database = create_database(&admin);
    let tmp = tempfile::tempdir().unwrap();
    let app = HealthServer::start(200);
    let repository = generated_project(tmp.path(), &app);
    let reports = tmp.path().join("trivy");
    trivy_reports(&reports);

    let bin = assert_cmd::cargo::cargo_bin("opsdeploy");
    let path = format!(
        "{}:{}:{}",
        bin.parent().unwrap().display(),
        repo().join("tests/fake-bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let setting = |k: &str, v: &Path| (k.to_string(), v.display().to_string());
    let ci = Ci {
        workflow: serde_saphyr::from_str(
            &std::fs::read_to_string(repository.join(".github/workflows/deploy.yml")).unwrap(),
        )
        .unwrap(),
        context: BTreeMap::from([
            ("secrets.OPSDEPLOY_DATABASE_URL", database.clone()),
            (
                "secrets.OPSDEPLOY_BUNDLE_KEY",
                crate::workflow::TEST_BUNDLE_KEY.into(),
            ),
            // The test server speaks no TLS; terraform's driver asks for it by default.
            (
                "secrets.TERRAFORM_PG_CONN_STR",
                format!("{database}?sslmode=disable"),
            ),
            ("vars.OPSDEPLOY_INSTALL", String::new()),
            ("github.ref", "refs/heads/main".into()),
            ("github.event_name", "push".into()),
            ("github.sha", "5f1c0a2e".into()),
        ]),
        env: vec![
            ("PATH".into(), path),
            ("CI".into(), "true".into()),
            ("NO_COLOR".into(), "1".into()),
            setting("FAKE_HELM_STATE", &tmp.path().join("cluster")),
            setting("FAKE_TRIVY_REPORTS", &reports),
            setting("OPSDEPLOY_CACHE_DIR", &tmp.path().join("cache")),
            // The policy crate's wasm build, shared with the scaffold test.
            setting(
                "CARGO_TARGET_DIR",
                &repo().join("target/test-policy-crates"),
            ),
        ],
    };

    let plan_runner = tmp.path().join("runner-plan/work");
    let plan = ci.job("plan", &repository, &plan_runner);
    assert!(plan.failures.is_empty(), "{}", plan.failures);
    assert_eq!(plan.outcome("Reports"), Some(true));
    assert_eq!(plan.outcome("Comment the plan on the pull request"), None);
    assert_eq!(plan.outcome("Refuse a blocked plan"), Some(true));
    let sarif: Value =
        serde_json::from_slice(&std::fs::read(plan_runner.join("opsdeploy.sarif")).unwrap())
            .unwrap();
    assert_eq!(sarif["version"], "2.1.0");

    // A new runner: it knows nothing but what PostgreSQL keeps.
    let deploy_runner = tmp.path().join("runner-deploy/work");
    let deploy = ci.job("deploy-staging", &repository, &deploy_runner);
    assert!(deploy.failures.is_empty(), "{}", deploy.failures);
    let revisions: Vec<Value> = serde_json::from_slice(
        &std::fs::read(tmp.path().join("cluster/app-staging/app.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(revisions.last().unwrap()["status"], "deployed");
    assert!(
        revisions.last().unwrap()["manifest"]
            .as_str()
            .unwrap()
            .contains(&format!("image: {IMAGE}")),
    );

    // A person promotes, from a checkout of their own.
    let laptop = tmp.path().join("laptop");
    copy_dir(&repository, &laptop);
    let promote = || {
        let mut cmd = crate::support::opsdeploy(&tmp.path().join("cache"));
        cmd.arg("-C")
            .arg(&laptop)
            .args(["promote", "staging", "production"])
            .env("OPSDEPLOY_USER", "dev@example.com")
            .env("OPSDEPLOY_DATABASE_URL", &database)
            .env("OPSDEPLOY_BUNDLE_KEY", crate::workflow::TEST_BUNDLE_KEY)
            .env("PG_CONN_STR", format!("{database}?sslmode=disable"));
        for (k, v) in &ci.env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let out = promote();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(stderr.contains("is blocked by policy: gates\n"), "{stderr}");
    assert!(
        stdout.contains("the project is in phase S09; production needs phase S10 or later"),
        "{stdout}"
    );
    for passing in ["no-secrets", "protected-deletes", "image-scan", "promotion"] {
        assert!(has_row(&stdout, &format!("pass {passing}")), "{stdout}");
    }

    let state = laptop.join("PROJECT_STATE.md");
    let text = std::fs::read_to_string(&state).unwrap();
    std::fs::write(&state, text.replace("Phase: S09", "Phase: S10")).unwrap();
    let out = promote();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for passing in [
        "no-secrets",
        "protected-deletes",
        "image-scan",
        "promotion",
        "gates",
    ] {
        assert!(has_row(&stdout, &format!("pass {passing}")), "{stdout}");
    }
    // What production will run, as Helm rendered it for the policies.
    let input: Value = std::fs::read_dir(laptop.join(".opsdeploy/bundles"))
        .unwrap()
        .flatten()
        .map(|b| {
            serde_json::from_slice(&std::fs::read(b.path().join("input.json")).unwrap()).unwrap()
        })
        .find(|doc: &Value| doc["environment"]["name"] == "production")
        .expect("the production bundle");
    let manifests = input["helm"][0]["manifests"].as_array().unwrap();
    let deployment = manifests
        .iter()
        .find(|m| m["kind"] == "Deployment")
        .unwrap();
    assert_eq!(
        deployment["object"]["spec"]["template"]["spec"]["containers"][0]["image"],
        IMAGE
    );
    assert_eq!(deployment["object"]["spec"]["replicas"], 3);
    let ingress = manifests.iter().find(|m| m["kind"] == "Ingress").unwrap();
    assert_eq!(
        ingress["object"]["spec"]["rules"][0]["host"],
        "app.example.com"
    );
}
