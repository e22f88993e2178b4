//! An insider with write access to the project, the runner's module cache and
//! the terminal against opsdeploy's promise (issue 12): each attack that
//! worked is repeated here and must now be refused, by the real binary.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use predicates::prelude::*;

use crate::support::{Backend, abi_module, opsdeploy, small_input, write};
use crate::workflow::{HealthServer, TestProject};

/// One built-in policy turned off with its reason (one attribute per line:
/// HCL's one-line blocks hold one).
fn off(policy: &str, reason: &str) -> String {
    format!("policy \"{policy}\" {{\n  enabled = false\n  reason  = \"{reason}\"\n}}\n")
}

/// staging (with `staging_extra`) and production, both self-approved, no
/// promotion between them; the gates are off (these tests attack the plan
/// bundle, not the SDLC checklist, which gates.rs tests).
fn two_environments(health_url: &str, policies: &str, staging_extra: &str) -> String {
    format!(
        r#"
project = "shop"
{gates}{policies}
environment "staging" {{
  terraform {{ dir = "infra" }}
  health {{
    url      = "{health_url}"
    timeout  = "3s"
    interval = "200ms"
  }}
  approval {{ self_approve = true }}
{staging_extra}
}}

environment "production" {{
  terraform {{ dir = "infra" }}
  approval {{ self_approve = true }}
}}
"#,
        gates = off(
            "gates",
            "the hardening tests attack the plan bundle; gates.rs tests the gates"
        ),
    )
}

fn stderr_of(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).into_owned()
}

fn stdout_of(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stdout).into_owned()
}

/// A terraform plan JSON deleting one database.
fn plan_deleting_a_database(dir: &Path) -> PathBuf {
    write(
        dir,
        "pd.json",
        br#"{"format_version":"1.2","resource_changes":[{"address":"aws_db_instance.main","type":"aws_db_instance","name":"main","change":{"actions":["delete"],"before":{},"after":null}}]}"#,
    )
}

