//! Rolling a policy out: `policy replay` over a history of real plans (real
//! terraform), a shadow policy on every plan and apply, `status --policies`,
//! and the plan's note on a policy changed since the last deploy.
//!
//! The history is made once (six plans, two applies) and copied for each
//! test: terraform is the slow part.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use predicates::prelude::*;
use serde_json::Value;

use crate::reports::{parse_junit, sarif_validator, schema_errors, snapshot_filters};
use crate::support::{Backend, has_row};
use crate::workflow::TestProject;

const USER: &str = "alice@example.com";

/// The setting being tuned: the database is protected by address.
const PROTECT_DATABASE: &str = r#"{"addresses": ["terraform_data.database"]}"#;

const CONFIG: &str = r#"
project = "shop"

policy "protected-deletes" {
  builtin     = true
  enforcement = "hard-mandatory"
}

policy "cost-guard" {
  source      = "policies/cost_guard.wasm"
  enforcement = "shadow"
}

policy "gates" {
  enabled = false
  reason  = "replay is tested with protected-deletes and cost-guard"
}

policy "expand-contract" {
  enabled = false
  reason  = "replay is tested with protected-deletes and cost-guard"
}

policy "image-scan" {
  enabled = false
  reason  = "replay is tested with protected-deletes and cost-guard"
}

policy "no-secrets" {
  enabled = false
  reason  = "replay is tested with protected-deletes and cost-guard"
}

policy "promotion" {
  enabled = false
  reason  = "replay is tested with protected-deletes and cost-guard"
}

environment "staging" {
  terraform { dir = "infra" }
  approval { self_approve = true }
}

environment "production" {
  terraform { dir = "infra-production" }
  approval { self_approve = true }
}
"#;

/// Terraform with a database replaced when `engine` changes, and a web tier
/// (none: removed).
fn main_tf(engine: u32, web_image: Option<&str>) -> String {
    let mut tf = format!(
        r#"
resource "terraform_data" "database" {{
  triggers_replace = [{engine}]
  input = {{ name = "orders" }}
}}
"#
    );
    if let Some(image) = web_image {
        tf.push_str(&format!(
            r#"
resource "terraform_data" "web" {{
  input = {{ image = "{image}", replicas = 2 }}
}}
"#
        ));
    }
    tf
}

/// A policy that always denies the web tier's cost: `version` changes its
/// message (and so its module), not what it finds.
pub fn cost_guard(version: &str) -> Vec<u8> {
    let output = format!(
        r#"{{"violations":[{{"rule":"over-budget","severity":"deny","address":"terraform_data.web","message":"the web tier is over budget ({version})"}}]}}"#
    );
    let wat = format!(
        r#"(module
  (import "opsdeploy" "set_output" (func $set_output (param i32 i32)))
  (memory (export "memory") 64)
  (data (i32.const 16) "{}")
  (func (export "opsdeploy_abi_version") (result i32) i32.const 1)
  (func (export "opsdeploy_alloc") (param i32) (result i32) i32.const 65536)
  (func (export "opsdeploy_evaluate") (param i32 i32) (result i32)
    (call $set_output (i32.const 16) (i32.const {}))
    i32.const 0))"#,
        output.replace('"', "\\\""),
        output.len()
    );
    wat::parse_str(wat).expect("valid WAT")
}

/// The history every test starts from, made once.
struct History {
    project: TestProject,
    /// Full digests by plan: 1 create (applied), 2 replace the database
    /// (applied), 3 update the web tier, 4 replace the database and update
    /// the web tier, 5 delete the web tier, 6 create in production.
    plans: Vec<String>,
    /// stdout of plan 2, the first after cost-guard changed.
    plan2_out: String,
}

fn history() -> &'static History {
    static HISTORY: OnceLock<History> = OnceLock::new();
    HISTORY.get_or_init(make_history)
}

