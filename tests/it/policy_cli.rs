//! `opsdeploy policy ...` driven as a user would, with real terraform plans,
//! real cargo builds and hostile modules.

use std::path::Path;
use std::process::Command;

use predicates::prelude::*;

use crate::support::{abi_module, corpus, corpus_dir, opsdeploy, repo, row, small_input, write};

fn terraform(dir: &Path, args: &[&str]) -> std::process::Output {
    let out = Command::new("terraform")
        .args(args)
        .current_dir(dir)
        .env("TF_IN_AUTOMATION", "1")
        .env("CHECKPOINT_DISABLE", "1")
        .output()
        .expect("terraform is on PATH");
    assert!(
        out.status.success(),
        "terraform {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Applies a database and a cache, then plans a change that replaces the
/// database (its triggers change) and updates nothing else. Returns the plan JSON path.
fn real_replacement_plan(dir: &Path) -> std::path::PathBuf {
    let main_tf = |version: &str| {
        format!(
            r#"resource "terraform_data" "database" {{
  triggers_replace = ["engine-{version}"]
  input = {{ name = "orders", size = "db.t3.micro" }}
}}
resource "terraform_data" "cache" {{
  input = "redis"
}}
"#
        )
    };
    std::fs::write(dir.join("main.tf"), main_tf("15")).unwrap();
    terraform(dir, &["init", "-input=false", "-no-color"]);
    terraform(
        dir,
        &["apply", "-input=false", "-auto-approve", "-no-color"],
    );
    std::fs::write(dir.join("main.tf"), main_tf("16")).unwrap();
    terraform(dir, &["plan", "-input=false", "-no-color", "-out=tfplan"]);
    let show = terraform(dir, &["show", "-json", "tfplan"]);
    write(dir, "plan.json", &show.stdout)
}

#[test]
fn builtin_policy_denies_a_real_terraform_replacement() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = real_replacement_plan(tmp.path());
    let out = opsdeploy(tmp.path())
        .args([
            "policy",
            "eval",
            "builtin:protected-deletes",
            "--format",
            "json",
        ])
        .arg("--terraform-plan")
        .arg(&plan)
        .args([
            "--settings",
            r#"{"types":["terraform_data"]}"#,
            "--env",
            "production",
        ])
        .assert()
        .code(3)
        .get_output()
        .stdout
        .clone();
    let eval: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(eval["status"], "completed");
    let violations = eval["violations"].as_array().unwrap();
    assert_eq!(violations.len(), 1, "{eval:#}");
    assert_eq!(violations[0]["rule"], "protected-replace");
    assert_eq!(violations[0]["address"], "terraform_data.database");
    assert!(
        violations[0]["message"]
            .as_str()
            .unwrap()
            .contains("triggers_replace"),
        "{eval:#}"
    );
    assert_eq!(eval["sha256"].as_str().unwrap().len(), 64);
    assert!(eval["fuel_used"].as_u64().unwrap() > 0);

    // Without settings terraform_data is not protected: allowed, exit 0.
    opsdeploy(tmp.path())
        .args(["policy", "eval", "builtin:protected-deletes", "-q"])
        .arg("--terraform-plan")
        .arg(&plan)
        .assert()
        .code(0)
        .stdout("allowed\n");
}

#[test]
fn human_output_reads_at_a_glance() {
    let tmp = tempfile::tempdir().unwrap();
    let out = opsdeploy(tmp.path())
        .current_dir(repo())
        .args([
            "policy",
            "eval",
            "builtin:protected-deletes",
            "--terraform-plan",
        ])
        .arg(corpus(
            "terraform-compliance/tests/functional/test_issue_522/plan.out.json",
        ))
        .args([
            "--settings",
            r#"{"extra_types":["aws_cloudwatch_event_rule"]}"#,
        ])
        .assert()
        .code(3)
        .get_output()
        .stdout
        .clone();
    insta::with_settings!({filters => vec![
        (r"sha256 [0-9a-f]{12}", "sha256 [SHA]"),
        (r"fuel [0-9,]+ · [0-9.]+ ms", "fuel [FUEL] · [TIME] ms"),
    ]}, {
        insta::assert_snapshot!(String::from_utf8(out).unwrap());
    });
}

#[test]
fn wasi_module_is_a_denial_naming_the_import() {
    let tmp = tempfile::tempdir().unwrap();
    let wasm = write(
        tmp.path(),
        "uses_wasi.wasm",
        &abi_module(
            "(i32.const 0)",
            r#"(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))"#,
        ),
    );
    opsdeploy(tmp.path())
        .args(["policy", "eval"])
        .arg(&wasm)
        .arg("--input")
        .arg(small_input(tmp.path()))
        .assert()
        .code(3)
        .stdout(predicate::str::contains("policy-refused"))
        .stdout(predicate::str::contains("wasi_snapshot_preview1.fd_write"))
        .stdout(predicate::str::contains("failing closed"));
}

#[test]
fn runaway_policy_is_a_denial_with_its_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let wasm = write(
        tmp.path(),
        "spin.wasm",
        &abi_module("(loop $l (br $l)) (i32.const 0)", ""),
    );
    opsdeploy(tmp.path())
        .args(["policy", "eval", "--fuel", "1000000"])
        .arg(&wasm)
        .arg("--input")
        .arg(small_input(tmp.path()))
        .assert()
        .code(3)
        .stdout(predicate::str::contains("policy-out-of-fuel"))
        .stdout(predicate::str::contains(
            "ran out of fuel (limit 1000000 units)",
        ));
}