/// The directory of the bundle a (short) digest names.
fn bundle_dir(p: &TestProject, digest: &str) -> PathBuf {
    std::fs::read_dir(p.file(".opsdeploy/bundles"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|d| d.file_name().unwrap().to_string_lossy().starts_with(digest))
        .expect("the bundle is on disk")
}

/// The full digest of the one plan bundle of a project.
fn the_bundle(p: &TestProject) -> String {
    std::fs::read_dir(p.file(".opsdeploy/bundles"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.len() == 64)
        .unwrap()
}

fn cache_entries(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    out.retain(|p| p.extension().is_some_and(|e| e == "cwasm"));
    out.sort();
    out
}

// Row 1 --------------------------------------------------------------------

#[test]
fn a_cache_artifact_swapped_for_another_modules_never_runs_and_is_recompiled() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let key = tmp.path().join("home/module-cache.key");
    let run = |args: &[&str]| {
        let mut cmd = opsdeploy(&cache);
        cmd.env("OPSDEPLOY_CACHE_KEY", &key).args(args);
        cmd.assert()
    };
    let pd = plan_deleting_a_database(tmp.path());
    let pd = pd.to_str().unwrap();
    let eval_pd = [
        "-v",
        "policy",
        "eval",
        "builtin:protected-deletes",
        "--terraform-plan",
        pd,
    ];
    run(&eval_pd).code(3);
    let protected = cache_entries(&cache);
    let allow = write(
        tmp.path(),
        "allow.wasm",
        &abi_module("i32.const 16 i32.const 17 call $set_output i32.const 0", ""),
    );
    run(&[
        "policy",
        "eval",
        allow.to_str().unwrap(),
        "--terraform-plan",
        pd,
    ])
    .success();
    let allow_entry = cache_entries(&cache)
        .into_iter()
        .find(|p| !protected.contains(p))
        .expect("the allow module was cached");
    // The insider's move: the allow module's artifact under protected-deletes' name.
    std::fs::copy(&allow_entry, &protected[0]).unwrap();
    let again = run(&eval_pd).code(3);
    assert!(
        stderr_of(&again).contains("failed its MAC"),
        "{}",
        stderr_of(&again)
    );
    assert!(
        stdout_of(&again).contains("protected-delete"),
        "{}",
        stdout_of(&again)
    );
    // Recompiled and stored again: the next load is a genuine hit.
    let third = run(&eval_pd).code(3);
    assert!(
        stderr_of(&third).contains("cache_status=Hit"),
        "{}",
        stderr_of(&third)
    );
}

// Row 2 --------------------------------------------------------------------

fn uleb(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn section(id: u8, body: &[u8], out: &mut Vec<u8>) {
    out.push(id);
    uleb(body.len() as u64, out);
    out.extend_from_slice(body);
}

/// A module of `functions` copies of `() -> i64` whose body sets `locals`
/// i64 locals and then adds them all up (every local live to the end), as
/// the bombs of issue 12 were built: encoded by hand, nothing committed.
fn bomb(functions: u64, locals: u64) -> Vec<u8> {
    let mut body = Vec::new();
    if locals == 0 {
        body.push(0);
        body.extend_from_slice(&[0x42, 0x00]);
    } else {
        body.push(1);
        uleb(locals, &mut body);
        body.push(0x7e);
        for i in 0..locals {
            body.extend_from_slice(&[0x42, (i % 64) as u8, 0x21]);
            uleb(i, &mut body);
        }
        body.extend_from_slice(&[0x20, 0x00]);
        for i in 1..locals {
            body.push(0x20);
            uleb(i, &mut body);
            body.push(0x7c);
        }
    }
    body.push(0x0b);
    let mut sized = Vec::new();
    uleb(body.len() as u64, &mut sized);
    sized.extend_from_slice(&body);

    let mut m = b"\0asm\x01\0\0\0".to_vec();
    section(1, &[1, 0x60, 0, 1, 0x7e], &mut m);
    let mut funcs = Vec::new();
    uleb(functions, &mut funcs);
    funcs.resize(funcs.len() + functions as usize, 0);
    section(3, &funcs, &mut m);
    let mut code = Vec::new();
    uleb(functions, &mut code);
    for _ in 0..functions {
        code.extend_from_slice(&sized);
    }
    section(10, &code, &mut m);
    m
}

/// `policy eval` of a module, timed: (exit code, stdout, seconds).
fn eval_module(dir: &Path, name: &str, wasm: &[u8], limits: &[&str]) -> (Option<i32>, String, f64) {
    let path = write(dir, name, wasm);
    let input = small_input(dir);
    let started = Instant::now();
    let out = opsdeploy(&dir.join("cache"))
        .args(["policy", "eval"])
        .arg(&path)
        .arg("--input")
        .arg(&input)
        .args(limits)
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        started.elapsed().as_secs_f64(),
    )
}

#[test]
fn both_compile_bombs_are_refused_well_inside_the_default_limits() {
    let tmp = tempfile::tempdir().unwrap();
    // A million trivial functions (6 MB): 142 s and 6.9 GB of compiling before.
    let (code, out, secs) = eval_module(tmp.path(), "funcs1m.wasm", &bomb(1_000_000, 0), &[]);
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("policy-refused"), "{out}");
    assert!(
        out.contains("it defines 1000000 functions; policies are limited to 20000"),
        "{out}"
    );
    assert!(secs < 10.0, "took {secs:.1} s");
    // One function with 40,000 live locals (0.5 MB): 105 s and 2.3 GB before.
    let (code, out, secs) = eval_module(tmp.path(), "locals.wasm", &bomb(1, 40_000), &[]);
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("declares more than 10000 locals"), "{out}");
    assert!(secs < 10.0, "took {secs:.1} s");
}

#[test]
fn a_compile_within_the_structural_limits_is_stopped_at_the_policys_time_and_memory() {
    let tmp = tempfile::tempdir().unwrap();
    // 300 functions of 4,000 live locals each: every check passes, and
    // compiling takes tens of seconds of CPU.
    let slow = bomb(300, 4_000);
    let (code, out, secs) = eval_module(tmp.path(), "slow.wasm", &slow, &["--timeout", "1s"]);
    assert_eq!(code, Some(3), "{out}");
    assert!(
        out.contains("needed more than its time limit of 1 s of CPU time"),
        "{out}"
    );
    assert!(secs < 15.0, "took {secs:.1} s");
    // Over 90 MiB of resident memory to compile (the 4,000-local one peaks
    // within a few MiB of 64 since freed memory goes back at once).
    let big = bomb(300, 9_000);
    let (code, out, _) = eval_module(tmp.path(), "slow2.wasm", &big, &["--memory", "64MiB"]);
    assert_eq!(code, Some(3), "{out}");
    assert!(
        out.contains("needed more than its memory limit of 64 MiB"),
        "{out}"
    );
}