fn full_digest(p: &TestProject, short: &str) -> String {
    std::fs::read_dir(p.file(".opsdeploy/bundles"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with(short))
        .expect("the bundle directory")
}

fn make_history() -> History {
    let p = TestProject::new(CONFIG);
    std::fs::create_dir_all(p.file("infra-production")).unwrap();
    std::fs::create_dir_all(p.file("policies")).unwrap();
    let tf = |dir: &str, engine, web| {
        std::fs::write(p.file(dir).join("main.tf"), main_tf(engine, web)).unwrap()
    };
    let plan = |env: &str| full_digest(&p, &p.plan(USER, env));
    std::fs::write(p.file("policies/cost_guard.wasm"), cost_guard("v1")).unwrap();

    tf("infra", 15, Some("web:1.0"));
    let d1 = plan("staging");
    p.run(USER, &["approve", "staging", "--plan", &d1])
        .success();
    p.run(USER, &["apply", "staging", "--yes"]).success();

    std::fs::write(p.file("policies/cost_guard.wasm"), cost_guard("v2")).unwrap();
    tf("infra", 16, Some("web:1.0"));
    let out = p
        .run(USER, &["plan", "staging"])
        .success()
        .get_output()
        .stdout
        .clone();
    let plan2_out = String::from_utf8(out).unwrap();
    let d2 = full_digest(&p, plan2_out.split_whitespace().nth(1).unwrap());
    p.run(USER, &["approve", "staging", "--plan", &d2])
        .success();
    p.run(USER, &["apply", "staging", "--yes"]).success();

    tf("infra", 16, Some("web:1.1"));
    let d3 = plan("staging");
    tf("infra", 17, Some("web:1.1"));
    let d4 = plan("staging");
    tf("infra", 16, None);
    let d5 = plan("staging");
    tf("infra-production", 15, Some("web:1.0"));
    let d6 = plan("production");
    History {
        project: p,
        plans: vec![d1, d2, d3, d4, d5, d6],
        plan2_out,
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        let kind = e.file_type().unwrap();
        if kind.is_dir() {
            copy_dir(&e.path(), &target);
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(e.path()).unwrap(), &target).unwrap();
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// A copy of the history, to change or to run against.
fn copy() -> TestProject {
    let h = history();
    let dir = tempfile::tempdir().unwrap();
    copy_dir(h.project.path(), dir.path());
    TestProject {
        dir,
        cache: tempfile::tempdir().unwrap(),
        backend: Backend::File,
    }
}

fn stdout(a: assert_cmd::assert::Assert) -> String {
    String::from_utf8(a.get_output().stdout.clone()).unwrap()
}

fn json(p: &TestProject, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.extend(["--format", "json"]);
    serde_json::from_str(&stdout(p.run(USER, &args).success())).unwrap()
}

/// The element of a JSON list whose `key` is `name`.
fn named<'a>(list: &'a Value, key: &str, name: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|e| e[key] == name)
        .unwrap_or_else(|| panic!("no {key} {name} in {list}"))
}

/// A policy's enforcement, whether it denied and whether it blocked.
fn verdict(v: &Value) -> (Option<&str>, Option<bool>, Option<bool>) {
    (
        v["enforcement"].as_str(),
        v["denied"].as_bool(),
        v["blocks"].as_bool(),
    )
}

const SHADOW_DENIED: (Option<&str>, Option<bool>, Option<bool>) =
    (Some("shadow"), Some(true), Some(false));

fn digests(list: &Value, pick: impl Fn(&Value) -> bool) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .filter(|b| pick(b))
        .map(|b| b["digest"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn replay_finds_exactly_the_plans_a_new_protected_deletes_setting_would_block() {
    let h = history();
    let p = copy();
    let replay = [
        "policy",
        "replay",
        "builtin:protected-deletes",
        "--settings",
        PROTECT_DATABASE,
    ];
    let r = json(&p, &replay);
    assert_eq!(r["schema"], 1);
    assert_eq!(r["mode"], "policy");
    assert_eq!(r["policies"][0]["name"], "protected-deletes");
    assert_eq!(r["policies"][0]["enforcement"], "hard-mandatory");
    assert_eq!(
        digests(&r["bundles"], |_| true),
        h.plans,
        "every plan, oldest first"
    );
    let newly = digests(&r["bundles"], |b| {
        b["then"] == "pass" && b["now"] == "blocked"
    });
    assert_eq!(newly, [h.plans[1].clone(), h.plans[3].clone()]);
    assert_eq!(
        r["summary"],
        serde_json::json!({"replayed": 6, "skipped": 0, "newly_blocked": 2, "unblocked": 0, "findings_changed": 0})
    );
    let d2 = &r["bundles"][1];
    assert_eq!(
        d2["applied"], "succeeded",
        "it was deployed: the setting would have stopped it"
    );
    assert_eq!(
        d2["blocked_by_now"],
        serde_json::json!(["protected-deletes"])
    );
    assert_eq!(d2["new"][0]["policy"], "protected-deletes");
    assert_eq!(d2["new"][0]["address"], "terraform_data.database");
    assert_eq!(d2["new"][0]["severity"], "deny");
    assert!(d2["gone"].as_array().unwrap().is_empty());
    assert_eq!(r["bundles"][2]["applied"], "no");

    // Selections: one environment, the newest N, since a time.
    let prod = json(&p, &[&replay[..], &["--env", "production"]].concat());
    assert_eq!(digests(&prod["bundles"], |_| true), [h.plans[5].clone()]);
    let last = json(
        &p,
        &[&replay[..], &["--env", "staging", "--last", "2"]].concat(),
    );
    assert_eq!(digests(&last["bundles"], |_| true), h.plans[3..5]);
    let future = json(&p, &[&replay[..], &["--since", "2999-01-01"]].concat());
    assert_eq!(future["summary"]["replayed"], 0);

    // Exit 0 whatever changed; 3 with --fail-on-change, and 0 again when nothing does.
    let human = stdout(p.run(USER, &replay).success());
    assert!(
        human.contains("6 bundles replayed: 2 would newly be blocked, 0 unblocked, 0 with other findings changed"),
        "{human}"
    );
    let row = format!("{} staging", &h.plans[1][..12]);
    assert!(has_row(&human, &row), "{human}");
    assert!(
        human.contains("would newly be blocked by protected-deletes"),
        "{human}"
    );
    p.run(USER, &[&replay[..], &["--fail-on-change"]].concat())
        .code(3)
        .stderr(predicate::str::contains(
            "hint: the bundles above would get another verdict",
        ));
    p.run(USER, &["policy", "replay", "builtin:protected-deletes", "--fail-on-change", "-q"])
        .success()
        .stdout("6 bundles replayed: 0 would newly be blocked, 0 unblocked, 0 with other findings changed\n");

    // Protecting every terraform_data also blocks deleting the web tier (plan 5).
    let all = json(
        &p,
        &[
            "policy",
            "replay",
            "builtin:protected-deletes",
            "--settings",
            r#"{"extra_types": ["terraform_data"]}"#,
        ],
    );
    let newly = digests(&all["bundles"], |b| b["now"] == "blocked");
    assert_eq!(
        newly,
        [h.plans[1].clone(), h.plans[3].clone(), h.plans[4].clone()]
    );

    // Settings from a file read the same.
    std::fs::write(p.file("protect.json"), PROTECT_DATABASE).unwrap();
    let from_file = json(
        &p,
        &[
            "policy",
            "replay",
            "builtin:protected-deletes",
            "--settings",
            "@protect.json",
        ],
    );
    assert_eq!(from_file["bundles"], r["bundles"]);

    // Settings the policy does not accept are refused, naming --settings.
    p.run(
        USER,
        &[
            "policy",
            "replay",
            "builtin:protected-deletes",
            "--settings",
            r#"{"adresses": []}"#,
        ],
    )
    .code(1)
    .stderr(predicate::str::contains("--> --settings"));
    p.run(USER, &["policy", "replay", "builtin:no-such-policy"])
        .code(2)
        .stderr(predicate::str::contains(
            "there is no built-in policy \"no-such-policy\"",
        ));
    p.run(
        USER,
        &[
            "policy",
            "replay",
            "builtin:protected-deletes",
            "--since",
            "last tuesday",
        ],
    )
    .code(2)
    .stderr(predicate::str::contains("--> --since"));
}

#[test]
fn replay_of_the_configuration_compares_every_policy_as_configured() {
    let h = history();
    let p = copy();
    // cost-guard's module changed after plan 1: its findings read the same
    // (only the wording differs), and as a shadow policy it blocks nothing.
    let r = json(&p, &["policy", "replay", "--config"]);
    assert_eq!(r["mode"], "config");
    assert_eq!(r["summary"]["newly_blocked"], 0);
    assert_eq!(r["summary"]["findings_changed"], 0);
    let names: Vec<&str> = r["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["protected-deletes", "cost-guard"]);
    assert_eq!(r["policies"][1]["enforcement"], "shadow");

    // The configuration tightened: the replay shows what it would block.
    let tightened = CONFIG.replace(
        "  enforcement = \"hard-mandatory\"\n}",
        "  enforcement = \"hard-mandatory\"\n  settings    = { addresses = [\"terraform_data.database\"] }\n}",
    );
    std::fs::write(p.file("opsdeploy.hcl"), tightened).unwrap();
    let r = json(&p, &["policy", "replay", "--config"]);
    let newly = digests(&r["bundles"], |b| {
        b["then"] == "pass" && b["now"] == "blocked"
    });
    assert_eq!(newly, [h.plans[1].clone(), h.plans[3].clone()]);
}

#[test]
fn replay_reports_in_every_format() {
    let p = copy();
    let replay = [
        "policy",
        "replay",
        "builtin:protected-deletes",
        "--settings",
        PROTECT_DATABASE,
    ];
    let run = |format: &str| {
        stdout(
            p.run(USER, &[&replay[..], &["--format", format]].concat())
                .success(),
        )
    };

    let md = run("markdown");
    assert!(
        md.starts_with("## opsdeploy policy replay — `protected-deletes`"),
        "{md}"
    );
    assert!(
        md.contains(
            "| bundle | environment | planned at | by | applied | then | now | what changed |"
        ),
        "{md}"
    );
    assert!(
        md.contains("**would newly be blocked by protected-deletes**"),
        "{md}"
    );
    assert!(
        md.contains("4 bundles have the same verdict and findings as when planned."),
        "{md}"
    );

    let sarif: Value = serde_json::from_str(&run("sarif")).unwrap();
    assert_eq!(
        schema_errors(&sarif_validator(), &sarif),
        Vec::<String>::new()
    );
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "one new finding in each of two plans");
    assert_eq!(results[0]["level"], "error");

    let junit = parse_junit(&run("junit"));
    let cases = &junit[0].1;
    assert_eq!(cases.len(), 6);
    assert_eq!(cases.iter().filter(|c| c.2.is_some()).count(), 2);

    let html = run("html");
    assert!(
        html.starts_with("<!DOCTYPE html>")
            && html.contains("would newly be blocked by protected-deletes")
    );
    assert!(!html.contains("<script"));

    for format in ["human", "markdown"] {
        insta::with_settings!({filters => snapshot_filters()}, {
            insta::assert_snapshot!(format!("replay_{format}"), run(format));
        });
    }
}

/// A bundle sealed like any other whose input document has `version`
/// (`None`: no schema_version at all).
fn forge_bundle(p: &TestProject, from: &str, version: Option<u32>) -> String {
    use opsdeploy::store::bundle::{Bundle, BundleBuilder};
    let bundles = p.file(".opsdeploy/bundles");
    let b = Bundle::open(&bundles, from).unwrap();
    let mut builder = BundleBuilder::new(&bundles).unwrap();
    for f in &b.manifest.files {
        let mut bytes = b.read(&f.path).unwrap();
        if f.path == "input.json" {
            let mut doc: Value = serde_json::from_slice(&bytes).unwrap();
            match version {
                Some(v) => doc["schema_version"] = v.into(),
                None => {
                    doc.as_object_mut().unwrap().remove("schema_version");
                }
            }
            bytes = serde_json::to_vec(&doc).unwrap();
        }
        builder.add_file(&f.path, &bytes).unwrap();
    }
    let mut manifest = b.manifest.clone();
    manifest.created_at = "2026-01-01T00:00:00Z".into();
    let forged = builder.finish(manifest).unwrap();
    std::fs::copy(b.path("results.json"), forged.path("results.json")).unwrap();
    forged.digest
}

#[test]
fn a_bundle_with_an_unknown_input_schema_version_is_listed_as_skipped_with_the_reason() {
    let h = history();
    let p = copy();
    let forged = forge_bundle(&p, &h.plans[0], Some(99));
    // Version 1 is the first: no upgrade from an older one is defined yet.
    let older = forge_bundle(&p, &h.plans[0], Some(0));
    let unversioned = forge_bundle(&p, &h.plans[0], None);
    // And one changed behind the store's back.
    let tampered = p
        .file(".opsdeploy/bundles")
        .join(&h.plans[2])
        .join("input.json");
    let text = std::fs::read_to_string(&tampered)
        .unwrap()
        .replace("web:1.1", "web:6.6");
    std::fs::write(&tampered, text).unwrap();

    let r = json(&p, &["policy", "replay", "builtin:protected-deletes"]);
    assert_eq!(r["summary"]["replayed"], 5);
    assert_eq!(r["summary"]["skipped"], 4);
    let reasons: BTreeMap<String, String> = r["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["digest"].as_str().unwrap().to_string(),
                s["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        reasons[&forged],
        "its input document has schema version 99, newer than this opsdeploy reads (1)"
    );
    assert_eq!(
        reasons[&older],
        "its input document has schema version 0, and no upgrade from it to version 1 is defined"
    );
    assert_eq!(
        reasons[&unversioned],
        "its input document has no schema_version"
    );
    assert_eq!(
        reasons[&h.plans[2]],
        "its input.json does not match the manifest: it was changed after the plan"
    );
    let human = stdout(
        p.run(USER, &["policy", "replay", "builtin:protected-deletes"])
            .success(),
    );
    assert!(human.contains("skipped"), "{human}");
    assert!(
        has_row(
            &human,
            &format!(
                "{} staging 2026-01-01T00:00:00Z its input document has schema version 99",
                &forged[..12]
            )
        ),
        "{human}"
    );
    assert!(human.contains("; 4 skipped"), "{human}");
}

/// Every file under `dir` with its bytes.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(
                    path.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&path).unwrap(),
                );
            }
        }
    }
    out
}

