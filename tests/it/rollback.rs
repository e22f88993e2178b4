//! Rollback and promotion that tell the truth, end to end with real
//! terraform (terraform_data, local state): a failed deploy returns terraform
//! to the last good configuration or says exactly what it left; `opsdeploy
//! rollback` returns an environment to an earlier deployment; promotion takes
//! only what ran healthy; migrations run by their phase.

use predicates::prelude::*;
use serde_json::Value;

use crate::support::{QuickstartApp, as_alice, has_row, quickstart, row};
use crate::workflow::{HealthServer, MAIN_TF, TestProject, config, webhook_receiver, with_staging};

const ALICE: &str = "alice@example.com";

/// [`row`] for a row only known at run time.
fn row_of(wanted: String) -> impl predicates::Predicate<str> {
    predicates::function::function(move |text: &str| has_row(text, &wanted))
}

/// The `input` (and `id`) terraform holds for `terraform_data.NAME` in `state`.
fn resource(state: &str, name: &str) -> (Value, String) {
    let doc: Value = serde_json::from_str(state).expect("terraform state is JSON");
    let r = doc["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in the state"));
    let attributes = &r["instances"][0]["attributes"];
    (
        attributes["input"]["value"].clone(),
        attributes["id"].as_str().unwrap().to_string(),
    )
}

/// The test configuration with protected-deletes guarding terraform_data
/// too, at `enforcement`.
fn terraform_data_protected(health_url: &str, enforcement: &str) -> String {
    config(health_url, "").replace(
        "policy \"protected-deletes\" {\n  builtin     = true\n  enforcement = \"hard-mandatory\"\n}",
        &format!(
            "policy \"protected-deletes\" {{\n  builtin     = true\n  enforcement = \"{enforcement}\"\n  settings    = {{ extra_types = [\"terraform_data\"] }}\n}}"
        ),
    )
}

fn deploy(p: &TestProject) -> String {
    let digest = p.plan_approved(ALICE, "staging");
    p.run(ALICE, &["apply", "staging", "--yes"]).success();
    digest
}