#[test]
fn a_compile_bomb_as_a_project_policy_is_a_denial_not_a_stalled_plan() {
    let health = HealthServer::start(200);
    let policy = "policy \"bomb\" {\n  source = \"bomb.wasm\"\n}\n";
    let p = TestProject::new(&two_environments(&health.url(), policy, ""));
    std::fs::write(p.file("bomb.wasm"), bomb(1_000_000, 0)).unwrap();
    let started = Instant::now();
    let plan = p.run("alice@example.com", &["plan", "staging"]).code(3);
    assert!(stdout_of(&plan).contains("bomb"), "{}", stdout_of(&plan));
    assert!(
        stderr_of(&plan).contains("blocked by policy: bomb"),
        "{}",
        stderr_of(&plan)
    );
    // Refused by its structure, never handed to the compiler; the time bound
    // is generous for a loaded CI machine (terraform runs in this plan too).
    let results = p.read(&format!(
        ".opsdeploy/bundles/{}/results.json",
        the_bundle(&p)
    ));
    assert!(
        results.contains("it defines 1000000 functions; policies are limited to 20000"),
        "{results}"
    );
    assert!(started.elapsed() < Duration::from_secs(120));
}

// Row 3 --------------------------------------------------------------------

#[test]
fn apply_refuses_a_script_a_command_runs_when_it_changed_after_approval() {
    let health = HealthServer::start(200);
    let p = TestProject::new(&two_environments(
        &health.url(),
        "",
        "  migrations {\n    dir     = \"db\"\n    command = [\"sh\", \"scripts/migrate.sh\", \"{file}\"]\n  }\n  smoke_test { command = [\"sh\", \"scripts/smoke.sh\"] }\n  monitor {\n    window           = \"1s\"\n    interval         = \"1s\"\n    error_rate_query = [\"./scripts/rate.sh\"]\n  }\n",
    ));
    std::fs::create_dir_all(p.file("scripts")).unwrap();
    std::fs::create_dir_all(p.file("db")).unwrap();
    std::fs::write(p.file("scripts/smoke.sh"), "exit 0\n").unwrap();
    std::fs::write(p.file("scripts/migrate.sh"), "exit 0\n").unwrap();
    std::fs::write(p.file("scripts/rate.sh"), "#!/bin/sh\necho 0\n").unwrap();
    let digest = p.plan_approved("alice@example.com", "staging");
    let manifest = std::fs::read_to_string(bundle_dir(&p, &digest).join("manifest.json")).unwrap();
    for script in ["scripts/smoke.sh", "scripts/migrate.sh", "scripts/rate.sh"] {
        assert!(
            manifest.contains(&format!("\"path\": \"{script}\"")),
            "{script} not covered: {manifest}"
        );
    }
    // After the approval: a smoke test that always passes.
    std::fs::write(p.file("scripts/smoke.sh"), "echo replaced; exit 0\n").unwrap();
    p.run("alice@example.com", &["apply", "staging", "--yes"])
        .code(4)
        .stderr(predicate::str::contains(
            "scripts/smoke.sh changed after the plan was made",
        ));
}

// Row 4 --------------------------------------------------------------------

#[test]
fn apply_refuses_when_a_setting_read_through_env_differs_from_the_plan() {
    let health = HealthServer::start(200);
    let policy =
        "policy \"protected-deletes\" {\n  builtin     = true\n  enforcement = env(\"ENF\")\n}\n";
    let p = TestProject::new(&two_environments(&health.url(), policy, ""));
    let hard = [("ENF", "hard-mandatory")];
    let out = p
        .run_with("alice@example.com", &["plan", "staging", "-q"], &hard)
        .success();
    let digest = stdout_of(&out)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    p.run_with(
        "alice@example.com",
        &["approve", "staging", "--plan", &digest],
        &hard,
    )
    .success();
    p.run_with(
        "alice@example.com",
        &["apply", "staging", "--yes"],
        &[("ENF", "advisory")],
    )
    .code(4)
    .stderr(predicate::str::contains(
        "policy \"protected-deletes\" enforcement differs from the plan",
    ));
    // The same environment as at plan time applies.
    p.run_with("alice@example.com", &["apply", "staging", "--yes"], &hard)
        .success();
}

// Row 5 --------------------------------------------------------------------

