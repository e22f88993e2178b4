//! The deploy workflow end to end, driving the real binary with real
//! terraform (terraform_data, local backend) and a real local HTTP server for
//! health checks.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use predicates::prelude::*;

use crate::support::{Backend, opsdeploy, row};

/// A health endpoint answering every request with one status.
pub struct HealthServer {
    pub port: u16,
    status: Arc<AtomicU16>,
}

impl HealthServer {
    pub fn start(status: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let status = Arc::new(AtomicU16::new(status));
        let shared = status.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut stream = stream;
                let mut buf = [0u8; 1024];
                let n = stream.read(&mut buf).unwrap_or(0);
                let code = shared.load(Ordering::Relaxed);
                // A monitor's error-rate query reads a number.
                let body = if String::from_utf8_lossy(&buf[..n]).contains("error-rate") {
                    "0"
                } else {
                    "ok"
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        HealthServer { port, status }
    }

    /// Answers `status` from now on.
    pub fn set(&self, status: u16) {
        self.status.store(status, Ordering::Relaxed);
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/healthz", self.port)
    }
}

/// The team's bundle key in the tests (`openssl rand -hex 32` makes a real one).
pub const TEST_BUNDLE_KEY: &str =
    "5f1c0e7a9b2d4c6e8f0a1b3c5d7e9f10213243546576879809a1b2c3d4e5f607";

/// A project in a temp dir: terraform_data infrastructure and opsdeploy.hcl.
pub struct TestProject {
    pub dir: tempfile::TempDir,
    pub cache: tempfile::TempDir,
    pub backend: Backend,
}

pub const MAIN_TF: &str = r#"
variable "engine_version" {
  type    = number
  default = 15
}
resource "terraform_data" "database" {
  triggers_replace = [var.engine_version]
  input = { name = "orders" }
}
resource "terraform_data" "web" {
  input = { image = "registry.example.com/shop/web:1.4.2", replicas = 2 }
}
"#;

impl TestProject {
    /// A project keeping its state in files (the default backend).
    pub fn new(config: &str) -> Self {
        Self::with_backend(config, Backend::File)
    }

