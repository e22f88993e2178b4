//! What a new user sees when something is missing or wrong: every message says
//! what is wrong, where, and the one thing to do next (docs/style.md). One
//! transcript, snapshot-tested.

use std::path::Path;

use crate::support::opsdeploy;
use crate::workflow::MAIN_TF;

const PROJECT: &str = r#"
project = "shop"

policy "protected-deletes" {
  builtin     = true
  enforcement = "hard-mandatory"
}

policy "gates" {
  enabled = false
  reason  = "a first project keeps no SDLC state yet"
}

environment "staging" {
  terraform { dir = "infra" }
  approval { self_approve = true }
}

environment "production" {
  terraform { dir = "infra" }
}
"#;

/// Runs opsdeploy in `dir` and writes `$ command`, stdout, stderr and the exit
/// code into the transcript, with `dir` shown as `[DIR]`.
fn step(transcript: &mut String, dir: &Path, env: &[(&str, &str)], args: &[&str]) {
    let cache = tempfile::tempdir().unwrap();
    let mut cmd = opsdeploy(cache.path());
    cmd.current_dir(dir)
        .args(args)
        .env("OPSDEPLOY_USER", "alice@example.com");
    for (k, v) in env {
        match *v {
            "" => cmd.env_remove(k),
            v => cmd.env(k, v),
        };
    }
    let out = cmd.output().unwrap();
    let shown = |b: &[u8]| String::from_utf8_lossy(b).replace(&dir.display().to_string(), "[DIR]");
    transcript.push_str(&format!("$ opsdeploy {}\n", args.join(" ")));
    transcript.push_str(&shown(&out.stdout));
    transcript.push_str(&shown(&out.stderr));
    transcript.push_str(&format!("[exit {}]\n\n", out.status.code().unwrap_or(-1)));
}

fn project(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("infra")).unwrap();
    std::fs::write(dir.path().join("infra/main.tf"), MAIN_TF).unwrap();
    std::fs::write(dir.path().join("opsdeploy.hcl"), config).unwrap();
    dir
}

#[test]
fn every_first_mistake_says_what_is_wrong_and_what_to_do() {
    let mut t = String::new();

    // No configuration at all.
    let empty_dir = tempfile::tempdir().unwrap();
    step(&mut t, empty_dir.path(), &[], &["plan", "staging"]);
    step(&mut t, empty_dir.path(), &[], &["status"]);
    step(&mut t, empty_dir.path(), &[], &["scan"]);

    // An empty configuration, then one with only a project.
    let empty = project("");
    step(&mut t, empty.path(), &[], &["plan", "staging"]);
    let bare = project("project = \"shop\"\n");
    step(&mut t, bare.path(), &[], &["plan", "staging"]);

    // A name that is not an environment.
    let p = project(PROJECT);
    step(&mut t, p.path(), &[], &["plan", "prod"]);

    // A policy that does not exist: in the configuration and on the command line.
    let unknown = project(&PROJECT.replace("protected-deletes", "no-such-policy"));
    step(&mut t, unknown.path(), &[], &["plan", "staging"]);
    step(
        &mut t,
        p.path(),
        &[],
        &[
            "policy",
            "eval",
            "builtin:no-such-policy",
            "--input",
            "input.json",
        ],
    );

    // terraform is not installed.
    let no_tools = tempfile::tempdir().unwrap();
    let path = no_tools.path().display().to_string();
    step(&mut t, p.path(), &[("PATH", &path)], &["plan", "staging"]);

    // Not a git repository and no identity anywhere: planning works (the
    // plan records no git revision), approving does not.
    let home = tempfile::tempdir().unwrap();
    let home = home.path().display().to_string();
    let nobody = [
        ("OPSDEPLOY_USER", ""),
        ("USER", ""),
        ("HOME", home.as_str()),
        ("GIT_CONFIG_NOSYSTEM", "1"),
        ("GIT_CONFIG_GLOBAL", "/dev/null"),
    ];
    step(&mut t, p.path(), &nobody, &["plan", "staging", "-q"]);
    step(&mut t, p.path(), &nobody, &["approve", "staging"]);

    // Applying before any approval, and a report format where none is written.
    step(&mut t, p.path(), &[], &["apply", "staging", "--yes"]);
    step(&mut t, p.path(), &[], &["status", "--format", "junit"]);

    // Overriding what cannot be, or need not be, overridden.
    let override_ = |policy| {
        [
            "approve",
            "staging",
            "--override",
            policy,
            "--reason",
            "hotfix",
        ]
    };
    step(&mut t, p.path(), &[], &override_("protected-deletes"));
    step(&mut t, p.path(), &[], &override_("cost-guard"));

    // A digest prefix that names no plan.
    step(&mut t, p.path(), &[], &["report", "000000"]);

    // The lists of built-in policies name every one, and grow with them.
    for (name, _) in opsdeploy::engine::BUILTIN_POLICIES {
        assert!(
            t.contains(&format!(", {name}")) || t.contains(&format!(": {name}")),
            "{name}"
        );
        assert!(t.contains(&format!("builtin:{name}")), "{name}");
    }
    insta::with_settings!({filters => vec![
        (r"\(built in: [^)]*\)", "(built in: [BUILT-IN POLICIES])"),
        (r"built-in policies: .*", "built-in policies: [BUILT-IN POLICIES]"),
        (r"\b[0-9a-f]{12}\b", "[SHORT]"),
        (r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", "[TIME]"),
    ]}, {
        insta::assert_snapshot!(t);
    });
}