#[test]
fn opsdeploys_own_writes_never_invalidate_an_approved_plan_but_peoples_edits_do() {
    let health = HealthServer::start(200);
    // Only staging runs terraform (the environments share one local state).
    let cfg = format!(
        r#"
project = "shop"
{gates}
environment "staging" {{
  terraform {{ dir = "infra" }}
  health {{
    url      = "{url}"
    timeout  = "3s"
    interval = "200ms"
  }}
  approval {{ self_approve = true }}
}}

environment "qa" {{
  health {{
    url      = "http://127.0.0.1:9/healthz"
    timeout  = "1s"
    interval = "200ms"
  }}
  approval {{ self_approve = true }}
}}

environment "production" {{
  approval {{ self_approve = true }}
}}
"#,
        gates = off(
            "gates",
            "the hardening tests attack the plan bundle; gates.rs tests the gates"
        ),
        url = health.url()
    );
    let p = TestProject::new(&cfg);
    std::fs::write(
        p.file("PROJECT_STATE.md"),
        "# Shop\n\n**Current phase:** S10\n",
    )
    .unwrap();
    std::fs::write(
        p.file("CONTINUITY.md"),
        "# Continuity\n\nNotes the team keeps.\n",
    )
    .unwrap();
    let production = p.plan_approved("alice@example.com", "production");
    p.plan_approved("alice@example.com", "qa");
    p.plan_approved("alice@example.com", "staging");
    // qa fails before changing anything (exit 1, nothing to roll back):
    // opsdeploy records an incident in CONTINUITY.md.
    p.run("alice@example.com", &["apply", "qa", "--yes"])
        .code(1);
    assert!(p.read("CONTINUITY.md").contains("deploy failed"));
    // staging succeeds: opsdeploy rewrites PROJECT_STATE.md's deployments table.
    p.run("alice@example.com", &["apply", "staging", "--yes"])
        .success();
    assert!(p.read("PROJECT_STATE.md").contains("## Deployments"));
    p.run(
        "alice@example.com",
        &["apply", "production", "--plan", &production, "--yes"],
    )
    .success();
    // What people write in the same files stays covered.
    let next = p.plan_approved("alice@example.com", "production");
    let edited = p.read("PROJECT_STATE.md").replace("S10", "S08");
    std::fs::write(p.file("PROJECT_STATE.md"), edited).unwrap();
    p.run(
        "alice@example.com",
        &["apply", "production", "--plan", &next, "--yes"],
    )
    .code(4)
    .stderr(predicate::str::contains(
        "PROJECT_STATE.md changed after the plan",
    ));
    let next = p.plan_approved("alice@example.com", "production");
    let edited = p
        .read("CONTINUITY.md")
        .replace("Notes the team keeps", "Notes");
    std::fs::write(p.file("CONTINUITY.md"), edited).unwrap();
    p.run(
        "alice@example.com",
        &["apply", "production", "--plan", &next, "--yes"],
    )
    .code(4)
    .stderr(predicate::str::contains(
        "CONTINUITY.md changed after the plan",
    ));
}

// Row 6 --------------------------------------------------------------------

#[test]
fn report_refuses_results_edited_after_the_plan_naming_the_file() {
    let health = HealthServer::start(200);
    let policy = "policy \"protected-deletes\" {\n  builtin     = true\n  settings    = { extra_types = [\"terraform_data\"] }\n}\n";
    let p = TestProject::new(&two_environments(&health.url(), policy, ""));
    p.plan_approved("alice@example.com", "staging");
    p.run("alice@example.com", &["apply", "staging", "--yes"])
        .success();
    // Replacing the database: protected-deletes blocks the plan.
    std::fs::write(
        p.file("infra/main.tf"),
        crate::workflow::MAIN_TF.replace("default = 15", "default = 16"),
    )
    .unwrap();
    let blocked = p
        .run("alice@example.com", &["plan", "staging", "-q"])
        .code(3);
    let digest = stdout_of(&blocked)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    p.run(
        "alice@example.com",
        &["report", &digest, "--format", "sarif"],
    )
    .success()
    .stdout(predicate::str::contains("protected-replace"));
    let results = bundle_dir(&p, &digest).join("results.json");
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&results).unwrap()).unwrap();
    for d in doc["decisions"].as_array_mut().unwrap() {
        d["violations"] = serde_json::json!([]);
        d["denied"] = false.into();
        d["blocks"] = false.into();
    }
    std::fs::write(&results, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    p.run(
        "alice@example.com",
        &["report", &digest, "--format", "sarif"],
    )
    .failure()
    .stdout("")
    .stderr(predicate::str::contains(
        "results.json was changed after the plan",
    ));
}