    /// A project whose opsdeploy.hcl selects `backend`.
    pub fn with_backend(config: &str, backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("infra")).unwrap();
        std::fs::write(dir.path().join("infra/main.tf"), MAIN_TF).unwrap();
        std::fs::write(
            dir.path().join("opsdeploy.hcl"),
            format!("{config}{}", backend.state_block()),
        )
        .unwrap();
        TestProject {
            dir,
            cache: tempfile::tempdir().unwrap(),
            backend,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// PATH with the fake helm first, its state kept in the project; the
    /// store's settings.
    fn tool_env(&self) -> Vec<(&'static str, String)> {
        let fake = crate::support::repo().join("tests/fake-bin");
        let mut env = vec![
            (
                "PATH",
                format!(
                    "{}:{}",
                    fake.display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            ),
            (
                "FAKE_HELM_STATE",
                self.file(".fake-helm").display().to_string(),
            ),
            // Team mode seals bundle contents; the file store ignores the key.
            ("OPSDEPLOY_BUNDLE_KEY", TEST_BUNDLE_KEY.to_string()),
        ];
        env.extend(self.backend.env());
        env
    }

    /// `opsdeploy -C PROJECT ARGS` as `user`.
    pub fn run(&self, user: &str, args: &[&str]) -> assert_cmd::assert::Assert {
        self.run_with(user, args, &[])
    }

    /// Like [`Self::run`] with extra environment variables.
    pub fn run_with(
        &self,
        user: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> assert_cmd::assert::Assert {
        let mut cmd = opsdeploy(self.cache.path());
        cmd.arg("-C")
            .arg(self.path())
            .args(args)
            .env("OPSDEPLOY_USER", user);
        for (k, v) in self.tool_env() {
            cmd.env(k, v);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.assert()
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.file(rel)).unwrap_or_default()
    }

    /// `opsdeploy -C PROJECT ARGS` as `user`, running in the background.
    pub fn spawn(&self, user: &str, args: &[&str]) -> std::process::Child {
        self.command(user, args).spawn().unwrap()
    }

    /// `opsdeploy -C PROJECT ARGS` as `user`, to start as the test needs.
    pub fn command(&self, user: &str, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("opsdeploy"));
        cmd.arg("-C")
            .arg(self.path())
            .args(args)
            .env("OPSDEPLOY_USER", user)
            .env("OPSDEPLOY_CACHE_DIR", self.cache.path())
            .env("NO_COLOR", "1")
            .envs(self.tool_env());
        cmd
    }

    /// The audit log's entries, as `opsdeploy audit log --format json` prints them.
    pub fn audit_entries(&self) -> Vec<serde_json::Value> {
        let out = self
            .run("auditor@example.com", &["audit", "log", "--format", "json"])
            .success()
            .get_output()
            .stdout
            .clone();
        serde_json::from_slice(&out).unwrap()
    }

    /// Waits (up to 30 s) until the audit log satisfies `ready`, whatever the backend.
    pub fn wait_for_audit(&self, ready: impl Fn(&[serde_json::Value]) -> bool) {
        for _ in 0..150 {
            if ready(&self.audit_entries()) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        panic!("the audit log never became ready");
    }

    /// Waits (up to 30 s) until `opsdeploy status ENV` prints `text`.
    pub fn wait_for_status(&self, env: &str, text: &str) {
        for _ in 0..150 {
            let out = self
                .run("auditor@example.com", &["status", env])
                .get_output()
                .stdout
                .clone();
            if String::from_utf8_lossy(&out).contains(text) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        panic!("`opsdeploy status {env}` never showed {text:?}");
    }

    /// Plans `env` and approves it as the same user (self-approval).
    pub fn plan_approved(&self, user: &str, env: &str) -> String {
        let digest = self.plan(user, env);
        self.run(user, &["approve", env, "--plan", &digest])
            .success();
        digest
    }

    /// The digest the last `plan` printed on stdout with `-q`.
    pub fn plan(&self, user: &str, env: &str) -> String {
        let out = self
            .run(user, &["plan", env, "-q"])
            .success()
            .get_output()
            .stdout
            .clone();
        String::from_utf8(out)
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string()
    }
}

/// Built-in policies the workflow tests turn off (plan, approve and apply are
/// what they exercise), as a project would: with a reason.
pub const OFF_IN_WORKFLOW_TESTS: &str = r#"policy "gates" {
  enabled = false
  reason  = "workflow tests have no SDLC state; gates.rs tests the gates"
}
policy "promotion" {
  enabled = false
  reason  = "workflow tests plan production on its own; promotion.rs tests promotion"
}
"#;

/// Adds `lines` to the staging environment of a [`config`].
pub fn with_staging(config: &str, lines: &str) -> String {
    config.replace(
        "  approval { self_approve = true }",
        &format!("  approval {{ self_approve = true }}\n{lines}"),
    )
}

pub fn config(health_url: &str, extra_policy: &str) -> String {
    format!(
        r#"
project = "shop"

policy "protected-deletes" {{
  builtin     = true
  enforcement = "hard-mandatory"
}}
{OFF_IN_WORKFLOW_TESTS}{extra_policy}

environment "staging" {{
  terraform {{ dir = "infra" }}
  health {{
    url      = "{health_url}"
    timeout  = "3s"
    interval = "200ms"
  }}
  approval {{ self_approve = true }}
}}

environment "production" {{
  promote_from = "staging"
  terraform {{ dir = "infra" }}
  approval {{
    approvers = ["alice@example.com", "bob@example.com"]
    min       = 1
  }}
  rollback {{ runbook = "docs/ROLLBACK.md" }}
}}
"#
    )
}

on_both_backends! {
    fn staging_plan_self_approve_apply_succeeds_and_is_recorded(backend) {
        let health = HealthServer::start(200);
        let p = TestProject::with_backend(&config(&health.url(), ""), backend);
        p.run("alice@example.com", &["plan", "staging"])
            .success()
            .stdout(predicate::str::contains(
                "2 to add, 0 to change, 0 to replace, 0 to destroy",
            ))
            .stdout(predicate::str::contains("hard-mandatory"))
            .stderr(predicate::str::contains(
                "next: opsdeploy approve staging --plan ",
            ));
        p.run(
            "alice@example.com",
            &["approve", "staging", "--comment", "first deploy"],
        )
        .success()
        .stdout(predicate::str::contains("(1 of 1 approvals)"));
        p.run("alice@example.com", &["apply", "staging", "--yes"])
            .success()
            .stdout(row("ok terraform"))
            .stdout(predicate::str::contains("answered 200"));
        p.run("alice@example.com", &["status", "staging"])
            .success()
            .stdout(predicate::str::contains("deployed"))
            .stdout(row("healthy"))
            .stdout(predicate::str::contains("not healthy").not());
        p.run("alice@example.com", &["audit", "verify"])
            .success()
            .stdout(predicate::str::contains("audit log ok"));
        assert!(p.read("AUDIT_LOG.md").contains("approved: first deploy"));
        assert!(p.read("PROJECT_STATE.md").contains("| staging | `"));
        // Terraform really applied the saved plan.
        assert!(p.read("infra/terraform.tfstate").contains("terraform_data"));
    }
}

on_both_backends! {
    fn production_needs_an_approval_from_a_listed_approver_who_did_not_plan_it(backend) {
        let p = TestProject::with_backend(&config("http://127.0.0.1:9/", ""), backend);
        let digest = p.plan("alice@example.com", "production");
        p.run("carol@example.com", &["apply", "production", "--yes"])
            .code(4)
            .stderr(predicate::str::contains(
                "has 0 valid approvals for \"production\"; it needs 1",
            ))
            .stderr(predicate::str::contains(
                "hint: run `opsdeploy approve production --plan ",
            ));
        p.run("carol@example.com", &["approve", "production"])
            .code(4)
            .stderr(predicate::str::contains(
                "carol@example.com may not approve plans for \"production\"",
            ))
            .stderr(predicate::str::contains(
                "ask one of: alice@example.com, bob@example.com",
            ));
        p.run(
            "alice@example.com",
            &["approve", "production", "--plan", &digest[..8]],
        )
        .code(4)
        .stderr(predicate::str::contains(
            "does not allow approving your own plan",
        ))
        .stderr(predicate::str::contains("ask one of: bob@example.com"));
        p.run(
            "bob@example.com",
            &["approve", "production", "--plan", &digest],
        )
        .success();
        p.run(
            "carol@example.com",
            &["apply", "production", "--plan", &digest, "--yes"],
        )
        .success();
    }
}

on_both_backends! {
    fn a_bundle_or_project_file_changed_after_approval_is_refused(backend) {
        let health = HealthServer::start(200);
        let p = TestProject::with_backend(&config(&health.url(), ""), backend);
        let digest = p.plan("alice@example.com", "staging");
        p.run("alice@example.com", &["approve", "staging"])
            .success();

        let main_tf = p.read("infra/main.tf");
        std::fs::write(
            p.file("infra/main.tf"),
            main_tf.replace("orders", "payments"),
        )
        .unwrap();
        p.run("alice@example.com", &["apply", "staging", "--yes"])
            .code(4)
            .stderr(predicate::str::contains(format!(
                "plan bundle {} does not match the files on disk",
                &digest[..12]
            )))
            .stderr(predicate::str::contains(
                "--> infra/main.tf changed after the plan was made",
            ))
            .stderr(predicate::str::contains(
                "hint: run `opsdeploy plan staging` and ask for a new approval",
            ));
        std::fs::write(p.file("infra/main.tf"), main_tf).unwrap();

        let bundle = std::fs::read_dir(p.file(".opsdeploy/bundles"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|d| {
                d.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(&digest)
            })
            .unwrap();
        let plan_json = bundle.join("plan.json");
        let text = std::fs::read_to_string(&plan_json).unwrap();
        std::fs::write(&plan_json, text.replace("orders", "evil")).unwrap();
        p.run("alice@example.com", &["apply", "staging", "--yes"])
            .code(4)
            .stderr(predicate::str::contains(
                "plan.json was changed after the plan",
            ));
        assert!(
            !p.file("infra/terraform.tfstate").exists(),
            "nothing was applied"
        );
    }
}

on_both_backends! {
    fn a_failing_health_check_rolls_back_exits_5_and_the_next_plan_shows_the_incident(backend) {
        let health = HealthServer::start(503);
        let p = TestProject::with_backend(&config(&health.url(), ""), backend);
        p.plan_approved("alice@example.com", "staging");
        p.run("alice@example.com", &["apply", "staging", "--yes"])
            .code(5)
            .stdout(row("FAIL health"))
            .stdout(predicate::str::contains(
                "undone: terraform: returned to nothing (this was the first deploy)",
            ))
            .stderr(predicate::str::contains("failed and was rolled back"));
        assert!(
            p.read("CONTINUITY.md")
                .contains("staging — deploy failed, rolled back")
        );
        p.run("alice@example.com", &["plan", "staging"])
            .success()
            .stdout(predicate::str::contains(
                "incidents since the last successful deploy of staging",
            ))
            .stdout(predicate::str::contains("HTTP 503"));
        p.run("alice@example.com", &["audit", "log", "--env", "staging"])
            .success()
            .stdout(predicate::str::contains("rollback"))
            .stdout(predicate::str::contains("incident"));
    }
}

/// A project (staging settings `extra`) planned and approved by alice, whose
/// apply ends with a smoke test sleeping `seconds`: long enough to act on.
fn approved_with_slow_smoke_test(
    health: &HealthServer,
    backend: Backend,
    seconds: u32,
    extra: &str,
) -> TestProject {
    let p = TestProject::with_backend(
        &with_staging(
            &config(&health.url(), ""),
            &format!("{extra}  smoke_test {{\n    command = [\"sleep\", \"{seconds}\"]\n  }}"),
        ),
        backend,
    );
    p.plan_approved("alice@example.com", "staging");
    p
}

on_both_backends! {
    fn a_second_apply_waits_for_the_lock_then_fails_naming_the_holder(backend) {
        let health = HealthServer::start(200);
        let p = approved_with_slow_smoke_test(&health, backend, 4, "  lock_timeout = \"1s\"\n");
        let mut first = p.spawn("alice@example.com", &["apply", "staging", "--yes", "-q"]);
        p.wait_for_status("staging", "locked by alice@example.com");
        p.run("bob@example.com", &["apply", "staging", "--yes"])
            .code(1)
            .stderr(predicate::str::contains(
                "environment \"staging\" is locked by alice@example.com",
            ));
        assert!(first.wait().unwrap().success());
        p.run("bob@example.com", &["audit", "verify"]).success();
    }
}

#[test]
fn an_audit_log_edited_by_hand_fails_verification_naming_the_entry() {
    let p = TestProject::new(&config("http://127.0.0.1:9/", ""));
    p.plan("alice@example.com", "staging");
    p.run(
        "alice@example.com",
        &["approve", "staging", "--comment", "ok"],
    )
    .success();
    let log = p.file(".opsdeploy/audit.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::write(
        &log,
        text.replace("\"comment\":\"ok\"", "\"comment\":\"OK\""),
    )
    .unwrap();
    p.run("alice@example.com", &["audit", "verify"])
        .code(1)
        .stderr(predicate::str::contains(
            "audit log entry 3 (seq 3) is not valid",
        ))
        .stderr(predicate::str::contains("the entry was edited"))
        .stderr(predicate::str::contains("audit.jsonl:3"));
}

on_both_backends! {
    fn mandatory_denials_block_and_only_soft_ones_can_be_overridden(backend) {
        let health = HealthServer::start(200);
        let guard = r#"
    policy "guard-terraform-data" {
      builtin     = true
      enforcement = "soft-mandatory"
      settings    = { extra_types = ["terraform_data"] }
    }"#
        .replace("guard-terraform-data", "protected-deletes");
        // Two blocks for the same built-in would be a duplicate: make the
        // hard-mandatory one protect nothing of ours and the soft one protect terraform_data.
        let cfg = config(&health.url(), "")
            .replace(
                "policy \"protected-deletes\" {\n  builtin     = true\n  enforcement = \"hard-mandatory\"\n}",
                guard.trim(),
            );
        let p = TestProject::with_backend(&cfg, backend);
        // Deploy version 15, then plan version 16: the database is replaced.
        p.plan_approved("alice@example.com", "staging");
        p.run("alice@example.com", &["apply", "staging", "--yes"])
            .success();
        std::fs::write(
            p.file("infra/main.tf"),
            MAIN_TF.replace("default = 15", "default = 16"),
        )
        .unwrap();
        p.run("alice@example.com", &["plan", "staging"])
            .code(3)
            .stdout(predicate::str::contains(
                "terraform_data.database would be destroyed and recreated",
            ))
            .stderr(predicate::str::contains(
                "is blocked by policy: protected-deletes",
            ))
            .stderr(predicate::str::contains("--override protected-deletes"));
        p.run("alice@example.com", &["approve", "staging"])
            .success();
        p.run("alice@example.com", &["apply", "staging", "--yes"])
            .code(3)
            .stderr(predicate::str::contains(
                "blocked by policy: protected-deletes",
            ));
        p.run(
            "alice@example.com",
            &[
                "approve",
                "staging",
                "--override",
                "protected-deletes",
                "--reason",
                "engine upgrade, data restored from snapshot",
            ],
        )
        .success()
        .stdout(predicate::str::contains(
            "override of policy protected-deletes",
        ));
        p.run("alice@example.com", &["apply", "staging", "--yes"])
            .success();

        // The same denial under hard-mandatory cannot be overridden.
        let hard = p
            .read("opsdeploy.hcl")
            .replace("soft-mandatory", "hard-mandatory");
        std::fs::write(p.file("opsdeploy.hcl"), hard).unwrap();
        std::fs::write(
            p.file("infra/main.tf"),
            MAIN_TF.replace("default = 15", "default = 17"),
        )
        .unwrap();
        p.run("alice@example.com", &["plan", "staging"]).code(3);
        p.run(
            "alice@example.com",
            &[
                "approve",
                "staging",
                "--override",
                "protected-deletes",
                "--reason",
                "x",
            ],
        )
        .code(3)
        .stderr(predicate::str::contains(
            "is hard-mandatory; it cannot be overridden",
        ));
    }
}

#[test]
fn configuration_mistakes_name_file_line_and_next_step() {
    let p = TestProject::new(
        "project = \"shop\"\nenvironment \"staging\" {\n  healthcheck { url = \"x\" }\n}\n",
    );
    p.run("alice@example.com", &["plan", "staging"])
        .code(1)
        .stderr(predicate::str::contains(
            "error: unknown block `healthcheck` in environment \"staging\"\n  --> opsdeploy.hcl:3\n",
        ))
        .stderr(predicate::str::contains("hint: known here: "));
    let p = TestProject::new(&config("http://127.0.0.1:9/", ""));
    p.run("alice@example.com", &["plan", "prod"])
        .code(2)
        .stderr(predicate::str::contains("there is no environment \"prod\""))
        .stderr(predicate::str::contains(
            "hint: environments: staging, production",
        ));
    let empty = tempfile::tempdir().unwrap();
    opsdeploy(empty.path())
        .arg("-C")
        .arg(empty.path())
        .args(["status"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no opsdeploy.hcl in"))
        .stderr(predicate::str::contains("hint: run `opsdeploy init`"));
}

on_both_backends! {
    fn promote_plans_only_what_is_healthy_on_the_source_environment(backend) {
        let health = HealthServer::start(200);
        let p = TestProject::with_backend(&config(&health.url(), ""), backend);
        p.run("alice@example.com", &["promote", "staging", "production"])
            .code(3)
            .stderr(predicate::str::contains(
                "nothing is deployed on \"staging\" to promote",
            ));
        p.run("alice@example.com", &["promote", "production", "staging"])
            .code(2)
            .stderr(predicate::str::contains(
                "\"staging\" does not promote from any environment",
            ));
        p.plan_approved("alice@example.com", "staging");
        p.run("alice@example.com", &["apply", "staging", "--yes"])
            .success();
        p.run("alice@example.com", &["promote", "staging", "production"])
            .success()
            .stdout(predicate::str::contains("promoting staging ("))
            .stderr(predicate::str::contains(
                "next: opsdeploy approve production --plan ",
            ));
        p.run("bob@example.com", &["approve", "production"])
            .success();
        p.run("bob@example.com", &["apply", "production", "--yes"])
            .success();
        p.run("bob@example.com", &["audit", "log", "--env", "production"])
            .success()
            .stdout(predicate::str::contains("promotion from staging"));
    }
}

on_both_backends! {
    fn an_unhealthy_source_cannot_be_promoted(backend) {
        let health = HealthServer::start(500);
        let p = TestProject::with_backend(&config(&health.url(), ""), backend);
        p.plan_approved("alice@example.com", "staging");
        p.run("alice@example.com", &["apply", "staging", "--yes"])
            .code(5);
        p.run("alice@example.com", &["promote", "staging", "production"])
            .code(3)
            .stderr(predicate::str::contains(
                "nothing is deployed on \"staging\"",
            ));
    }
}

#[test]
fn drift_exits_2_when_terraform_reports_changes_made_outside_it() {
    let p = TestProject::new(&config("http://127.0.0.1:9/", ""));
    p.run("alice@example.com", &["drift", "staging"])
        .success()
        .stdout(predicate::str::contains("staging: no drift"));
    // terraform_data never drifts; a terraform that reports drift shows how
    // opsdeploy reads `-detailed-exitcode` 2.
    let fake = p.file("fake-terraform");
    std::fs::write(
        &fake,
        "#!/bin/sh\ncase \"$1\" in\n  init) exit 0 ;;\n  plan) echo '  # terraform_data.database has changed'; exit 2 ;;\nesac\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let cfg = p.read("opsdeploy.hcl").replace(
        "project = \"shop\"",
        &format!(
            "project = \"shop\"\ntools {{ terraform = \"{}\" }}",
            fake.display()
        ),
    );
    std::fs::write(p.file("opsdeploy.hcl"), cfg).unwrap();
    p.run("alice@example.com", &["drift", "staging"])
        .code(2)
        .stdout(row("drifted terraform terraform_data.database has changed"))
        .stderr(predicate::str::contains(
            "hint: run `opsdeploy plan staging`",
        ));
    p.run("alice@example.com", &["drift", "staging", "-q"])
        .code(2)
        .stdout("drifted\n")
        .stderr("");
}

/// Whether process `pid` has exited (a zombie awaiting its reaper counts),
/// waiting up to 10 s.
fn gone(pid: &str) -> bool {
    for _ in 0..200 {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(stat)
                if stat
                    .rsplit(')')
                    .next()
                    .is_some_and(|s| s.trim_start().starts_with('Z')) =>
            {
                return true;
            }
            Ok(_) => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    }
    false
}

on_both_backends! {
    fn an_apply_killed_mid_way_is_shown_as_interrupted_its_children_die_and_its_lock_is_taken_over(backend) {
        let health = HealthServer::start(200);
        let p = TestProject::with_backend(
            &with_staging(
                &config(&health.url(), ""),
                "  smoke_test {\n    command = [\"sh\", \"-c\", \"sleep 30 & echo $$ $! > smoke.pids; wait\"]\n  }",
            ),
            backend,
        );
        p.plan_approved("alice@example.com", "staging");
        let mut apply = p.spawn("alice@example.com", &["apply", "staging", "--yes", "-q"]);
        // Kill -9 once the smoke test runs (terraform and health check done).
        p.wait_for_audit(|entries| entries.iter().any(|e| e["data"]["check"] == "health"));
        for _ in 0..200 {
            if p.read("smoke.pids").split_whitespace().count() == 2 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        apply.kill().unwrap();
        apply.wait().unwrap();
        // The smoke test and what it started die with opsdeploy.
        for pid in p.read("smoke.pids").split_whitespace() {
            assert!(gone(pid), "process {pid} of the smoke test outlived opsdeploy");
        }
        p.run("bob@example.com", &["status", "staging"])
            .success()
            .stdout(predicate::str::contains("INTERRUPTED apply of"))
            .stdout(predicate::str::contains(
                "stale lock left by alice@example.com",
            ));
        p.run("bob@example.com", &["audit", "verify"]).success();
        // The next apply takes the lock over with a warning and records it.
        std::fs::write(
            p.file("opsdeploy.hcl"),
            p.read("opsdeploy.hcl").replace(
                "[\"sh\", \"-c\", \"sleep 30 & echo $$ $! > smoke.pids; wait\"]",
                "[\"true\"]",
            ),
        )
        .unwrap();
        p.plan_approved("bob@example.com", "staging");
        p.run("bob@example.com", &["apply", "staging", "--yes"])
            .success()
            .stderr(predicate::str::contains(
                "took over the lock on \"staging\" left by alice@example.com",
            ));
        p.run("bob@example.com", &["audit", "log"])
            .success()
            .stdout(predicate::str::contains(
                "took over a lock left by alice@example.com",
            ));
        // A successful deploy since: the interruption is history, not a state.
        p.run("bob@example.com", &["status", "staging"])
            .success()
            .stdout(predicate::str::contains("INTERRUPTED").not());
    }
}

/// Records the bodies POSTed to it.
pub fn webhook_receiver() -> (String, std::sync::mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://127.0.0.1:{}/hook/T0/SECRET",
        listener.local_addr().unwrap().port()
    );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let mut data = Vec::new();
            let mut buf = [0u8; 4096];
            // Read headers, then the body by Content-Length.
            loop {
                let n = stream.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    break;
                }
                data.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&data);
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if data.len() >= end + 4 + len {
                        let _ = tx.send(text[end + 4..end + 4 + len].to_string());
                        break;
                    }
                }
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (url, rx)
}

#[test]
fn the_team_is_notified_of_deploys_and_failures_and_a_dead_webhook_only_warns() {
    let health = HealthServer::start(200);
    let (hook, received) = webhook_receiver();
    let cfg = config(&health.url(), "").replace(
        "project = \"shop\"",
        &format!("project = \"shop\"\nnotify {{ webhook = \"{hook}\" }}"),
    );
    let p = TestProject::new(&cfg);
    p.plan_approved("alice@example.com", "staging");
    p.run("alice@example.com", &["apply", "staging", "--yes"])
        .success();
    let body: serde_json::Value = serde_json::from_str(
        &received
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap(),
    )
    .unwrap();
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .contains("shop deployed to staging"),
        "{body}"
    );
    assert_eq!(body["opsdeploy"]["event"], "deployed");

    // A webhook nobody listens on: the deploy still succeeds, with a warning
    // that does not show the webhook's secret path.
    let dead = p
        .read("opsdeploy.hcl")
        .replace(&hook, "http://127.0.0.1:9/hook/T0/SECRET");
    std::fs::write(p.file("opsdeploy.hcl"), dead).unwrap();
    std::fs::write(
        p.file("infra/main.tf"),
        MAIN_TF.replace("orders", "orders2"),
    )
    .unwrap();
    p.plan_approved("alice@example.com", "staging");
    p.run("alice@example.com", &["apply", "staging", "--yes"])
        .success()
        .stderr(predicate::str::contains(
            "could not notify http://127.0.0.1:9/****",
        ))
        .stderr(predicate::str::contains("SECRET").not());
}