/// Every row of every opsdeploy table, in order.
fn database(url: &str) -> Vec<String> {
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let mut out = Vec::new();
    for table in [
        "audit_log",
        "approvals",
        "bundles",
        "bundle_files",
        "locks",
        "schema_version",
    ] {
        let rows = client
            .query(
                &format!("SELECT t::text FROM opsdeploy.{table} t ORDER BY 1"),
                &[],
            )
            .unwrap();
        out.extend(
            rows.iter()
                .map(|r| format!("{table}: {}", r.get::<_, String>(0))),
        );
    }
    out
}

const REPLAYS: &[&[&str]] = &[
    &[
        "policy",
        "replay",
        "builtin:protected-deletes",
        "--settings",
        PROTECT_DATABASE,
    ],
    &[
        "policy",
        "replay",
        "policies/cost_guard.wasm",
        "--format",
        "markdown",
    ],
    &["policy", "replay", "--config", "--format", "json"],
];

on_both_backends! {
    fn replay_leaves_the_store_byte_identical(backend) {
        let h = history();
        let p = copy();
        let (p, before, state) = match &backend {
            Backend::File => {
                let before = tree(p.path());
                (p, before, Vec::new())
            }
            Backend::Postgres { url } => {
                p.run_with(USER, &["state", "migrate", "--to", "postgres"], &[("OPSDEPLOY_DATABASE_URL", url)])
                    .success();
                // Another checkout: the project files, no local state.
                let team = TestProject::with_backend(CONFIG, backend.clone());
                for dir in ["infra", "infra-production", "policies"] {
                    copy_dir(&p.file(dir), &team.file(dir));
                }
                std::fs::remove_dir_all(team.file("infra/.terraform")).ok();
                let before = tree(team.path());
                (team, before, database(url))
            }
        };
        for args in REPLAYS {
            let out = stdout(p.run(USER, args).success());
            assert!(out.contains(&h.plans[1][..12]) || out.contains(&h.plans[1]), "{out}");
        }
        // status --policies reads the same store, and only reads it.
        let s = json(&p, &["status", "--policies"]);
        assert_eq!(s["plans"], 6);
        let cg = named(&s["policies"], "policy", "cost-guard");
        assert_eq!((cg["evaluations"].as_u64(), cg["would_have_blocked"].as_u64()), (Some(6), Some(6)));
        assert!(tree(p.path()) == before, "the project's files changed");
        if let Backend::Postgres { url } = &backend {
            assert_eq!(database(url), state, "the database changed");
        }
        p.run(USER, &["audit", "verify"]).success();
    }
}