// Row 7 --------------------------------------------------------------------

const PLANTED_TF: &str = "PLANTED-tf-secret-4f9d2c";
const PLANTED_HOOK: &str = "PLANTED-hook-token-8a1e7b";

#[test]
fn no_command_logs_a_sensitive_value_at_any_verbosity() {
    let health = HealthServer::start(200);
    let cfg = two_environments(&health.url(), "", "").replace(
        "project = \"shop\"",
        "project = \"shop\"\nnotify { webhook = env(\"HOOK\") }",
    );
    let p = TestProject::new(&cfg);
    std::fs::write(
        p.file("infra/main.tf"),
        format!(
            "{}\nvariable \"db_password\" {{\n  type      = string\n  sensitive = true\n  default   = \"{PLANTED_TF}\"\n}}\nresource \"terraform_data\" \"credentials\" {{\n  input = {{ password = var.db_password }}\n}}\n",
            crate::workflow::MAIN_TF
        ),
    )
    .unwrap();
    let hook = format!("http://127.0.0.1:9/hook/{PLANTED_HOOK}");
    let env = [("HOOK", hook.as_str())];
    let mut logs = String::new();
    let mut run = |args: &[&str]| {
        let mut all = vec!["-vv"];
        all.extend_from_slice(args);
        let a = p.run_with("alice@example.com", &all, &env);
        logs.push_str(&format!(
            "$ opsdeploy {}\n{}\n",
            all.join(" "),
            stderr_of(&a)
        ));
        stdout_of(&a)
    };
    let digest = run(&["plan", "staging", "-q"])
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    let plan_json = bundle_dir(&p, &digest).join("plan.json");
    assert!(
        std::fs::read_to_string(&plan_json)
            .unwrap()
            .contains(PLANTED_TF),
        "the value must be in the plan for the test to mean anything"
    );
    run(&["approve", "staging", "--plan", &digest]);
    run(&["apply", "staging", "--yes"]);
    run(&["status"]);
    run(&["report", &digest]);
    run(&["report", &digest, "--format", "json"]);
    run(&["audit", "log"]);
    run(&["audit", "verify"]);
    run(&["drift", "staging"]);
    run(&["rollback", "staging"]);
    run(&["plan", "production"]);
    run(&["promote", "staging", "production"]);
    run(&[
        "policy",
        "eval",
        "builtin:no-secrets",
        "--terraform-plan",
        plan_json.to_str().unwrap(),
    ]);
    assert!(logs.contains("DEBUG"), "-vv logs nothing: {logs}");
    for planted in [PLANTED_TF, PLANTED_HOOK] {
        assert!(!logs.contains(planted), "{planted} in a log:\n{logs}");
    }
}

// Row 8 --------------------------------------------------------------------

const PTY: &str = r#"
import os, pty, select, subprocess, sys
master, slave = pty.openpty()
p = subprocess.Popen(sys.argv[1:], stdin=slave, stdout=slave, stderr=slave, close_fds=True)
os.close(slave)
out = b""
while True:
    r, _, _ = select.select([master], [], [], 120)
    if not r:
        break
    try:
        data = os.read(master, 65536)
    except OSError:
        break
    if not data:
        break
    out += data
p.wait()
sys.stdout.buffer.write(out)
sys.exit(p.returncode)
"#;

/// What `opsdeploy ARGS` writes to a pseudo-terminal (stdout and stderr).
fn on_a_terminal(p: &TestProject, user: &str, args: &[&str]) -> Vec<u8> {
    let cmd = p.command(user, args);
    let program = cmd.get_program().to_owned();
    let argv: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let mut py = std::process::Command::new("python3");
    py.arg("-c").arg(PTY).arg(program).args(argv);
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => py.env(k, v),
            None => py.env_remove(k),
        };
    }
    // Colour on: opsdeploy's own styles are part of what reaches the terminal.
    py.env_remove("NO_COLOR").env("TERM", "xterm-256color");
    py.output().expect("python3 runs").stdout
}

