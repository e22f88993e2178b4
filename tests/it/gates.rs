//! Gates: fixtures built by the project-state reader from the sample project
//! files in tests/data/project-state (edited per case), and the policy through
//! the CLI. Regenerate the fixtures with
//! `OPSDEPLOY_UPDATE_FIXTURES=1 cargo test --test it fixtures_are`.

use std::path::Path;

use opsdeploy::adapters::project_state::{StateFiles, read_project_state};
use serde_json::{Value, json};

use crate::migrations::{check_fixtures, eval_denial, report_filters};
use crate::support::repo;

const DIGEST: &str = "sha256:3f9a0c21d4b7e8f6a5c3b2e1d0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1";

/// One case: edits to the sample files (file, from, to), which files the
/// project names, and the rest of the input.
struct Case<'a> {
    name: &'a str,
    description: &'a str,
    environment: Value,
    edits: &'a [(&'a str, &'a str, &'a str)],
    checklist: bool,
    runbook: Option<&'a str>,
    approvals: Value,
    settings: Option<Value>,
    expect: Value,
}

fn gates_section(case: &Case, dir: &Path) -> Value {
    for name in ["PROJECT_STATE.md", "SECURITY_CHECKLIST.md", "ROLLBACK.md"] {
        let mut text =
            std::fs::read_to_string(repo().join("tests/data/project-state").join(name)).unwrap();
        for (file, from, to) in case.edits.iter().filter(|(f, _, _)| *f == name) {
            assert!(text.contains(from), "{file}: `{from}` not found");
            text = text.replace(from, to);
        }
        std::fs::write(dir.join(name), text).unwrap();
    }
    let files = StateFiles {
        state_file: "PROJECT_STATE.md",
        security_checklist: case.checklist.then_some("SECURITY_CHECKLIST.md"),
        rollback_runbook: case.runbook,
    };
    let env = case.environment["name"].as_str().unwrap();
    let gates = read_project_state(dir, &files, env).unwrap();
    serde_json::to_value(&gates).unwrap()
}

fn build(case: &Case) -> Value {
    let tmp = tempfile::tempdir().unwrap();
    let mut f = json!({
        "description": case.description,
        "input": {
            "schema_version": 1,
            "environment": case.environment,
            "gates": gates_section(case, tmp.path()),
            "approvals": case.approvals,
        },
        "expect": case.expect,
    });
    if let Some(s) = &case.settings {
        f["settings"] = s.clone();
    }
    f
}

fn production(digest: bool) -> Value {
    let mut env = json!({"name": "production", "project": "shop", "promote_from": "staging",
                         "rollback_runbook": "ROLLBACK.md"});
    if digest {
        env["plan_digest"] = json!(DIGEST);
    }
    env
}

fn approved_by_bob() -> Value {
    json!({"approvals": [{"approver": "bob@example.com", "digest": DIGEST, "at": "2025-03-05T10:12:00Z",
                          "comment": "checked the migration plan"}],
           "planned_by": "alice@example.com", "required": 1, "signed": true})
}

