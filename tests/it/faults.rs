//! Faults and abuse, on both store backends: applies racing for one
//! environment, applies killed at random points, PostgreSQL going away
//! mid-apply. The store must stay consistent through all of them.

use std::process::{Output, Stdio};
use std::time::Duration;

use predicates::prelude::*;

use crate::support::{Backend, PgServer, create_database, test_server};
use crate::workflow::{HealthServer, TestProject};

/// A project without terraform, so an apply is quick: a health check, then
/// the smoke test shell script `smoke` (e.g. `sleep 3`).
fn quick_project(
    backend: Backend,
    health: &HealthServer,
    smoke: &str,
    lock_timeout: &str,
) -> TestProject {
    TestProject::with_backend(
        &format!(
            r#"
project = "shop"
{off}
environment "staging" {{
  health {{
    url      = "{}"
    timeout  = "3s"
    interval = "100ms"
  }}
  smoke_test {{
    command = ["sh", "-c", "{smoke}"]
  }}
  approval {{ self_approve = true }}
  lock_timeout = "{lock_timeout}"
}}
"#,
            health.url(),
            off = crate::workflow::OFF_IN_WORKFLOW_TESTS,
        ),
        backend,
    )
}

fn kinds(entries: &[serde_json::Value], kind: &str) -> Vec<serde_json::Value> {
    entries
        .iter()
        .filter(|e| e["kind"] == kind)
        .cloned()
        .collect()
}