#[test]
fn a_shadow_policy_never_blocks_but_appears_in_every_report_and_in_status_policies() {
    let h = history();
    let p = copy();
    // It denied every plan and apply, and nothing was blocked or overridden.
    let entries = p.audit_entries();
    let results: Vec<&Value> = entries
        .iter()
        .filter(|e| e["kind"] == "policy_results")
        .collect();
    assert_eq!(results.len(), 6 + 2, "six plans, two applies");
    for e in &results {
        assert_eq!(e["data"]["verdict"], "pass");
        let cg = named(&e["data"]["policies"], "policy", "cost-guard");
        assert_eq!(verdict(cg), SHADOW_DENIED);
        assert!(
            cg["fuel_used"].as_u64().is_some() && cg["duration_ms"].as_f64().is_some(),
            "{cg}"
        );
    }
    assert!(!entries.iter().any(|e| e["kind"] == "override"));
    let bundle = h
        .project
        .file(".opsdeploy/bundles")
        .join(&h.plans[0])
        .join("results.json");
    let stored: Value = serde_json::from_slice(&std::fs::read(bundle).unwrap()).unwrap();
    assert_eq!(
        verdict(named(&stored["decisions"], "policy", "cost-guard")),
        SHADOW_DENIED
    );

    // Shown as shadow, in every report.
    assert!(
        has_row(&h.plan2_out, "shadow cost-guard shadow 1"),
        "{}",
        h.plan2_out
    );
    assert!(
        h.plan2_out.contains("in shadow: it would deny if enforced"),
        "{}",
        h.plan2_out
    );
    let short = &h.plans[0][..12];
    for format in ["human", "json", "markdown", "html", "sarif", "junit"] {
        let out = stdout(
            p.run(USER, &["report", short, "--format", format])
                .success(),
        );
        assert!(out.contains("shadow"), "{format}: {out}");
        assert!(out.contains("cost-guard"), "{format}: {out}");
    }
    let report = json(&p, &["report", short]);
    assert_eq!(
        report["verdict"], "pass",
        "a shadow finding is not a warning"
    );
    let policy = named(&report["policies"], "name", "cost-guard");
    assert_eq!(
        (policy["status"].as_str(), policy["blocks"].as_bool()),
        (Some("shadow"), Some(false))
    );
    let sarif: Value = serde_json::from_str(&stdout(
        p.run(USER, &["report", short, "--format", "sarif"])
            .success(),
    ))
    .unwrap();
    assert_eq!(sarif["runs"][0]["results"][0]["level"], "note");

    // Nothing to override.
    p.run(
        USER,
        &[
            "approve",
            "staging",
            "--plan",
            &h.plans[4],
            "--override",
            "cost-guard",
            "--reason",
            "x",
        ],
    )
    .code(1)
    .stderr(predicate::str::contains("runs in shadow; it never blocks"));

    // status --policies: over the last N plans.
    let s = json(&p, &["status", "--policies"]);
    assert_eq!(s["plans"], 6);
    let cg = named(&s["policies"], "policy", "cost-guard");
    assert_eq!(cg["enforcement"], "shadow");
    assert_eq!(
        (
            cg["evaluations"].as_u64(),
            cg["would_have_blocked"].as_u64(),
            cg["blocked"].as_u64()
        ),
        (Some(6), Some(6), Some(0))
    );
    assert_eq!(cg["modules"], 2, "cost-guard changed after the first plan");
    assert!(cg["fuel"]["max"].as_u64().unwrap() > 0);
    let pd = named(&s["policies"], "policy", "protected-deletes");
    assert_eq!(
        (
            pd["would_have_blocked"].as_u64(),
            pd["failures"].as_object().map(|f| f.len())
        ),
        (Some(0), Some(0))
    );
    let staging = json(&p, &["status", "staging", "--policies", "--last", "2"]);
    assert_eq!(staging["plans"], 2);
    let human = stdout(p.run(USER, &["status", "--policies"]).success());
    assert!(human.contains("policies over the last 6 plans"), "{human}");
    assert!(has_row(&human, "cost-guard shadow 6 6 0"), "{human}");
}