fn cases() -> Vec<Case<'static>> {
    vec![
        Case {
            name: "production_with_every_gate_and_an_approval_of_this_plan_passes",
            description: "phase S10, S06 and S07 passed, checklist ticked, runbook written, flags configured, bob approved this exact plan with a signed approval",
            environment: production(true),
            edits: &[],
            checklist: true,
            runbook: Some("ROLLBACK.md"),
            approvals: approved_by_bob(),
            settings: None,
            expect: json!([]),
        },
        Case {
            name: "production_with_unsigned_approvals_is_warned",
            description: "every gate passed and bob approved this exact plan, but production has no allowed_signers: anyone can approve in anyone's name, a warning (not a denial)",
            environment: production(true),
            edits: &[],
            checklist: true,
            runbook: Some("ROLLBACK.md"),
            approvals: json!({"approvals": approved_by_bob()["approvals"],
                              "planned_by": "alice@example.com", "required": 1}),
            settings: None,
            expect: json!([{"rule": "approvals-unsigned", "severity": "warn",
                            "message_contains": "identity not verified"}]),
        },
        Case {
            name: "plan_time_reports_the_approval_as_pending",
            description: "at plan time there is no digest to approve yet: information, not a denial (apply checks it)",
            environment: production(false),
            edits: &[],
            checklist: true,
            runbook: Some("ROLLBACK.md"),
            approvals: json!({"planned_by": "alice@example.com", "required": 1, "signed": true}),
            settings: None,
            expect: json!([{"rule": "approval-pending", "severity": "info"}]),
        },
        Case {
            name: "staging_before_phase_s09_is_denied_at_the_phase_line",
            description: "the project is still in S08: staging needs S09",
            environment: json!({"name": "staging", "project": "shop", "plan_digest": DIGEST}),
            edits: &[(
                "PROJECT_STATE.md",
                "S10 — production rollout",
                "S08 — awaiting approval",
            )],
            checklist: true,
            runbook: None,
            approvals: approved_by_bob(),
            settings: None,
            expect: json!([{"rule": "phase-too-early", "severity": "deny", "path": "PROJECT_STATE.md",
                            "line": 3, "message_contains": "phase S08; staging needs phase S09"}]),
        },
        Case {
            name: "failed_security_review_and_unticked_boxes_are_denied_with_their_lines",
            description: "S07 came back with changes requested and two checklist items are open: each is reported where it is written",
            environment: production(true),
            edits: &[
                (
                    "PROJECT_STATE.md",
                    "| S07 Security review | passed |",
                    "| S07 Security review | changes requested |",
                ),
                ("SECURITY_CHECKLIST.md", "- [x] TLS", "- [ ] TLS"),
                (
                    "SECURITY_CHECKLIST.md",
                    "- [x] Least-privilege",
                    "- [ ] Least-privilege",
                ),
            ],
            checklist: true,
            runbook: Some("ROLLBACK.md"),
            approvals: approved_by_bob(),
            settings: None,
            expect: json!([
                {"rule": "gate-not-passed", "path": "PROJECT_STATE.md", "line": 13,
                 "message_contains": "S07 (Security review) is `changes requested`"},
                {"rule": "checklist-unticked", "path": "SECURITY_CHECKLIST.md", "line": 5,
                 "message_contains": "TLS on every public endpoint"},
                {"rule": "checklist-unticked", "path": "SECURITY_CHECKLIST.md", "line": 6}
            ]),
        },
        Case {
            name: "production_with_a_blank_runbook_is_denied",
            description: "the runbook file exists but holds only whitespace",
            environment: production(true),
            edits: &[(
                "ROLLBACK.md",
                "# Rollback runbook\n\n1. `opsdeploy rollback production` re-applies the previous plan bundle.\n2. Contract migrations are never rolled back; expand migrations stay (the old app ignores them).\n3. Check the health endpoint and the error-rate dashboard for 15 minutes.\n",
                "\n   \n",
            )],
            checklist: true,
            runbook: Some("ROLLBACK.md"),
            approvals: approved_by_bob(),
            settings: None,
            expect: json!([{"rule": "runbook-empty", "path": "ROLLBACK.md"}]),
        },
        Case {
            name: "production_runbook_that_does_not_exist_is_denied",
            description: "the environment names docs/ROLLBACK.md, which is not there; production needs a runbook by default anyway",
            environment: json!({"name": "production", "project": "shop", "plan_digest": DIGEST,
                                "rollback_runbook": "docs/ROLLBACK.md"}),
            edits: &[],
            checklist: true,
            runbook: Some("docs/ROLLBACK.md"),
            approvals: approved_by_bob(),
            settings: None,
            expect: json!([{"rule": "runbook-missing", "path": "docs/ROLLBACK.md",
                            "message_contains": "does not exist"}]),
        },
        Case {
            name: "declared_flag_without_production_config_is_denied",
            description: "search_v2 is declared in the flag table but its production cell is empty",
            environment: production(true),
            edits: &[(
                "PROJECT_STATE.md",
                "| search_v2 | on | off |",
                "| search_v2 | on | |",
            )],
            checklist: true,
            runbook: Some("ROLLBACK.md"),
            approvals: approved_by_bob(),
            settings: None,
            expect: json!([{"rule": "feature-flag-unconfigured", "path": "PROJECT_STATE.md",
                            "message_contains": "`search_v2`"}]),
        },
        Case {
            name: "approvals_of_another_plan_or_by_the_planner_do_not_count",
            description: "alice planned and approved her own plan (self-approval off) and bob approved an older plan: 0 of 1",
            environment: production(true),
            edits: &[],
            checklist: true,
            runbook: Some("ROLLBACK.md"),
            approvals: json!({"approvals": [
                {"approver": "alice@example.com", "digest": DIGEST, "at": "2025-03-05T10:00:00Z"},
                {"approver": "bob@example.com", "digest": "sha256:0ld0ld", "at": "2025-03-04T16:00:00Z"}],
                "planned_by": "alice@example.com", "required": 1, "signed": true}),
            settings: None,
            expect: json!([{"rule": "approval-missing", "severity": "deny", "address": DIGEST,
                            "message_contains": "0 of 1 required approval (S08)"}]),
        },
        Case {
            name: "settings_give_dev_its_own_phase_and_no_approval_but_flags_still_count",
            description: "min_phase and approval_exempt settings for dev; the flag table has no dev column, so both declared flags are unconfigured there; no checklist needed by settings",
            environment: json!({"name": "dev", "project": "shop", "plan_digest": DIGEST}),
            edits: &[],
            checklist: false,
            runbook: None,
            approvals: json!(null),
            settings: Some(
                json!({"min_phase": {"dev": "S05"}, "approval_exempt": ["dev"],
                                  "require_checklist": false}),
            ),
            expect: json!([
                {"rule": "feature-flag-unconfigured", "message_contains": "`new_checkout`"},
                {"rule": "feature-flag-unconfigured", "message_contains": "`search_v2`"}
            ]),
        },
        Case {
            name: "no_security_checklist_configured_is_denied",
            description: "the project names no security checklist, so it cannot be complete",
            environment: production(true),
            edits: &[],
            checklist: false,
            runbook: Some("ROLLBACK.md"),
            approvals: approved_by_bob(),
            settings: None,
            expect: json!([{"rule": "checklist-missing"}]),
        },
    ]
}

