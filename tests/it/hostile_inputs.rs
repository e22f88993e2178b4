//! Hostile inputs never crash or hang opsdeploy: a 100 MB plan, JSON nested
//! far deeper than any plan, bytes that are not UTF-8, HCL that refers to
//! itself. Each ends with a clear message and the exit code docs/style.md gives
//! (1 for bad input; a policy that cannot cope is a denial, 3).

use std::io::Write;

use predicates::prelude::*;

use crate::support::opsdeploy;

fn eval(plan: &std::path::Path) -> assert_cmd::assert::Assert {
    let cache = tempfile::tempdir().unwrap();
    opsdeploy(cache.path())
        .args([
            "policy",
            "eval",
            "builtin:protected-deletes",
            "--terraform-plan",
        ])
        .arg(plan)
        .timeout(std::time::Duration::from_secs(300))
        .assert()
}

#[test]
fn a_100_mb_plan_is_judged_or_denied_without_crashing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.json");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    write!(
        f,
        r#"{{"format_version":"1.2","terraform_version":"1.11.0","resource_changes":["#
    )
    .unwrap();
    let pad = "x".repeat(4_000);
    let n = 25_000; // ~100 MB
    for i in 0..n {
        let sep = if i + 1 < n { "," } else { "" };
        write!(
            f,
            r#"{{"address":"aws_db_instance.db[{i}]","type":"aws_db_instance","name":"db","change":{{"actions":["delete"],"before":{{"blob":"{pad}"}},"after":null}}}}{sep}"#
        )
        .unwrap();
    }
    write!(f, "]}}").unwrap();
    f.flush().unwrap();
    drop(f);
    assert!(std::fs::metadata(&path).unwrap().len() > 100_000_000);
    // 25,000 protected deletes: denied (exit 3), or, past the memory cap, a
    // denial naming the limit. Never a crash (exit 101) or a hang.
    let out = eval(&path).get_output().clone();
    let code = out.status.code();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        code,
        Some(3),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("25000 violations") || stdout.contains("memory"),
        "{}",
        stdout.chars().take(2_000).collect::<String>()
    );
}

#[test]
fn json_nested_100000_deep_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deep.json");
    let deep = format!(
        r#"{{"format_version":"1.2","resource_changes":[{{"address":"a.b","type":"a","name":"b","change":{{"actions":["create"],"after":{}{}}}}}]}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    std::fs::write(&path, deep).unwrap();
    eval(&path)
        .code(1)
        .stderr(predicate::str::contains("deep.json"))
        .stderr(predicate::str::contains("nested deeper than 127 levels"));
}

#[test]
fn a_plan_that_is_not_utf8_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latin1.json");
    std::fs::write(
        &path,
        b"{\"format_version\":\"1.2\",\"resource_changes\":[{\"address\":\"caf\xe9\"}]}",
    )
    .unwrap();
    eval(&path)
        .code(1)
        .stderr(predicate::str::contains("latin1.json"));
}

#[test]
fn hcl_that_refers_to_itself_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("opsdeploy.hcl"),
        "project = local.name\nlocals {\n  name = local.other\n  other = local.name\n}\n",
    )
    .unwrap();
    let out = opsdeploy(cache.path())
        .arg("-C")
        .arg(dir.path())
        .args(["plan", "staging"])
        .timeout(std::time::Duration::from_secs(60))
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains("opsdeploy.hcl:1"), "{stderr}");
}

