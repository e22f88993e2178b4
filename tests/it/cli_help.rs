//! The command line's own documentation: top-level help with examples, and a
//! version that names the policy ABI.

use crate::support::opsdeploy;

#[test]
fn top_level_help_lists_every_command_with_examples() {
    let cache = tempfile::tempdir().unwrap();
    let out = opsdeploy(cache.path())
        .env("COLUMNS", "100")
        .arg("--help")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    insta::assert_snapshot!(String::from_utf8(out).unwrap());
}

#[test]
fn version_names_the_policy_abi() {
    let cache = tempfile::tempdir().unwrap();
    for flag in ["--version", "-V"] {
        let out = opsdeploy(cache.path())
            .arg(flag)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let out = String::from_utf8(out).unwrap();
        assert_eq!(
            out.trim(),
            format!(
                "opsdeploy {} (policy ABI v{}, input schema v1, wasmtime 48)",
                env!("CARGO_PKG_VERSION"),
                policy_sdk::ABI_VERSION
            )
        );
    }
}