/// The chain as read back: every seq once, in order, verified by opsdeploy.
fn assert_log_intact(p: &TestProject) -> Vec<serde_json::Value> {
    p.run("auditor@example.com", &["audit", "verify"])
        .success()
        .stdout(predicate::str::contains("audit log ok"));
    let entries = p.audit_entries();
    let seqs: Vec<u64> = entries.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    let expected: Vec<u64> = (1..=entries.len() as u64).collect();
    assert_eq!(seqs, expected, "every entry once, in order");
    entries
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

on_both_backends! {
    fn eight_applies_at_once_run_exactly_one_and_the_others_name_the_holder(backend) {
        let health = HealthServer::start(200);
        let p = quick_project(backend, &health, "sleep 3", "500ms");
        let digest = p.plan_approved("alice@example.com", "staging");
        let before = p.audit_entries().len();
        let runners: Vec<_> = (0..8)
            .map(|i| {
                p.command(&format!("runner{i}@example.com"), &["apply", "staging", "--yes", "-q"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outcomes: Vec<Output> = runners
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        let ran: Vec<&Output> = outcomes.iter().filter(|o| o.status.success()).collect();
        assert_eq!(
            ran.len(),
            1,
            "exactly one apply runs: {:#?}",
            outcomes.iter().map(stderr).collect::<Vec<_>>()
        );
        for o in outcomes.iter().filter(|o| !o.status.success()) {
            assert_eq!(o.status.code(), Some(1), "{}", stderr(o));
            assert!(
                stderr(o).contains("environment \"staging\" is locked by runner"),
                "a refused apply names the holder: {}",
                stderr(o)
            );
        }
        let entries = assert_log_intact(&p);
        let starts = kinds(&entries, "apply_start");
        let finishes = kinds(&entries, "apply_finish");
        assert_eq!((starts.len(), finishes.len()), (1, 1));
        assert!(starts[0]["digest"].as_str().unwrap().starts_with(&digest));
        assert_eq!(finishes[0]["data"]["status"], "succeeded");
        // Only the winner wrote: its start, policy results, steps, finish.
        assert!(entries[before..].iter().all(|e| e["actor"] == starts[0]["actor"]));
    }
}

on_both_backends! {
    fn eight_approvals_at_once_are_all_recorded_once_on_one_chain(backend) {
        let health = HealthServer::start(200);
        let p = quick_project(backend, &health, "sleep 0", "0s");
        let digest = p.plan("alice@example.com", "staging");
        let approvers: Vec<_> = (0..8)
            .map(|i| {
                p.command(&format!("approver{i}@example.com"), &["approve", "staging", "--plan", &digest, "-q"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for a in approvers {
            let o = a.wait_with_output().unwrap();
            assert!(o.status.success(), "{}", stderr(&o));
        }
        let entries = assert_log_intact(&p);
        let mut actors: Vec<String> = kinds(&entries, "approval")
            .iter()
            .map(|e| e["actor"].as_str().unwrap().to_string())
            .collect();
        actors.sort();
        let expected: Vec<String> = (0..8).map(|i| format!("approver{i}@example.com")).collect();
        assert_eq!(actors, expected, "no approval lost or duplicated");
    }
}

/// A small deterministic generator (64-bit LCG, Knuth's MMIX constants), so a
/// failing run is repeated exactly by running the test again.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

on_both_backends! {
    fn applies_killed_at_random_points_leave_a_consistent_store(backend) {
        let health = HealthServer::start(200);
        let p = quick_project(backend, &health, "sleep 1", "10s");
        let mut rng = Lcg(0x0D5E_ED00_2026);
        for run in 0..20 {
            // A bundle is applied once, even when that apply was killed: each
            // run applies a plan of its own (the comment makes it differ).
            let hcl = p.read("opsdeploy.hcl");
            std::fs::write(p.file("opsdeploy.hcl"), format!("{hcl}# run {run}\n")).unwrap();
            p.plan_approved("alice@example.com", "staging");
            let delay = Duration::from_millis(rng.below(1600));
            let mut apply = p
                .command("alice@example.com", &["apply", "staging", "--yes", "-q"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(delay);
            apply.kill().unwrap(); // SIGKILL: no destructor, no cleanup
            apply.wait().unwrap();

            let entries = assert_log_intact(&p);
            let status = p.run("bob@example.com", &["status", "staging"]).success();
            let shown = String::from_utf8_lossy(&status.get_output().stdout).into_owned();
            assert!(
                !shown.contains("locked by"),
                "run {run} (killed after {delay:?}): the lock died with its holder\n{shown}"
            );
            // Every apply that started and never finished since the last
            // successful one is shown as interrupted (a success supersedes them).
            let finishes = kinds(&entries, "apply_finish");
            let since = finishes
                .iter()
                .filter(|f| f["data"]["status"] == "succeeded")
                .filter_map(|f| f["data"]["apply_seq"].as_u64())
                .max()
                .unwrap_or(0);
            let unfinished = kinds(&entries, "apply_start")
                .iter()
                .filter(|s| s["seq"].as_u64().is_some_and(|seq| seq > since))
                .filter(|s| !finishes.iter().any(|f| f["data"]["apply_seq"] == s["seq"]))
                .count();
            assert_eq!(
                shown.matches("INTERRUPTED apply of").count(),
                unfinished,
                "run {run} (killed after {delay:?})\n{shown}"
            );
        }
        // And the environment can still be deployed.
        p.plan_approved("alice@example.com", "staging");
        p.run("alice@example.com", &["apply", "staging", "--yes"]).success();
        assert_log_intact(&p);
    }
}

/// A team-mode project on the database at `url` whose apply (spawned, its
/// stderr piped) has passed its health check and runs the smoke test `smoke`.
fn apply_in_its_smoke_test(
    url: &str,
    health: &HealthServer,
    smoke: &str,
) -> (TestProject, std::process::Child) {
    let p = quick_project(
        Backend::Postgres {
            url: url.to_string(),
        },
        health,
        smoke,
        "10s",
    );
    p.plan_approved("alice@example.com", "staging");
    let apply = p
        .command("alice@example.com", &["apply", "staging", "--yes", "-q"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    p.wait_for_audit(|entries| entries.iter().any(|e| e["data"]["check"] == "health"));
    (p, apply)
}

#[test]
fn postgres_stopped_mid_apply_fails_cleanly_and_works_again_after_restart() {
    if test_server().is_none() {
        return;
    }
    // A server of its own: stopping the shared one would fail other tests.
    let server = PgServer::start();
    let health = HealthServer::start(200);
    let (p, apply) = apply_in_its_smoke_test(&create_database(&server.url), &health, "sleep 3");
    // Stop it while the smoke test runs: the next append finds no server.
    let before = p.audit_entries();
    server.stop();
    let out = apply.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("error: the store is not reachable"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("hint: check that the PostgreSQL server is up"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    p.run("bob@example.com", &["status"])
        .code(1)
        .stderr(predicate::str::contains("the store is not reachable"));

    server.restart();
    let after = assert_log_intact(&p);
    assert_eq!(
        after, before,
        "nothing half-recorded: the log is what it was before the stop"
    );
    p.run("bob@example.com", &["status", "staging"])
        .success()
        .stdout(predicate::str::contains("INTERRUPTED apply of"))
        .stdout(predicate::str::contains(
            "stale lock left by alice@example.com",
        ));
    // The interrupted bundle is not applied again: a new plan is.
    p.plan_approved("alice@example.com", "staging");
    p.run("bob@example.com", &["apply", "staging", "--yes"])
        .success()
        .stderr(predicate::str::contains(
            "took over the lock on \"staging\" left by alice@example.com",
        ));
    assert_log_intact(&p);
}

#[test]
fn apply_whose_lock_connection_is_killed_stops_and_records_no_deploy() {
    let Some(admin) = test_server() else {
        return;
    };
    let health = HealthServer::start(200);
    // The smoke test passes (the lock is checked before the deploy is
    // recorded), or fails (checked before rolling back: undoing without the
    // lock could undo another apply's work).
    for (smoke, stopped) in [
        ("sleep 3", "stopped before recording it as deployed"),
        ("sleep 3; exit 1", "before rolling back"),
    ] {
        let url = create_database(&admin);
        let (p, apply) = apply_in_its_smoke_test(&url, &health, smoke);
        // While the smoke test runs, the server drops the lock's connection
        // (a failover or an idle-session timeout would): the lock goes with it.
        let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let killed: bool = db
            .query_one(
                "SELECT pg_terminate_backend(backend_pid) FROM opsdeploy.locks WHERE environment = 'staging'",
                &[],
            )
            .unwrap()
            .get(0);
        assert!(killed);
        let out = apply.wait_with_output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(6), "{err}");
        assert!(err.contains("error: lost the lock on \"staging\""), "{err}");
        assert!(err.contains(stopped), "{smoke}: {err}");
        assert!(err.contains("nothing was rolled back"), "{err}");
        assert!(
            err.contains("hint: run `opsdeploy status staging`"),
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");

        let entries = assert_log_intact(&p);
        assert!(
            kinds(&entries, "apply_finish").is_empty() && kinds(&entries, "rollback").is_empty(),
            "neither recorded as deployed nor rolled back"
        );
        p.run("bob@example.com", &["status", "staging"])
            .success()
            .stdout(predicate::str::contains("INTERRUPTED apply of"));
    }
}