#[test]
fn a_plan_names_a_policy_changed_since_the_last_deploy_and_the_audit_records_both_hashes() {
    let h = history();
    let p = copy();
    let replay = "opsdeploy policy replay policies/cost_guard.wasm --env staging";
    let said = "policy cost-guard changed since the last deploy (module ";
    assert!(h.plan2_out.contains(said), "{}", h.plan2_out);
    assert!(
        h.plan2_out.contains(&format!("replay it with `{replay}`")),
        "{}",
        h.plan2_out
    );
    assert!(
        !h.plan2_out.contains("protected-deletes changed"),
        "{}",
        h.plan2_out
    );

    let sha = |v: &str| opsdeploy::store::bundle::sha256_hex(&cost_guard(v));
    let entries = p.audit_entries();
    let of = |digest: &str| -> Value {
        let e = entries
            .iter()
            .find(|e| e["kind"] == "policy_results" && e["digest"] == digest)
            .unwrap();
        named(&e["data"]["policies"], "policy", "cost-guard").clone()
    };
    let changed = of(&h.plans[1]);
    assert_eq!(changed["sha256"], sha("v2"));
    assert_eq!(changed["deployed_sha256"], sha("v1"));
    // Plan 3 came after plan 2 was deployed: nothing changed since.
    assert!(of(&h.plans[2]).get("deployed_sha256").is_none());

    // The command it names runs, over the environment's history.
    let args: Vec<&str> = replay.split_whitespace().skip(1).collect();
    let r = json(&p, &args);
    assert_eq!(r["summary"]["replayed"], 5);
    assert_eq!(r["policies"][0]["name"], "cost-guard");
}

