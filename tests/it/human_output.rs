//! Human output (issue 6): aligned tables, colour only where it is wanted,
//! and `-q` printing the verdict alone.

use std::path::Path;

use crate::support::{opsdeploy, quickstart};

/// `opsdeploy -C dir ARGS` with `env` (a value of "" removes the variable),
/// stdout captured (a pipe: not a terminal); returns (stdout, stderr).
fn run(cache: &Path, dir: &Path, env: &[(&str, &str)], args: &[&str]) -> (String, String) {
    let mut cmd = opsdeploy(cache);
    cmd.arg("-C")
        .arg(dir)
        .args(args)
        .env("OPSDEPLOY_USER", "alice@example.com")
        .env_remove("CLICOLOR_FORCE");
    for (k, v) in env {
        match *v {
            "" => cmd.env_remove(k),
            v => cmd.env(k, v),
        };
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{args:?}\n{stdout}\n{stderr}");
    (stdout, stderr)
}

/// The policies table's columns start where their headings start.
fn assert_policies_aligned(stdout: &str) {
    let lines: Vec<&str> = stdout.lines().collect();
    let header_at = lines
        .iter()
        .position(|l| l.trim_start().starts_with("result"))
        .unwrap_or_else(|| panic!("no policies table:\n{stdout}"));
    let header = lines[header_at];
    let starts: Vec<usize> = ["policy", "enforcement"]
        .iter()
        .map(|h| header.find(h).unwrap())
        .collect();
    let rows: Vec<&str> = lines[header_at + 1..]
        .iter()
        .copied()
        .filter(|l| {
            ["pass", "warn", "deny", "overridden"]
                .iter()
                .any(|w| l.trim_start().starts_with(w))
        })
        .collect();
    assert!(
        rows.len() >= 5,
        "every quickstart policy has a row:\n{stdout}"
    );
    for row in rows {
        for &s in &starts {
            let (before, at) = (&row[s - 1..s], &row[s..s + 1]);
            assert!(
                before == " " && at != " ",
                "column at {s} misaligned in {row:?}\n{stdout}"
            );
        }
        // The findings count is right-aligned under its heading.
        assert_eq!(row.len(), header.len(), "{row:?}\n{stdout}");
        assert!(!row.ends_with(' '), "{row:?}");
    }
}

#[test]
fn plan_prints_an_aligned_table_without_escapes_unless_colour_is_forced() {
    let (_tmp, dir, cache) = quickstart();
    let cache = cache.path();
    let plan = ["plan", "staging"];

    // Not a terminal: no colour, even without NO_COLOR.
    let (stdout, stderr) = run(cache, &dir, &[("NO_COLOR", "")], &plan);
    assert!(!stdout.contains('\x1b'), "{stdout:?}");
    assert!(!stderr.contains('\x1b'), "{stderr:?}");
    assert_policies_aligned(&stdout);

    // Forced colour (anstream honours CLICOLOR_FORCE): escapes, same words.
    let (colored, _) = run(
        cache,
        &dir,
        &[("NO_COLOR", ""), ("CLICOLOR_FORCE", "1")],
        &plan,
    );
    assert!(colored.contains("\x1b["), "{colored:?}");
    let stripped = anstream::adapter::strip_str(&colored).to_string();
    assert_policies_aligned(&stripped);

    // NO_COLOR and --no-color win over a forced colour.
    for (env, extra) in [
        (&[("NO_COLOR", "1"), ("CLICOLOR_FORCE", "1")][..], None),
        (
            &[("NO_COLOR", ""), ("CLICOLOR_FORCE", "1")][..],
            Some("--no-color"),
        ),
    ] {
        let args: Vec<&str> = plan.iter().copied().chain(extra).collect();
        let (stdout, stderr) = run(cache, &dir, env, &args);
        assert!(!stdout.contains('\x1b'), "{env:?} {args:?}: {stdout:?}");
        assert!(!stderr.contains('\x1b'), "{env:?} {args:?}: {stderr:?}");
        assert_policies_aligned(&stdout);
    }
}

#[test]
fn quiet_prints_only_the_verdict_line() {
    let (_tmp, dir, cache) = quickstart();
    let cache = cache.path();
    let quiet = |args: &[&str]| {
        let args: Vec<&str> = args.iter().copied().chain(["-q"]).collect();
        let (stdout, stderr) = run(cache, &dir, &[], &args);
        assert_eq!(stdout.lines().count(), 1, "{args:?}: {stdout:?}");
        assert!(stdout.ends_with('\n'), "{args:?}: {stdout:?}");
        assert_eq!(stderr, "", "{args:?}");
        stdout.trim_end().to_string()
    };
    let planned = quiet(&["plan", "staging"]);
    let digest = planned
        .strip_prefix("planned ")
        .unwrap_or_else(|| panic!("{planned}"))
        .to_string();
    assert_eq!(digest.len(), 12, "{planned}");
    assert_eq!(quiet(&["report", &digest]), planned);
    assert_eq!(
        quiet(&["approve", "staging", "--plan", &digest]),
        format!("approved {digest}")
    );
    assert_eq!(quiet(&["status"]), "ok");
    assert_eq!(quiet(&["audit", "verify"]), "ok");
    assert!(quiet(&["audit", "log"]).ends_with(" entries"));
}