/// Every escape sequence in `out` that is not opsdeploy's own: its colours
/// and weights (SGR 0, 1, 2, 22, 30-39, 90-97) and the spinner's `ESC [ K`.
fn foreign_escapes(out: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(out);
    let mut found = Vec::new();
    for (i, _) in text.match_indices('\x1b') {
        let rest = &text[i + 1..];
        let own = rest.strip_prefix('[').is_some_and(|r| {
            let end = r
                .find(|c: char| !(c.is_ascii_digit() || c == ';'))
                .unwrap_or(r.len());
            let params_ok = r[..end].split(';').all(|p| {
                p.is_empty() || matches!(p.parse::<u8>(), Ok(0 | 1 | 2 | 22 | 30..=39 | 90..=97))
            });
            (r[end..].starts_with('m') && params_ok) || (end == 0 && r.starts_with('K'))
        });
        if !own {
            found.push(rest.chars().take(12).collect());
        }
    }
    if text.contains('\u{9b}') {
        found.push("C1 CSI".into());
    }
    found
}

#[test]
fn no_escape_sequence_from_input_reaches_the_terminal_the_audit_log_or_a_report() {
    let health = HealthServer::start(200);
    let policy = "policy \"custom\" {\n  source = \"evil.wasm\"\n}\n";
    let p = TestProject::new(&two_environments(&health.url(), policy, ""));
    // A policy whose metadata names it with a window-title sequence.
    std::fs::write(
        p.file("evil.wasm"),
        abi_module(
            "i32.const 16 i32.const 17 call $set_output i32.const 0",
            r#"(@custom "opsdeploy.metadata" "{\"abi_version\":1,\"name\":\"evil\\u001b]0;PWNED\\u0007\"}")"#,
        ),
    )
    .unwrap();
    // A terraform map key that no-secrets quotes in its denial.
    std::fs::write(
        p.file("infra/main.tf"),
        format!(
            "{}\nresource \"terraform_data\" \"app\" {{\n  input = {{ \"password\\u001b]0;PWNED\\u0007\\u001b[2J\" = \"Zq8#vT2!mW9xLr4$kP7n\" }}\n}}\n",
            crate::workflow::MAIN_TF
        ),
    )
    .unwrap();
    let user = "mallory\u{1b}]0;PWNED\u{7}\u{1b}[2J";
    let mut seen = Vec::new();
    let plan = on_a_terminal(&p, user, &["plan", "staging"]);
    assert!(
        String::from_utf8_lossy(&plan).contains("\\x1b]0;PWNED"),
        "the planted text is shown, escaped: {}",
        String::from_utf8_lossy(&plan)
    );
    seen.extend(foreign_escapes(&plan));
    let digest = the_bundle(&p);
    for args in [
        vec!["status"],
        vec!["report", digest.as_str()],
        vec!["audit", "log"],
        vec!["policy", "eval", "evil.wasm", "--input", "input.json"],
    ] {
        if args[0] == "policy" {
            small_input(p.path());
        }
        let out = on_a_terminal(&p, user, &args);
        seen.extend(foreign_escapes(&out));
    }
    assert!(
        seen.is_empty(),
        "escape sequences from input reached the terminal: {seen:?}"
    );
    for (what, text) in [
        ("AUDIT_LOG.md", p.read("AUDIT_LOG.md")),
        (
            "markdown report",
            stdout_of(&p.run(user, &["report", &digest, "--format", "markdown"])),
        ),
        (
            "html report",
            stdout_of(&p.run(user, &["report", &digest, "--format", "html"])),
        ),
    ] {
        assert!(
            !text.contains('\x1b') && !text.contains('\u{7}'),
            "{what} carries a raw escape sequence"
        );
        assert!(
            text.contains("\\x1b"),
            "{what} shows the escape escaped: {text}"
        );
    }
}

// Row 9 --------------------------------------------------------------------

#[test]
fn an_environment_name_that_is_a_path_is_a_configuration_error() {
    let health = HealthServer::start(200);
    let evil = format!("/tmp/opsdeploy-evil-{}", std::process::id());
    let cfg = two_environments(&health.url(), "", "").replace(
        "environment \"staging\" {",
        &format!("environment \"../../../../..{evil}\" {{"),
    );
    let p = TestProject::new(&cfg);
    p.run("alice@example.com", &["status"])
        .code(1)
        .stderr(predicate::str::contains("is not allowed"))
        .stderr(predicate::str::contains("opsdeploy.hcl:"));
    assert!(!Path::new(&format!("{evil}.lock")).exists());
}

// Row 10 -------------------------------------------------------------------