#[test]
fn a_reader_that_stops_early_does_not_make_opsdeploy_panic() {
    let cache = tempfile::tempdir().unwrap();
    // 5,000 denials: far more output than a pipe buffers.
    let changes: Vec<String> = (0..5_000)
        .map(|i| format!(r#"{{"address":"aws_db_instance.db[{i}]","type":"aws_db_instance","name":"db","change":{{"actions":["delete"],"before":{{}},"after":null}}}}"#))
        .collect();
    let plan = cache.path().join("plan.json");
    std::fs::write(
        &plan,
        format!(
            r#"{{"format_version":"1.2","resource_changes":[{}]}}"#,
            changes.join(",")
        ),
    )
    .unwrap();
    let bin = assert_cmd::cargo::cargo_bin("opsdeploy");
    let mut child = std::process::Command::new(bin)
        .args([
            "policy",
            "eval",
            "builtin:protected-deletes",
            "--format",
            "json",
            "--terraform-plan",
        ])
        .arg(&plan)
        .env("OPSDEPLOY_CACHE_DIR", cache.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // `| head -c 1`: read a byte, then close the pipe.
    let mut stdout = child.stdout.take().unwrap();
    let mut byte = [0u8; 1];
    std::io::Read::read_exact(&mut stdout, &mut byte).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// An insider shapes a plan so that cutting what no-secrets does not read
/// (`before`, `after_unknown`, ...) would hide a secret in `after`: the key
/// written with an escape, a `before` whose strings look like members, odd
/// spacing, `after` as the first member and the last. no-secrets still sees
/// the secret; an `after` given twice is refused, not judged by one copy.
#[test]
fn a_plan_shaped_to_hide_a_secret_from_the_cut_still_shows_it_to_no_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let secret = r#"{"password":"Tq7-lantern-83!"}"#;
    let changes = [
        format!(r#"{{"actions":["create"],"before":null,"af\u0074er":{secret}}}"#),
        format!(
            r#"{{"before":{{"s":"\",\"after\":{{}},\""}}, "after_unknown" : {{}} ,"actions":["update"],"after":{secret}}}"#
        ),
        format!(
            r#"{{"after":{secret},"before_sensitive":{{}},"actions":["create"],"after_unknown":{{}}}}"#
        ),
    ];
    let eval_secrets = |name: &str, change: &str| {
        let path = dir.path().join(name);
        let plan = format!(
            r#"{{"format_version":"1.2","resource_changes":[{{"address":"aws_db_instance.db","mode":"managed","type":"aws_db_instance","name":"db","change":{change}}}]}}"#
        );
        std::fs::write(&path, plan).unwrap();
        let cache = tempfile::tempdir().unwrap();
        opsdeploy(cache.path())
            .args(["policy", "eval", "builtin:no-secrets", "--terraform-plan"])
            .arg(&path)
            .assert()
    };
    for (i, change) in changes.iter().enumerate() {
        let out = eval_secrets(&format!("hidden{i}.json"), change).code(3);
        let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
        assert!(stdout.contains("aws_db_instance.db"), "case {i}: {stdout}");
        assert!(
            !stdout.contains("Tq7-lantern-83!"),
            "case {i} printed the secret: {stdout}"
        );
    }
    eval_secrets(
        "twice.json",
        &format!(r#"{{"actions":["create"],"after":{{}},"after":{secret}}}"#),
    )
    .code(1)
    .stderr(predicate::str::contains("twice.json"))
    .stderr(predicate::str::contains("duplicate field `after`"));
}

/// A number a float barely holds — finite read correctly rounded, infinite to
/// a parser that is not — once made the SDK's policies read the whole value
/// holding it as `null`: a secret or a protective tag beside it went unseen.
#[test]
fn a_number_at_the_edge_of_float_range_hides_nothing_from_a_policy() {
    let dir = tempfile::tempdir().unwrap();
    let plan = |name: &str, actions: &str, values: &str| {
        let path = dir.path().join(name);
        let plan = format!(
            r#"{{"format_version":"1.2","resource_changes":[{{"address":"aws_db_instance.db","mode":"managed","type":"aws_db_instance","name":"db","change":{{"actions":["{actions}"],{values}}}}}]}}"#
        );
        std::fs::write(&path, plan).unwrap();
        path
    };
    let run = |policy: &str, path: &std::path::Path, settings: &str| {
        let cache = tempfile::tempdir().unwrap();
        opsdeploy(cache.path())
            .args(["policy", "eval", policy, "--settings", settings])
            .arg("--terraform-plan")
            .arg(path)
            .assert()
    };
    for edge in ["1.7976931348623158e308", "-1.797693134862315799999e308"] {
        let secret = plan(
            "secret.json",
            "create",
            &format!(r#""before":null,"after":{{"password":"Tq7-lantern-83!","n":{edge}}}"#),
        );
        let out = run("builtin:no-secrets", &secret, "{}").code(3);
        let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
        assert!(
            stdout.contains("aws_db_instance.db") && stdout.contains("password"),
            "{edge}: {stdout}"
        );
        assert!(!stdout.contains("Tq7-lantern-83!"), "{stdout}");

        let tagged = plan(
            "tagged.json",
            "delete",
            &format!(r#""before":{{"tags":{{"protect":"yes"}},"n":{edge}}},"after":null"#),
        );
        run(
            "builtin:protected-deletes",
            &tagged,
            r#"{"types":[],"tags":["protect"]}"#,
        )
        .code(3)
        .stdout(predicate::str::contains("it is tagged `protect`"));
    }
    // Past the rounding boundary no float holds it: refused naming the file.
    let over = plan(
        "over.json",
        "create",
        r#""after":{"password":"Tq7-lantern-83!","n":1.7976931348623159e308}"#,
    );
    run("builtin:no-secrets", &over, "{}")
        .code(1)
        .stderr(predicate::str::contains("over.json"))
        .stderr(predicate::str::contains("number out of range"));
}

/// A whole input document gets the plan's check too: a lone surrogate beside a
/// secret made the SDK's parser give up on the value and the secret pass.
#[test]
fn an_input_document_a_policy_would_misread_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("doc.json");
    std::fs::write(
        &path,
        r#"{"schema_version":1,"environment":{"name":"staging","project":"shop"},"terraform":{"dir":".","plan":{"format_version":"1.2","resource_changes":[{"address":"aws_db_instance.db","mode":"managed","type":"aws_db_instance","name":"db","change":{"actions":["create"],"before":null,"after":{"password":"Tq7-lantern-83!","note":"\ud800"}}}]}}}"#,
    )
    .unwrap();
    let cache = tempfile::tempdir().unwrap();
    opsdeploy(cache.path())
        .args(["policy", "eval", "builtin:no-secrets", "--input"])
        .arg(&path)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("doc.json"))
        .stderr(predicate::str::contains("lone leading surrogate"))
        .stdout(predicate::str::contains("Tq7-lantern-83!").not());
}