/// A policy that traps on every evaluation.
fn trapping() -> Vec<u8> {
    wat::parse_str(
        r#"(module
  (memory (export "memory") 64)
  (func (export "opsdeploy_abi_version") (result i32) i32.const 1)
  (func (export "opsdeploy_alloc") (param i32) (result i32) i32.const 65536)
  (func (export "opsdeploy_evaluate") (param i32 i32) (result i32) unreachable))"#,
    )
    .expect("valid WAT")
}

#[test]
fn a_shadow_policy_that_cannot_run_blocks_nothing_and_counts_as_a_failure() {
    let p = copy();
    std::fs::write(p.file("policies/trap.wasm"), trapping()).unwrap();
    std::fs::write(
        p.file("opsdeploy.hcl"),
        format!(
            "{CONFIG}\npolicy \"trapper\" {{\n  source      = \"policies/trap.wasm\"\n  enforcement = \"shadow\"\n}}\n"
        ),
    )
    .unwrap();

    // A failure is a denial (fail closed), and in shadow a denial blocks nothing.
    let planned = json(&p, &["plan", "staging"]);
    assert_eq!(planned["blocked"], false);
    let trapper = named(&planned["decisions"], "policy", "trapper");
    assert_eq!(verdict(trapper), SHADOW_DENIED);
    assert_eq!(trapper["evaluation"]["status"], "failed");
    assert_eq!(trapper["evaluation"]["kind"], "trap");
    // New since staging's last deploy, so the plan names it with its replay.
    let change = named(&planned["policy_changes"], "policy", "trapper");
    assert_eq!(change["deployed_sha256"], Value::Null);
    assert_eq!(
        change["replay"],
        "opsdeploy policy replay policies/trap.wasm --env staging"
    );

    // Approved and applied without an override.
    let digest = planned["digest"].as_str().unwrap();
    p.run(USER, &["approve", "staging", "--plan", digest])
        .success();
    p.run(USER, &["apply", "staging", "--yes"]).success();
    let entries = p.audit_entries();
    let recorded: Vec<&Value> = entries
        .iter()
        .filter(|e| e["kind"] == "policy_results" && e["digest"] == digest)
        .collect();
    assert_eq!(recorded.len(), 2, "at plan and at apply");
    for e in recorded {
        let t = named(&e["data"]["policies"], "policy", "trapper");
        assert_eq!(verdict(t), SHADOW_DENIED, "{e}");
        assert_eq!(t["failure"], "trap", "{e}");
    }
    assert!(!entries.iter().any(|e| e["kind"] == "override"));

    // status --policies counts it as a failure, by kind.
    let s = json(&p, &["status", "staging", "--policies"]);
    let t = named(&s["policies"], "policy", "trapper");
    assert_eq!(
        (
            t["evaluations"].as_u64(),
            t["would_have_blocked"].as_u64(),
            t["blocked"].as_u64()
        ),
        (Some(1), Some(1), Some(0))
    );
    assert_eq!(t["failures"], serde_json::json!({"trap": 1}));
    let human = stdout(p.run(USER, &["status", "staging", "--policies"]).success());
    assert!(
        has_row(&human, "trapper shadow 1 1 1 (policy-trap 1)"),
        "{human}"
    );
}

/// A Rego policy of ours (conftest conventions) replayed from its file, as
/// `policy eval` and the plan's replay hint name it.
const NO_DATABASE_REPLACE: &str = r#"package main

import rego.v1

deny contains msg if {
	some rc in input.terraform.plan.resource_changes
	rc.address == "terraform_data.database"
	"delete" in rc.change.actions
	msg := sprintf("%s would be replaced", [rc.address])
}
"#;

#[test]
fn replay_of_a_rego_file_finds_the_plans_it_would_block() {
    let h = history();
    let p = copy();
    std::fs::write(
        p.file("policies/no_database_replace.rego"),
        NO_DATABASE_REPLACE,
    )
    .unwrap();
    let r = json(
        &p,
        &["policy", "replay", "policies/no_database_replace.rego"],
    );
    assert_eq!(r["policies"][0]["name"], "no-database-replace");
    assert_eq!(r["summary"]["replayed"], 6, "{r}");
    assert_eq!(
        digests(&r["bundles"], |b| b["now"] == "blocked"),
        [h.plans[1].clone(), h.plans[3].clone()],
        "{r}"
    );
}