#[test]
fn health_500_after_a_terraform_change_puts_the_previous_configuration_back_and_exit_5_lists_what_was_undone()
 {
    let health = HealthServer::start(200);
    let (hook, received) = webhook_receiver();
    let cfg = config(&health.url(), "").replace(
        "project = \"shop\"",
        &format!("project = \"shop\"\nnotify {{ webhook = \"{hook}\" }}"),
    );
    let p = TestProject::new(&cfg);
    let good = deploy(&p);
    received
        .recv_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    std::fs::write(
        p.file("infra/main.tf"),
        MAIN_TF.replace("replicas = 2", "replicas = 3"),
    )
    .unwrap();
    let bad = p.plan_approved(ALICE, "staging");
    health.set(500);
    let undone = format!(
        "terraform: returned to the configuration of plan {} (0 to add, 1 to change, 0 to replace, 0 to destroy)",
        &good[..12]
    );
    p.run(ALICE, &["apply", "staging", "--yes"])
        .code(5)
        .stdout(row("FAIL health"))
        .stdout(row(
            "ok rollback terraform returned to the configuration of plan",
        ))
        .stdout(predicate::str::contains(format!("undone: {undone}")))
        .stdout(predicate::str::contains(
            "after the rollback, staging is unhealthy",
        ))
        .stderr(predicate::str::contains(format!(
            "deploy of plan {} to staging failed and was rolled back: 1 undone",
            &bad[..12]
        )));
    // The previous configuration is live again.
    let (web, _) = resource(&p.read("infra/terraform.tfstate"), "web");
    assert_eq!(web["replicas"], 2);
    // Webhook, continuity file, audit log and status say the same.
    let body: Value = serde_json::from_str(
        &received
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(body["opsdeploy"]["status"], "rolled_back", "{body}");
    assert_eq!(body["opsdeploy"]["undone"], serde_json::json!([undone]));
    assert_eq!(body["opsdeploy"]["not_undone"], serde_json::json!([]));
    let continuity = p.read("CONTINUITY.md");
    assert!(
        continuity.contains(&format!("- undone: {undone}")),
        "{continuity}"
    );
    let rollback = p
        .audit_entries()
        .into_iter()
        .rfind(|e| e["kind"] == "rollback")
        .unwrap();
    assert_eq!(rollback["data"]["undone"], serde_json::json!([undone]));
    assert!(
        rollback["data"]["restored"]
            .as_str()
            .is_some_and(|r| r.starts_with(&good)),
        "{rollback}"
    );
    p.run(ALICE, &["status", "staging"])
        .success()
        .stdout(predicate::str::contains(format!(
            "{} (restored)",
            &good[..12]
        )))
        .stdout(row("not healthy"))
        .stdout(predicate::str::contains(format!(
            "(complete): undone: {undone}"
        )));

    // Applying the same bundle again is refused, and it is no incident.
    let incidents = continuity.matches("\n### ").count();
    p.run(ALICE, &["apply", "staging", "--plan", &bad, "--yes"])
        .code(1)
        .stderr(predicate::str::contains(format!(
            "plan {} was already applied to \"staging\" at ",
            &bad[..12]
        )))
        .stderr(predicate::str::contains("finished rolled_back at"))
        .stderr(predicate::str::contains(
            "hint: run `opsdeploy plan staging`",
        ));
    assert_eq!(p.read("CONTINUITY.md").matches("\n### ").count(), incidents);
}

#[test]
fn a_rollback_that_would_replace_a_protected_database_stops_with_exit_6_and_destroys_nothing() {
    let health = HealthServer::start(200);
    let cfg = terraform_data_protected(&health.url(), "soft-mandatory");
    let p = TestProject::new(&cfg);
    deploy(&p);
    let (_, first) = resource(&p.read("infra/terraform.tfstate"), "database");
    // An engine upgrade replaces the database, overridden by an approver...
    std::fs::write(
        p.file("infra/main.tf"),
        MAIN_TF.replace("default = 15", "default = 16"),
    )
    .unwrap();
    p.run(ALICE, &["plan", "staging"]).code(3);
    p.run(ALICE, &["approve", "staging"]).success();
    p.run(
        ALICE,
        &[
            "approve",
            "staging",
            "--override",
            "protected-deletes",
            "--reason",
            "engine upgrade, data migrated",
        ],
    )
    .success();
    // ...and then the app fails: going back would replace it once more.
    health.set(500);
    p.run(ALICE, &["apply", "staging", "--yes"])
        .code(6)
        .stdout(row("FAIL rollback terraform return to the configuration of plan"))
        .stdout(predicate::str::contains(
            "NOT undone: terraform: 0 to add, 0 to change, 1 to replace, 0 to destroy stays applied: returning to the configuration of plan",
        ))
        .stdout(predicate::str::contains(
            "is blocked by policy protected-deletes: terraform_data.database would be destroyed and recreated",
        ))
        .stderr(predicate::str::contains(
            "failed and the rollback is incomplete: manual action needed for terraform:",
        ));
    let (database, id) = resource(&p.read("infra/terraform.tfstate"), "database");
    assert_ne!(id, first, "the upgrade replaced the database");
    let state: Value = serde_json::from_str(&p.read("infra/terraform.tfstate")).unwrap();
    let db = state["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "database")
        .unwrap();
    assert_eq!(
        db["instances"][0]["attributes"]["triggers_replace"]["value"],
        serde_json::json!([16]),
        "the upgraded database is still there: {database}"
    );
    p.run(ALICE, &["status", "staging"])
        .success()
        .stdout(row("ROLLBACK INCOMPLETE"))
        .stdout(predicate::str::contains("NOT undone: terraform:"));
    assert!(
        p.read("CONTINUITY.md")
            .contains("deploy failed, rollback incomplete: manual action needed")
    );
}

#[test]
fn a_rollback_a_policy_blocks_exits_3_and_changes_nothing() {
    let health = HealthServer::start(200);
    let cfg = terraform_data_protected(&health.url(), "hard-mandatory");
    let p = TestProject::new(&cfg);
    // The first deployment has no database; the second adds one. Going back
    // to the first would destroy it, which protected-deletes forbids.
    let without_database = MAIN_TF.replace(
        "resource \"terraform_data\" \"database\" {\n  triggers_replace = [var.engine_version]\n  input = { name = \"orders\" }\n}\n",
        "",
    );
    assert!(!without_database.contains("database"));
    std::fs::write(p.file("infra/main.tf"), &without_database).unwrap();
    let first = deploy(&p);
    std::fs::write(p.file("infra/main.tf"), MAIN_TF).unwrap();
    let second = deploy(&p);
    let state = || p.read("infra/terraform.tfstate");
    let (_, id) = resource(&state(), "database");
    let before = state();

    p.run(ALICE, &["rollback", "staging"])
        .code(3)
        .stderr(predicate::str::contains(format!(
            "returning \"staging\" to plan {} (0 to add, 0 to change, 0 to replace, 1 to destroy) is blocked by policy: protected-deletes",
            &first[..12]
        )))
        .stderr(predicate::str::contains("terraform_data.database"))
        .stderr(predicate::str::contains("nothing was changed"));
    assert_eq!(state(), before, "terraform state untouched");
    assert_eq!(resource(&state(), "database").1, id);
    p.run(ALICE, &["status", "staging"])
        .success()
        .stdout(predicate::str::contains(&second[..12]))
        .stdout(predicate::str::contains("(restored)").not());
    p.run(ALICE, &["audit", "verify"]).success();
}

#[test]
fn rollback_staging_on_the_quickstart_returns_terraform_to_the_previous_deployment_and_drift_stays_clean()
 {
    let (_tmp, dir, cache) = quickstart();
    let app = QuickstartApp::start(&dir);
    let run = |args: &[&str]| as_alice(cache.path(), &dir, args);
    let deploy = || {
        let out = run(&["plan", "staging", "-q"])
            .success()
            .get_output()
            .stdout
            .clone();
        let digest = String::from_utf8(out)
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string();
        run(&["approve", "staging"]).success();
        run(&["apply", "staging", "--yes"]).success();
        digest
    };
    let first = deploy();
    let module = dir.join("infra/modules/app/main.tf");
    let text = std::fs::read_to_string(&module).unwrap();
    std::fs::write(&module, text.replace("db.t3.micro", "db.t3.small")).unwrap();
    let second = deploy();
    let state = || std::fs::read_to_string(dir.join("infra/staging/terraform.tfstate")).unwrap();
    assert_eq!(resource(&state(), "database").0["instance"], "db.t3.small");

    let rolled = run(&["rollback", "staging"]);
    drop(app);
    rolled
        .success()
        .stdout(predicate::str::contains(format!(
            "rolling back staging from {} to {}",
            &second, &first
        )))
        .stdout(predicate::str::contains(format!(
            "approval    plan {first} was already approved for staging by alice@example.com"
        )))
        .stdout(predicate::str::contains(
            "terraform   0 to add, 1 to change, 0 to replace, 0 to destroy",
        ))
        .stdout(row_of(format!("ok terraform returned to plan {first}")))
        .stdout(row("ok health staging is healthy"))
        .stdout(row("ok smoke_test"));
    assert_eq!(resource(&state(), "database").0["instance"], "db.t3.micro");
    run(&["status", "staging"])
        .success()
        .stdout(predicate::str::contains(format!("{first} (restored)")))
        .stdout(row("healthy"));
    run(&["drift", "staging"])
        .success()
        .stdout(predicate::str::contains("staging: no drift"));
    let audit = run(&["audit", "log", "--format", "json"])
        .success()
        .get_output()
        .stdout
        .clone();
    let entries: Vec<Value> = serde_json::from_slice(&audit).unwrap();
    let rollback = entries.iter().rfind(|e| e["kind"] == "rollback").unwrap();
    assert!(
        rollback["data"]["approval"]
            .as_str()
            .unwrap()
            .contains("those approvals are reused"),
        "{rollback}"
    );
    run(&["audit", "verify"]).success();
}

#[test]
fn rollback_to_a_named_earlier_deployment_reuses_its_approvals_only_while_they_still_count() {
    let health = HealthServer::start(200);
    let cfg = config(&health.url(), "");
    let p = TestProject::new(&cfg);
    let first = deploy(&p);
    for replicas in ["3", "4"] {
        std::fs::write(
            p.file("infra/main.tf"),
            MAIN_TF.replace("replicas = 2", &format!("replicas = {replicas}")),
        )
        .unwrap();
        deploy(&p);
    }
    let replicas = || resource(&p.read("infra/terraform.tfstate"), "web").0["replicas"].clone();
    assert_eq!(replicas(), 4);
    p.run(ALICE, &["rollback", "staging", "--to", "abcdef0"])
        .code(2)
        .stderr(predicate::str::contains(
            "abcdef0 is not an earlier successful deployment of \"staging\"",
        ))
        .stderr(predicate::str::contains(format!(
            "hint: earlier successful deployments: {} (",
            &first[..12]
        )));
    // Only bob may approve staging now: alice's approval of the first plan
    // no longer counts, so going back to it needs a new one.
    std::fs::write(
        p.file("opsdeploy.hcl"),
        cfg.replacen(
            "  approval { self_approve = true }",
            "  approval { approvers = [\"bob@example.com\"] }",
            1,
        ),
    )
    .unwrap();
    p.run(ALICE, &["rollback", "staging", "--to", &first[..12]])
        .code(4)
        .stderr(predicate::str::contains(format!(
            "plan {} no longer has the approvals \"staging\" needs",
            &first[..12]
        )));
    assert_eq!(replicas(), 4, "a refused rollback changes nothing");
    std::fs::write(p.file("opsdeploy.hcl"), &cfg).unwrap();
    p.run(ALICE, &["rollback", "staging", "--to", &first[..12]])
        .success()
        .stdout(row_of(format!(
            "ok terraform returned to plan {}",
            &first[..12]
        )));
    assert_eq!(replicas(), 2);
}

#[test]
fn promotion_is_refused_after_a_failed_staging_deploy_of_that_configuration_and_while_staging_is_down()
 {
    let health = HealthServer::start(200);
    let p = TestProject::new(&config(&health.url(), ""));
    deploy(&p);
    std::fs::write(
        p.file("infra/main.tf"),
        MAIN_TF.replace("replicas = 2", "replicas = 3"),
    )
    .unwrap();
    let failed = p.plan_approved(ALICE, "staging");
    health.set(500);
    p.run(ALICE, &["apply", "staging", "--yes"]).code(5);
    health.set(200);
    p.run(ALICE, &["promote", "staging", "production"])
        .code(3)
        .stderr(predicate::str::contains(format!(
            "is not what runs on \"staging\": terraform: staging's deploy of this configuration (plan {}",
            &failed[..12]
        )))
        .stderr(predicate::str::contains("ended rolled_back"));
    // What staging runs healthy may go, but not while staging is down.
    std::fs::write(p.file("infra/main.tf"), MAIN_TF).unwrap();
    health.set(500);
    p.run(ALICE, &["promote", "staging", "production"])
        .code(3)
        .stderr(predicate::str::contains(
            "\"staging\" does not answer its health check now",
        ));
    health.set(200);
    p.run(ALICE, &["promote", "staging", "production"])
        .success();
}

#[test]
fn an_unverified_source_is_promoted_only_where_the_target_accepts_it() {
    let cfg = r#"
project = "shop"

policy "promotion" {
  builtin      = true
  enforcement  = "hard-mandatory"
  environments = ["production"]
}

policy "gates" {
  enabled = false
  reason  = "no project state here: promotion is what is tested"
}

environment "staging" {
  approval { self_approve = true }
}

environment "production" {
  promote_from = "staging"
  approval { self_approve = true }
}
"#;
    let p = TestProject::new(cfg);
    deploy(&p);
    p.run(ALICE, &["status", "staging"])
        .success()
        .stdout(row("unverified"));
    p.run(ALICE, &["promote", "staging", "production"])
        .code(3)
        .stderr(predicate::str::contains(
            "is unverified: \"staging\" has no health check",
        ))
        .stderr(predicate::str::contains(
            "promote { allow_unverified = true }",
        ));
    std::fs::write(
        p.file("opsdeploy.hcl"),
        cfg.replace(
            "  promote_from = \"staging\"",
            "  promote_from = \"staging\"\n  promote { allow_unverified = true }",
        ),
    )
    .unwrap();
    p.run(ALICE, &["promote", "staging", "production"])
        .success()
        .stdout(row("pass promotion"))
        .stdout(predicate::str::contains("source-unverified"));
    let promotion = p
        .audit_entries()
        .into_iter()
        .rfind(|e| e["kind"] == "promotion")
        .unwrap();
    assert_eq!(promotion["data"]["allow_unverified"], true);
}

/// Staging with migrations in `db/migrations` run by `command`, `files` in it.
fn with_migrations(p: &TestProject, files: &[(&str, &str)]) {
    std::fs::create_dir_all(p.file("db/migrations")).unwrap();
    for (name, sql) in files {
        std::fs::write(p.file(&format!("db/migrations/{name}")), sql).unwrap();
    }
}

const MIGRATIONS: &str = "  migrations {\n    dir     = \"db/migrations\"\n    command = [\"sh\", \"-c\", \"echo {file} >> ran.log\"]\n  }\n";

#[test]
fn a_contract_file_with_default_phase_contract_runs_after_the_deploy() {
    let health = HealthServer::start(200);
    let policy = "policy \"expand-contract\" {\n  builtin  = true\n  settings = { default_phase = \"contract\" }\n}";
    let p = TestProject::new(&with_staging(&config(&health.url(), policy), MIGRATIONS));
    with_migrations(
        &p,
        &[(
            "0001_drop_legacy.sql",
            "ALTER TABLE orders DROP COLUMN legacy;\n",
        )],
    );
    p.run(ALICE, &["plan", "staging"])
        .success()
        .stdout(predicate::str::contains("0001_drop_legacy (contract)"));
    p.run(ALICE, &["approve", "staging"]).success();
    p.run(ALICE, &["apply", "staging", "--yes"]).success();
    let steps: Vec<String> = p
        .audit_entries()
        .iter()
        .filter(|e| e["kind"] == "apply_step")
        .map(|e| e["data"]["step"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(steps, ["terraform", "migration"]);
    assert!(p.read("ran.log").contains("0001_drop_legacy.sql"));
}

#[test]
fn a_contract_is_refused_while_the_release_that_added_its_expand_is_not_healthy() {
    let health = HealthServer::start(500);
    let policy =
        "policy \"expand-contract\" {\n  builtin     = true\n  enforcement = \"hard-mandatory\"\n}";
    let p = TestProject::new(&with_staging(&config(&health.url(), policy), MIGRATIONS));
    with_migrations(
        &p,
        &[(
            "0001_add_note.expand.sql",
            "ALTER TABLE orders ADD COLUMN note text;\n",
        )],
    );
    p.plan_approved(ALICE, "staging");
    p.run(ALICE, &["apply", "staging", "--yes"])
        .code(5)
        .stdout(predicate::str::contains(
            "kept: migration 0001_add_note (expand, ran): compatible with the previous version by design",
        ))
        .stdout(predicate::str::contains(
            "undone: terraform: returned to nothing (this was the first deploy)",
        ));
    assert!(
        !p.read("infra/terraform.tfstate").contains("terraform_data"),
        "the first deploy's resources were destroyed again"
    );
    let drop = (
        "0002_drop_comment.contract.sql",
        "ALTER TABLE orders DROP COLUMN comment;\n",
    );
    with_migrations(&p, &[drop]);
    p.run(ALICE, &["plan", "staging"])
        .code(3)
        .stdout(row("deny expand-not-healthy"))
        .stdout(predicate::str::contains(
            "which db/migrations/0001_add_note.expand.sql:1 expanded in a release that is not healthy on staging",
        ));
    // Once a release runs healthy with the expand in place, the contract may follow.
    std::fs::remove_file(p.file(&format!("db/migrations/{}", drop.0))).unwrap();
    health.set(200);
    deploy(&p);
    with_migrations(&p, &[drop]);
    p.run(ALICE, &["plan", "staging"])
        .success()
        .stdout(row("pass expand-contract"));
}

#[test]
fn what_apply_will_need_is_checked_at_plan_naming_the_block() {
    let base = "project = \"shop\"\n\npolicy \"gates\" {\n  enabled = false\n  reason  = \"no project state here\"\n}\n\npolicy \"promotion\" {\n  enabled = false\n  reason  = \"nothing is deployed here\"\n}\n\nenvironment \"staging\" {\n  approval { self_approve = true }\nEXTRA}\n\nenvironment \"production\" {\n  promote_from = \"staging\"\n  approval { self_approve = true }\n}\n";
    let p = TestProject::new(&base.replace(
        "EXTRA",
        "  smoke_test { command = [\"sh\", \"scripts/smoke.sh\"] }\n",
    ));
    p.run(ALICE, &["plan", "staging"])
        .code(1)
        .stderr(predicate::str::contains(
            "error: `scripts/smoke.sh`, which `sh` is given, does not exist in the project\n  --> opsdeploy.hcl, smoke_test block of environment \"staging\"\n",
        ));
    std::fs::write(
        p.file("opsdeploy.hcl"),
        base.replace("EXTRA", "  migrations { dir = \"db/migrations\" }\n"),
    )
    .unwrap();
    p.run(ALICE, &["plan", "staging"])
        .code(1)
        .stderr(predicate::str::contains(
            "migrations block of environment \"staging\" needs `command`",
        ));
    assert!(
        !p.file(".opsdeploy/bundles").exists()
            || std::fs::read_dir(p.file(".opsdeploy/bundles"))
                .unwrap()
                .next()
                .is_none()
    );
    assert!(!p.file("CONTINUITY.md").exists());
    std::fs::write(p.file("opsdeploy.hcl"), base.replace("EXTRA", "")).unwrap();
    p.run(ALICE, &["plan", "production"])
        .success()
        .stderr(predicate::str::contains(
            "warning: \"production\" has no monitor block",
        ));
}