#[test]
fn a_symlink_leaving_the_project_is_refused_naming_it_and_never_read() {
    let health = HealthServer::start(200);
    let p = TestProject::new(&two_environments(&health.url(), "", ""));
    std::os::unix::fs::symlink("/proc/self/environ", p.file(".env")).unwrap();
    p.run_with(
        "alice@example.com",
        &["plan", "staging"],
        &[("PLANTED_RUNNER_SECRET", "PLANTED-runner-env-93c1")],
    )
    .code(1)
    .stderr(predicate::str::contains(".env leaves the project"))
    .stderr(predicate::str::contains("--> .env"));
    let bundles = p.file(".opsdeploy/bundles");
    let sealed = std::fs::read_dir(&bundles)
        .map(|d| d.flatten().filter(|e| e.file_name().len() == 64).count())
        .unwrap_or(0);
    assert_eq!(sealed, 0, "no bundle is written");
}

// Row 11 -------------------------------------------------------------------

#[test]
fn removing_the_lock_file_mid_apply_does_not_let_a_second_apply_in() {
    let health = HealthServer::start(200);
    let p = TestProject::new(&two_environments(
        &health.url(),
        "",
        "  lock_timeout = \"1s\"\n  smoke_test {\n    command = [\"sleep\", \"4\"]\n  }\n",
    ));
    p.plan_approved("alice@example.com", "staging");
    let first = p
        .command("alice@example.com", &["apply", "staging", "--yes", "-q"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    p.wait_for_status("staging", "locked by alice@example.com");
    std::fs::remove_file(p.file(".opsdeploy/locks/staging.lock")).unwrap();
    p.run("bob@example.com", &["apply", "staging", "--yes"])
        .code(1)
        .stderr(predicate::str::contains(
            "environment \"staging\" is locked",
        ));
    let out = first.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("was removed or replaced while this apply held it"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    p.run("bob@example.com", &["audit", "verify"]).success();
}

// Row 12 -------------------------------------------------------------------

#[test]
fn an_absurd_timeout_is_a_configuration_error_and_a_timed_out_policy_records_no_made_up_fuel() {
    let health = HealthServer::start(200);
    let policy = "policy \"protected-deletes\" {\n  builtin = true\n  timeout = \"18446744073709551615s\"\n}\n";
    let p = TestProject::new(&two_environments(&health.url(), policy, ""));
    p.run("alice@example.com", &["plan", "staging"])
        .code(1)
        .stderr(predicate::str::contains(
            "`timeout` in policy \"protected-deletes\" is",
        ))
        .stderr(predicate::str::contains("it must be between 1ms and 1h"));

    let tmp = tempfile::tempdir().unwrap();
    let looping = write(
        tmp.path(),
        "loop.wasm",
        &abi_module("(loop $l (br $l)) (i32.const 0)", ""),
    );
    let out = opsdeploy(&tmp.path().join("cache"))
        .args(["policy", "eval", "--format", "json", "--timeout", "1s"])
        .arg(&looping)
        .arg("--input")
        .arg(small_input(tmp.path()))
        .assert()
        .code(3);
    let eval: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(eval["kind"], "timeout", "{eval}");
    assert!(eval["fuel_used"].is_null(), "{eval}");
}

// Row 14 -------------------------------------------------------------------

#[test]
fn the_built_in_safety_policies_apply_to_a_project_that_names_none() {
    let health = HealthServer::start(200);
    // No policy blocks at all; production takes a DROP COLUMN never run on
    // staging and has no runbook.
    let cfg = format!(
        r#"
project = "shop"

environment "staging" {{
  terraform {{ dir = "infra" }}
  approval {{ self_approve = true }}
}}

environment "production" {{
  promote_from = "staging"
  terraform {{ dir = "infra" }}
  migrations {{
    dir     = "db"
    command = ["sh", "-c", "exit 0", "{{file}}"]
  }}
  health {{ url = "{}" }}
  approval {{ self_approve = true }}
}}
"#,
        health.url()
    );
    let p = TestProject::new(&cfg);
    std::fs::create_dir_all(p.file("db")).unwrap();
    std::fs::write(
        p.file("db/0001_drop.contract.sql"),
        "ALTER TABLE users DROP COLUMN email;\n",
    )
    .unwrap();
    let blocked = p.run("alice@example.com", &["plan", "production"]).code(3);
    let err = stderr_of(&blocked);
    for policy in ["gates", "expand-contract", "promotion"] {
        assert!(err.contains(policy), "{policy} did not block: {err}");
    }

    // Turned off explicitly, with a reason every plan shows and the audit keeps.
    std::fs::write(
        p.file("opsdeploy.hcl"),
        format!(
            "{}{cfg}",
            off("expand-contract", "migrations are reviewed by the DBA team")
        ),
    )
    .unwrap();
    let plan = p.run("alice@example.com", &["plan", "production"]).code(3);
    let out = stdout_of(&plan);
    assert!(
        out.contains("built-in safety policies not run for production"),
        "{out}"
    );
    assert!(
        crate::support::has_row(
            &out,
            "expand-contract migrations are reviewed by the DBA team"
        ),
        "{out}"
    );
    assert!(
        !stderr_of(&plan).contains("expand-contract"),
        "{}",
        stderr_of(&plan)
    );
    let entries = p.audit_entries();
    let planned = entries.iter().rev().find(|e| e["kind"] == "plan").unwrap();
    assert_eq!(
        planned["data"]["policies_off"][0]["name"],
        "expand-contract"
    );
    assert_eq!(
        planned["data"]["policies_off"][0]["reason"],
        "migrations are reviewed by the DBA team"
    );
}

// Item 9 -------------------------------------------------------------------

#[test]
fn every_file_of_a_plan_bundle_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let health = HealthServer::start(200);
    let p = TestProject::new(&two_environments(&health.url(), "", ""));
    let digest = p.plan("alice@example.com", "staging");
    let dir = bundle_dir(&p, &digest);
    let mut files = vec![dir.clone()];
    let mut checked = 0;
    while let Some(d) = files.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let path = e.path();
            if path.is_dir() {
                files.push(path);
                continue;
            }
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{} is {mode:o}", path.display());
            checked += 1;
        }
    }
    assert!(
        checked >= 4,
        "tfplan, plan.json, input.json, results.json, manifest.json"
    );
}

