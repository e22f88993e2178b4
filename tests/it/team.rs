//! Team mode on PostgreSQL: what only the database backend does — evidence
//! the database itself keeps append-only, plans shared between checkouts,
//! migration from the file store, and a server that is not there.

use predicates::prelude::*;

use crate::support::{Backend, opsdeploy, row};
use crate::workflow::{HealthServer, TestProject, config};

fn postgres_project(config: &str) -> Option<(TestProject, String)> {
    let Backend::Postgres { url } = Backend::postgres()? else {
        unreachable!("Backend::postgres is a database")
    };
    let p = TestProject::with_backend(config, Backend::Postgres { url: url.clone() });
    Some((p, url))
}

#[test]
fn the_database_refuses_to_change_evidence_and_verify_names_an_entry_edited_behind_its_back() {
    let Some((p, url)) = postgres_project(&config("http://127.0.0.1:9/", "")) else {
        return;
    };
    p.plan("alice@example.com", "staging");
    p.run(
        "alice@example.com",
        &["approve", "staging", "--comment", "ok"],
    )
    .success();
    let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    for sql in [
        "UPDATE opsdeploy.audit_log SET actor = 'mallory' WHERE seq = 3",
        "DELETE FROM opsdeploy.audit_log WHERE seq = 3",
        "TRUNCATE opsdeploy.audit_log CASCADE",
        "DELETE FROM opsdeploy.approvals",
    ] {
        let err = db.batch_execute(sql).unwrap_err();
        let msg = err
            .as_db_error()
            .map(|e| e.message().to_string())
            .unwrap_or_default();
        assert!(msg.contains("is append-only"), "{sql}: {err}");
    }
    // The approval is a row bound to the digest, too.
    let approvals: i64 = db
        .query_one(
            "SELECT count(*) FROM opsdeploy.approvals WHERE kind = 'approval'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(approvals, 1);
    // A superuser can switch the triggers off; the hash chain still tells.
    db.batch_execute(
        "ALTER TABLE opsdeploy.audit_log DISABLE TRIGGER USER;
         UPDATE opsdeploy.audit_log SET line = replace(line, '\"comment\":\"ok\"', '\"comment\":\"OK\"') WHERE seq = 3;",
    )
    .unwrap();
    p.run("alice@example.com", &["audit", "verify"])
        .code(1)
        .stderr(predicate::str::contains(
            "audit log entry 3 (seq 3) is not valid",
        ))
        .stderr(predicate::str::contains("the entry was edited"))
        .stderr(predicate::str::contains("(table opsdeploy.audit_log):3"));
}

#[test]
fn a_plan_made_in_one_checkout_is_approved_and_applied_from_another() {
    let health = HealthServer::start(200);
    let Some((planner, url)) = postgres_project(&config(&health.url(), "")) else {
        return;
    };
    let digest = planner.plan("alice@example.com", "staging");
    // Another machine: the same project files, none of the first one's state.
    let runner = TestProject::with_backend(&config(&health.url(), ""), Backend::Postgres { url });
    assert!(!runner.file(".opsdeploy").exists());
    runner
        .run(
            "alice@example.com",
            &["approve", "staging", "--plan", &digest[..10]],
        )
        .success();
    runner
        .run("alice@example.com", &["apply", "staging", "--yes"])
        .success()
        .stdout(row("ok terraform"));
    let status = planner
        .run("bob@example.com", &["status", "staging"])
        .success();
    let status = String::from_utf8_lossy(&status.get_output().stdout).into_owned();
    assert!(
        crate::support::has_row(&status, &format!("staging {} healthy", &digest[..12])),
        "{status}"
    );
}

#[test]
fn state_migrate_copies_the_file_history_unchanged_and_is_idempotent() {
    let health = HealthServer::start(200);
    let Some(Backend::Postgres { url }) = Backend::postgres() else {
        return;
    };
    let p = TestProject::new(&config(&health.url(), ""));
    p.plan_approved("alice@example.com", "staging");
    p.run("alice@example.com", &["apply", "staging", "--yes"])
        .success();
    let pending = p.plan("alice@example.com", "production");
    let file_head = p
        .run(
            "alice@example.com",
            &["audit", "verify", "--format", "json"],
        )
        .success()
        .get_output()
        .stdout
        .clone();
    let file_head: serde_json::Value = serde_json::from_slice(&file_head).unwrap();
    let n = file_head["entries"].as_u64().unwrap();
    let migrate = ["state", "migrate", "--to", "postgres"];
    p.run_with(
        "alice@example.com",
        &migrate,
        &[("OPSDEPLOY_DATABASE_URL", &url)],
    )
    .success()
    .stdout(predicate::str::contains(format!(
        "{n} entries copied, {n} in all"
    )));
    // Again: nothing to add, nothing changed.
    p.run_with(
        "alice@example.com",
        &migrate,
        &[("OPSDEPLOY_DATABASE_URL", &url)],
    )
    .success()
    .stdout(predicate::str::contains(format!(
        "0 entries copied, {n} in all"
    )));

    // The project switched over, as on another machine: no local state, the
    // database has the history and the bundles.
    let pg = TestProject::with_backend(
        &config(&health.url(), ""),
        Backend::Postgres { url: url.clone() },
    );
    let pg_head: serde_json::Value = serde_json::from_slice(
        &pg.run(
            "alice@example.com",
            &["audit", "verify", "--format", "json"],
        )
        .success()
        .get_output()
        .stdout
        .clone(),
    )
    .unwrap();
    // (The checkpoints differ: this checkout has no PROJECT_STATE.md.)
    assert_eq!(
        (&pg_head["entries"], &pg_head["head"]),
        (&file_head["entries"], &file_head["head"]),
        "same entries, same chain head"
    );
    pg.run(
        "bob@example.com",
        &["approve", "production", "--plan", &pending],
    )
    .success();
    pg.run("bob@example.com", &["status", "production"])
        .success()
        .stdout(predicate::str::contains(format!(
            "pending plan {} by alice@example.com",
            &pending[..12]
        )))
        .stdout(predicate::str::contains("1 of 1 approvals"));

    // A different project's history is refused, and the database left alone.
    let other = TestProject::new(&config(&health.url(), ""));
    other.plan("carol@example.com", "staging");
    other
        .run_with(
            "carol@example.com",
            &migrate,
            &[("OPSDEPLOY_DATABASE_URL", &url)],
        )
        .code(1)
        .stderr(predicate::str::contains(
            "already holds a different audit history (entry 1 differs",
        ))
        .stderr(predicate::str::contains("nothing was copied"));
    pg.run("alice@example.com", &["audit", "verify"]).success();
}

#[test]
fn an_unreachable_server_is_a_clear_error_that_never_shows_the_password() {
    let p = TestProject::new(&format!(
        "{}{}",
        config("http://127.0.0.1:9/", ""),
        Backend::Postgres { url: String::new() }.state_block()
    ));
    // Port 9 (discard) on loopback: nothing listens.
    opsdeploy(p.cache.path())
        .arg("-C")
        .arg(p.path())
        .args(["status"])
        .env(
            "OPSDEPLOY_DATABASE_URL",
            "postgres://deploy:hunter2@127.0.0.1:9/shop",
        )
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "error: the store is not reachable: postgres://deploy@127.0.0.1:9/shop",
        ))
        .stderr(predicate::str::contains(
            "hint: check that the PostgreSQL server is up",
        ))
        .stderr(predicate::str::contains("hunter2").not());
}