#[test]
fn bad_inputs_are_clear_errors_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let garbage = write(tmp.path(), "input.json", b"{\"schema_version\": 1, ");
    opsdeploy(tmp.path())
        .args(["policy", "eval", "builtin:protected-deletes", "--input"])
        .arg(&garbage)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("error: input document"))
        .stderr(predicate::str::contains("is not valid JSON"))
        .stderr(predicate::str::contains("--> "))
        .stderr(predicate::str::contains("hint: "));

    let state = corpus("terraform-json/testdata/moved_block/show.json");
    opsdeploy(tmp.path())
        .args([
            "policy",
            "eval",
            "builtin:protected-deletes",
            "--terraform-plan",
        ])
        .arg(&state)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("is a state document"));

    opsdeploy(tmp.path())
        .args(["policy", "eval", "builtin:no-such-policy", "--input"])
        .arg(small_input(tmp.path()))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "hint: built-in policies: builtin:",
        ))
        .stderr(predicate::str::contains("builtin:protected-deletes"));

    opsdeploy(tmp.path())
        .args(["policy", "eval", "missing.wasm", "--input"])
        .arg(small_input(tmp.path()))
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "could not read policy module missing.wasm",
        ));

    opsdeploy(tmp.path())
        .args([
            "policy",
            "eval",
            "builtin:protected-deletes",
            "--settings",
            r#"{"typo": 1}"#,
            "--input",
        ])
        .arg(small_input(tmp.path()))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("do not match its settings schema"))
        .stderr(predicate::str::contains("'typo' was unexpected"));
}

#[test]
fn usage_errors_exit_2_and_version_names_the_abi() {
    let tmp = tempfile::tempdir().unwrap();
    opsdeploy(tmp.path())
        .args(["policy", "eval", "builtin:protected-deletes"])
        .assert()
        .code(2);
    opsdeploy(tmp.path())
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::contains("opsdeploy 0.1.0"));
    opsdeploy(tmp.path()).arg("-V").assert().success();
    opsdeploy(tmp.path())
        .args(["help", "policy", "eval"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Example"));
}

#[test]
fn builtin_policy_fixtures_pass() {
    let tmp = tempfile::tempdir().unwrap();
    opsdeploy(tmp.path())
        .current_dir(repo())
        // The fixtures name corpus files as `$OPSDEPLOY_CORPUS/...`.
        .env("OPSDEPLOY_CORPUS", corpus_dir())
        .args(["policy", "test", "policies/"])
        .assert()
        .success()
        .stdout(predicate::str::contains("test result: ok."))
        .stdout(predicate::str::contains("0 failed"));
}

/// `policy new` outside any checkout (vendored SDK), one-command build and test,
/// and an SDK panic turned into a denial carrying the panic message.
#[test]
fn scaffolded_policy_builds_passes_its_fixture_and_panics_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    // Shared across runs so the wasm build of serde and the SDK happens once.
    let target = repo().join("target/test-policy-crates");
    opsdeploy(tmp.path())
        .current_dir(tmp.path())
        .args(["policy", "new", "cost-guard"])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "next: opsdeploy policy test cost-guard",
        ));
    let crate_dir = tmp.path().join("cost-guard");
    opsdeploy(tmp.path())
        .current_dir(tmp.path())
        .env("CARGO_TARGET_DIR", &target)
        .args(["policy", "test", "cost-guard"])
        .assert()
        .success()
        .stdout(row("ok cost-guard deny_forbidden_type"))
        .stdout(predicate::str::contains("1 passed; 0 failed"));

    // Make it panic on a given environment, rebuild, evaluate.
    let lib = crate_dir.join("src/lib.rs");
    let src = std::fs::read_to_string(&lib).unwrap().replace(
        "    let Some(plan) = input.plan() else {",
        "    if input.environment.name == \"boom\" {\n        panic!(\"cannot judge {}\", input.environment.project);\n    }\n    let Some(plan) = input.plan() else {",
    );
    std::fs::write(&lib, src).unwrap();
    let built = opsdeploy(tmp.path())
        .current_dir(tmp.path())
        .env("CARGO_TARGET_DIR", &target)
        .args([
            "policy",
            "build",
            "cost-guard",
            "--out",
            "out",
            "--format",
            "json",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let built: serde_json::Value = serde_json::from_slice(&built).unwrap();
    assert_eq!(built[0]["policy"], "cost-guard");
    let wasm = tmp.path().join("out/cost_guard.wasm");
    assert!(wasm.is_file());
    let input = write(
        tmp.path(),
        "boom.json",
        br#"{"schema_version":1,"environment":{"name":"boom","project":"shop"}}"#,
    );
    opsdeploy(tmp.path())
        .args(["policy", "eval"])
        .arg(&wasm)
        .arg("--input")
        .arg(&input)
        .assert()
        .code(3)
        .stdout(predicate::str::contains("policy-panic"))
        .stdout(predicate::str::contains("cannot judge shop"))
        .stdout(predicate::str::contains("src/lib.rs"));
}