#[test]
fn team_mode_stores_bundle_contents_encrypted_and_needs_the_key_to_read_them() {
    let Some(backend @ Backend::Postgres { .. }) = Backend::postgres() else {
        return;
    };
    let Backend::Postgres { url } = backend.clone() else {
        unreachable!()
    };
    let health = HealthServer::start(200);
    let p = TestProject::with_backend(
        &two_environments(
            &health.url(),
            &off("no-secrets", "the test plants a password on purpose"),
            "",
        ),
        backend,
    );
    std::fs::write(
        p.file("infra/main.tf"),
        format!(
            "{}\nvariable \"db_password\" {{\n  type      = string\n  sensitive = true\n  default   = \"{PLANTED_TF}\"\n}}\nresource \"terraform_data\" \"credentials\" {{\n  input = {{ password = var.db_password }}\n}}\n",
            crate::workflow::MAIN_TF
        ),
    )
    .unwrap();
    let digest = p.plan("alice@example.com", "staging");
    let full = bundle_dir(&p, &digest)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let rows = db
        .query(
            "SELECT path, content FROM opsdeploy.bundle_files WHERE digest = $1",
            &[&full],
        )
        .unwrap();
    assert!(rows.len() >= 4, "{} files", rows.len());
    for row in &rows {
        let path: String = row.get(0);
        let content: Vec<u8> = row.get(1);
        assert!(
            content.starts_with(b"ODSEAL1\0"),
            "{path} is stored in clear"
        );
        for clear in [
            PLANTED_TF.as_bytes(),
            b"terraform_version",
            b"resource_changes",
        ] {
            assert!(
                !content.windows(clear.len()).any(|w| w == clear),
                "{path} leaks {clear:?}"
            );
        }
    }
    // Another runner (no local copy) reads the bundle with the key...
    std::fs::remove_dir_all(p.file(".opsdeploy/bundles")).unwrap();
    p.run("alice@example.com", &["report", &digest]).success();
    // ...and gets a clear error without it.
    std::fs::remove_dir_all(p.file(".opsdeploy/bundles")).unwrap();
    let mut cmd = p.command("alice@example.com", &["report", &digest]);
    cmd.env_remove("OPSDEPLOY_BUNDLE_KEY");
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("neither OPSDEPLOY_BUNDLE_KEY nor OPSDEPLOY_BUNDLE_KEY_FILE is set"),
        "{err}"
    );
    assert!(err.contains("hint: set OPSDEPLOY_BUNDLE_KEY"), "{err}");
    // A plan without the key stops before running any tool.
    let mut cmd = p.command("alice@example.com", &["plan", "staging"]);
    cmd.env_remove("OPSDEPLOY_BUNDLE_KEY");
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
}
