//! One policy (replica-floor) in Rust, C, Zig, AssemblyScript and Rego, each
//! scaffolded by `opsdeploy policy new --lang`, built with its real toolchain
//! and run by `opsdeploy policy test` on the same fixtures: every version must
//! pass them with identical verdicts. The toolchains come from
//! scripts/setup.sh (into .tools/bin); a missing one fails, it never skips.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::support::{opsdeploy, repo};

/// PATH with the toolchains scripts/setup.sh installs first.
fn tools_path() -> OsString {
    let mut paths = vec![repo().join(".tools/bin")];
    paths.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(paths).unwrap()
}

/// `policy test DIR --format json`, which must pass: case name -> violations.
fn test_policy(cache: &Path, dir: &Path) -> BTreeMap<String, serde_json::Value> {
    let out = opsdeploy(cache)
        .env("PATH", tools_path())
        .args(["--format", "json", "policy", "test"])
        .arg(dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "policy test {} failed (run scripts/setup.sh for the toolchains):\n{}\n{stderr}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["case"].as_str().unwrap().to_string(),
                c["violations"].clone(),
            )
        })
        .collect()
}

fn sorted(violations: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = violations
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|v| v.to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn every_language_passes_the_same_fixtures_with_identical_verdicts() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let mut dirs: Vec<(&str, PathBuf)> =
        vec![("rust", repo().join("tests/polyglot/replica-floor/rust"))];
    for lang in ["c", "zig", "assemblyscript", "rego"] {
        let name = format!("floor-{lang}");
        opsdeploy(&cache)
            .current_dir(tmp.path())
            .args(["policy", "new", &name, "--lang", lang])
            .assert()
            .success();
        dirs.push((lang, tmp.path().join(name)));
    }
    let fixtures: Vec<String> = std::fs::read_dir(repo().join("src/authoring/templates/fixtures"))
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let results: Vec<(&str, BTreeMap<String, serde_json::Value>)> = dirs
        .iter()
        .map(|(lang, dir)| (*lang, test_policy(&cache, dir)))
        .collect();
    let (_, reference) = &results[0];
    let mut denials = 0;
    for fixture in &fixtures {
        let expected = sorted(&reference[fixture]);
        denials += expected.len();
        for (lang, cases) in &results[1..] {
            let got = cases
                .get(fixture)
                .unwrap_or_else(|| panic!("{lang} did not run fixture {fixture}"));
            assert_eq!(sorted(got), expected, "{lang} and rust differ on {fixture}");
        }
    }
    // The fixtures do deny: identical verdicts are not all empty lists.
    assert_eq!(denials, 4);
    // The Rego version's conftest-style tests ran as cases too.
    let rego = &results[4].1;
    assert!(rego.contains_key("data.main.test_one_replica_is_below_a_floor_of_three"));
    assert!(rego.contains_key("data.main.test_a_configmap_is_not_a_workload"));
}

#[test]
fn a_missing_compiler_is_an_error_naming_what_to_install() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    opsdeploy(&cache)
        .current_dir(tmp.path())
        .args(["policy", "new", "floor", "--lang", "c"])
        .assert()
        .success();
    let out = opsdeploy(&cache)
        .current_dir(tmp.path())
        .env("PATH", tmp.path())
        .env_remove("OPSDEPLOY_CLANG")
        .args(["policy", "build", "floor"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error: clang-14 or clang is not installed; it builds c policies"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: install clang and lld"), "{stderr}");
}

/// The fenced block of `lang` that follows `heading` in ABI.md.
fn abi_block(heading: &str, lang: &str) -> String {
    let abi = std::fs::read_to_string(repo().join("policy-sdk/ABI.md")).unwrap();
    let section = &abi[abi.find(heading).expect("heading in ABI.md")..];
    let fence = format!("```{lang}\n");
    let start = section.find(&fence).expect("code block") + fence.len();
    let len = section[start..].find("```\n").expect("closing fence");
    section[start..start + len].to_string()
}