#[test]
fn fixtures_are_built_from_project_files_by_the_state_reader() {
    check_fixtures(
        "gates",
        cases().iter().map(|c| (c.name, build(c))).collect(),
    );
}

#[test]
fn gates_denies_an_unticked_checklist_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let case = cases()
        .into_iter()
        .find(|c| c.name.starts_with("failed_security_review"))
        .unwrap();
    let fixture = build(&case);
    let input = tmp.path().join("input.json");
    std::fs::write(&input, fixture["input"].to_string()).unwrap();
    let report = eval_denial(tmp.path(), "gates", &input);
    insta::with_settings!({filters => report_filters()}, {
        insta::assert_snapshot!(report);
    });
}

#[test]
fn gates_on_a_10000_resource_plan_stays_within_default_limits() {
    use opsdeploy::input::InputDocument;
    use policy_sdk::Section;
    let items: Vec<Value> = (0..10_000)
        .map(|i| json!({"text": format!("control {i} reviewed and evidenced"), "checked": i % 2 == 0, "line": i + 1}))
        .collect();
    let gates: Vec<Value> = (0..1_000)
        .map(|i| json!({"id": format!("S{i:02}"), "status": if i % 3 == 0 { "failed" } else { "passed" }, "line": i + 1}))
        .collect();
    let flags: serde_json::Map<String, Value> = (0..1_000)
        .map(|i| (format!("flag_{i}"), json!(i % 2 == 0)))
        .collect();
    let approvals: Vec<Value> = (0..10_000)
        .map(|i| json!({"approver": format!("user{i}@example.com"), "digest": format!("sha256:{i:064x}"), "at": "2025-03-05T10:00:00Z"}))
        .collect();
    let env_json = format!(
        r#"{{"name":"production","project":"shop","plan_digest":"{DIGEST}","rollback_runbook":"ROLLBACK.md"}}"#
    );
    let env: policy_sdk::input::Environment = serde_json::from_str(&env_json).unwrap();
    let mut doc = InputDocument::new(&env);
    doc.set_raw(
        Section::Terraform,
        crate::migrations::terraform_section(10_000),
    );
    doc.set(
        Section::Gates,
        &json!({"state_file": "PROJECT_STATE.md", "phase": "S10", "gates": gates,
                "security_checklist": {"path": "SECURITY_CHECKLIST.md", "items": items},
                "rollback_runbook": {"path": "ROLLBACK.md", "exists": true, "content_bytes": 10},
                "feature_flags": flags}),
    );
    doc.set(
        Section::Approvals,
        &json!({"approvals": approvals, "planned_by": "alice@example.com", "required": 2}),
    );
    let v = crate::migrations::evaluate_within_default_limits("gates", &doc);
    let count = |rule: &str| v.iter().filter(|x| x.rule == rule).count();
    assert_eq!(count("checklist-unticked"), 5_000);
    assert_eq!(count("feature-flag-unconfigured"), 500);
    assert_eq!(count("approval-missing"), 1);
}
