//! The quickstart template runs the whole staging flow offline, as the
//! README's first command does.

use predicates::prelude::*;

use crate::support::{QuickstartApp, as_alice, quickstart, row};

#[test]
fn quickstart_init_plan_approve_apply_staging_offline() {
    let (_tmp, dir, cache) = quickstart();
    let app = QuickstartApp::start(&dir);
    let run = |args: &[&str]| as_alice(cache.path(), &dir, args);
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

/// The README's `./scripts/quickstart.sh`, run as it is with this build:
/// staging and production deployed (production approved with a signed
/// approval), a release that does not start rolled back for real — the
/// terraform value back and `status` saying so — and a database replacement
/// refused. The script itself checks each exit code (5, 4, 3) and the
/// terraform state; this test checks what it shows.
#[test]
fn the_quickstart_script_shows_a_failed_deploy_and_its_real_rollback() {
    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let cache = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("bash")
        .arg(crate::support::repo().join("scripts/quickstart.sh"))
        .env("OPSDEPLOY_BIN", assert_cmd::cargo::cargo_bin("opsdeploy"))
        .env(
            "QUICKSTART_PORTS",
            format!("{} {}", free_port(), free_port()),
        )
        .env("OPSDEPLOY_CACHE_DIR", cache.path())
        .env("NO_COLOR", "1")
        .env_remove("OPSDEPLOY_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "quickstart.sh failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    for shown in [
        "FAIL health",
        "ok rollback terraform returned to the configuration of plan",
        "staging's terraform state deploys: registry.example.com/shop/web:1.4.2",
        "(restored) healthy",
        "(complete): undone: terraform: returned to the configuration of plan",
        "quickstart done",
    ] {
        assert!(
            crate::support::has_row(&stdout, shown),
            "the quickstart does not show {shown:?}:\n{stdout}"
        );
    }
    assert!(
        stderr.contains("failed and was rolled back: 1 undone"),
        "{stderr}"
    );
}
