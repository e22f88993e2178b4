//! The quickstart template runs the whole staging flow offline, as the
//! README's first command does.

use predicates::prelude::*;

use crate::support::{QuickstartApp, opsdeploy, quickstart, row};

#[test]
fn quickstart_init_plan_approve_apply_staging_offline() {
    let (_tmp, dir, cache) = quickstart();
    let app = QuickstartApp::start(&dir);
    let run = |args: &[&str]| {
        opsdeploy(cache.path())
            .arg("-C")
            .arg(&dir)
            .args(args)
            .env("OPSDEPLOY_USER", "alice@example.com")
            .assert()
    };
    run(&["plan", "staging"])
        .success()
        .stdout(predicate::str::contains(
            "migration   0001_create_orders (expand)",
        ))
        .stdout(row("pass expand-contract hard-mandatory"));
    run(&["approve", "staging"]).success();
    let applied = run(&["apply", "staging", "--yes"]);
    drop(app);
    applied
        .success()
        .stdout(row("ok migration ran 0002_add_order_note"))
        .stdout(row("ok smoke_test"));
    assert!(
        dir.join("staging.db").is_file(),
        "the migrations ran against SQLite"
    );
    run(&["audit", "verify"]).success();
}