#[test]
fn the_abi_c_example_compiles_as_written_and_passes_its_fixture() {
    let source = repo().join("policy-sdk/examples/c/always_ok.c");
    assert_eq!(
        abi_block("## A policy in C", "c"),
        std::fs::read_to_string(&source).unwrap(),
        "ABI.md's C example and policy-sdk/examples/c/always_ok.c must be the same text"
    );
    let command = abi_block("## A policy in C", "sh");
    let mut words = command.split_whitespace();
    assert_eq!(words.next(), Some("clang"));
    // Debian installs clang 14 as clang-14.
    let clang = ["clang", "clang-14"]
        .into_iter()
        .find_map(|c| which::which_in(c, Some(tools_path()), ".").ok())
        .expect("clang (or clang-14) on PATH: run scripts/setup.sh");
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(&source, tmp.path().join("always_ok.c")).unwrap();
    let status = std::process::Command::new(clang)
        .args(words)
        .current_dir(tmp.path())
        .status()
        .unwrap();
    assert!(status.success(), "`{}` failed", command.trim());
    opsdeploy(&tmp.path().join("cache"))
        .args(["policy", "test", "--wasm"])
        .arg(tmp.path().join("always_ok.wasm"))
        .arg(repo().join("policy-sdk/examples/c/fixtures"))
        .assert()
        .success();
}

fn schema(name: &str) -> jsonschema::Validator {
    let text = std::fs::read(repo().join("schema").join(name)).unwrap();
    jsonschema::validator_for(&serde_json::from_slice(&text).unwrap()).unwrap()
}

/// The raw `opsdeploy.metadata` section of a module.
fn metadata_json(wasm: &[u8]) -> serde_json::Value {
    let data = wasmparser::Parser::new(0)
        .parse_all(wasm)
        .find_map(|p| match p.unwrap() {
            wasmparser::Payload::CustomSection(s) if s.name() == "opsdeploy.metadata" => {
                Some(s.data().to_vec())
            }
            _ => None,
        })
        .expect("a metadata section");
    serde_json::from_slice(&data).unwrap()
}

#[test]
fn the_json_schemas_accept_what_the_host_accepts_and_refuse_typos() {
    let metadata = schema("policy-metadata.schema.json");
    for (name, wasm) in opsdeploy::engine::BUILTIN_POLICIES {
        let meta = metadata_json(wasm);
        assert!(metadata.is_valid(&meta), "{name}: {meta}");
    }
    let typo = serde_json::json!({"abi_version": 1, "name": "x", "raeds": ["terraform"]});
    assert!(!metadata.is_valid(&typo));
    assert!(!metadata.is_valid(&serde_json::json!({"abi_version": 2, "name": "x"})));

    let output = schema("policy-output.schema.json");
    let engine = opsdeploy::engine::PolicyEngine::new(None).unwrap();
    let policy = engine
        .load(&opsdeploy::engine::ModuleSource::builtin("protected-deletes").unwrap())
        .unwrap();
    let doc = crate::support::production_document(Some(
        "checkov/tests/terraform/runner/resources/plan_with_pure_deleted_resources/tfplan.json",
    ));
    let eval = engine.evaluate(
        &policy,
        &doc.for_policy(policy.reads.as_deref(), None),
        &opsdeploy::engine::Limits::default(),
    );
    let violations = eval.violations();
    assert!(!violations.is_empty());
    let out = serde_json::json!({ "violations": violations });
    assert!(output.is_valid(&out), "{out}");
    let typo = serde_json::json!({"violations": [{"rule": "r", "message": "m", "severity": "deny", "severty": "x"}]});
    assert!(!output.is_valid(&typo));
    assert!(!output.is_valid(
        &serde_json::json!({"violations": [{"rule": "", "message": "m", "severity": "deny"}]})
    ));
}
