//! The quickstart template runs the whole staging flow offline, as the
//! README's first command does.

use predicates::prelude::*;

use crate::support::{opsdeploy, quickstart, row};

#[test]
fn quickstart_init_plan_approve_apply_staging_offline() {
    let (_tmp, dir, cache) = quickstart();
    // The template's stand-in app, on a free port instead of the template's 18081.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let cfg = std::fs::read_to_string(dir.join("opsdeploy.hcl"))
        .unwrap()
        .replace("18081", &port);
    std::fs::write(dir.join("opsdeploy.hcl"), cfg).unwrap();
    let mut app = std::process::Command::new("python3")
        .args(["scripts/app.py", &port, "staging"])
        .current_dir(&dir)
        .spawn()
        .unwrap();
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
    let _ = app.kill();
    let _ = app.wait();
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
