//! `opsdeploy policy new NAME`: a policy crate that builds with one command and
//! has a passing fixture.

use std::path::{Path, PathBuf};

use crate::fsutil::write_atomic;

#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error("`{name}` is not a valid policy name: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("{path} already exists")]
    Exists { path: PathBuf },
    #[error("could not write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The SDK's sources, embedded so `policy new` works offline and outside a
/// checkout of opsdeploy (the crate is not on crates.io).
const SDK_FILES: &[(&str, &str)] = &[
    ("ABI.md", include_str!("../../policy-sdk/ABI.md")),
    ("src/lib.rs", include_str!("../../policy-sdk/src/lib.rs")),
    (
        "src/__private.rs",
        include_str!("../../policy-sdk/src/__private.rs"),
    ),
    (
        "src/violation.rs",
        include_str!("../../policy-sdk/src/violation.rs"),
    ),
    (
        "src/input.rs",
        include_str!("../../policy-sdk/src/input.rs"),
    ),
    (
        "src/terraform.rs",
        include_str!("../../policy-sdk/src/terraform.rs"),
    ),
    ("src/scan.rs", include_str!("../../policy-sdk/src/scan.rs")),
    ("src/helm.rs", include_str!("../../policy-sdk/src/helm.rs")),
    (
        "src/migration.rs",
        include_str!("../../policy-sdk/src/migration.rs"),
    ),
    ("src/text.rs", include_str!("../../policy-sdk/src/text.rs")),
];

/// What `new` created; also `policy new --format json`.
#[derive(Debug, serde::Serialize)]
pub struct Scaffolded {
    pub dir: PathBuf,
    /// Where the crate's policy-sdk dependency points.
    pub sdk: PathBuf,
    pub sdk_vendored: bool,
}

pub fn validate_name(name: &str) -> Result<(), ScaffoldError> {
    let invalid = |reason| ScaffoldError::InvalidName {
        name: name.to_string(),
        reason,
    };
    if name.is_empty() || name.len() > 64 {
        return Err(invalid("use 1 to 64 characters"));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(invalid("start with a lowercase letter"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        return Err(invalid("use lowercase letters, digits, `-` and `_` only"));
    }
    Ok(())
}

/// `parent/NAME` for a new policy: a valid name, and nothing there yet.
pub fn fresh_dir(parent: &Path, name: &str) -> Result<PathBuf, ScaffoldError> {
    validate_name(name)?;
    let dir = parent.join(name);
    if dir.exists() {
        return Err(ScaffoldError::Exists { path: dir });
    }
    Ok(dir)
}

/// Writes one file of a new policy, naming it when that fails.
pub fn write_file(dir: &Path, rel: &str, content: &str) -> Result<(), ScaffoldError> {
    let path = dir.join(rel);
    write_atomic(&path, content.as_bytes()).map_err(|source| ScaffoldError::Write { path, source })
}

/// Creates the crate `NAME` in `parent`.
pub fn new_policy(parent: &Path, name: &str) -> Result<Scaffolded, ScaffoldError> {
    let dir = fresh_dir(parent, name)?;
    let write = |rel: &str, content: &str| write_file(&dir, rel, content);
    let abs_parent = parent
        .canonicalize()
        .unwrap_or_else(|_| parent.to_path_buf());
    let (sdk, sdk_vendored) = match find_sdk(&abs_parent) {
        Some(found) => (found, false),
        None => (dir.join("vendor/policy-sdk"), true),
    };
    let sdk_dep = if sdk_vendored {
        "vendor/policy-sdk".to_string()
    } else {
        relative_path(&abs_parent.join(name), &sdk)
    };
    write("Cargo.toml", &cargo_toml(name, &sdk_dep))?;
    write("src/lib.rs", &lib_rs(name))?;
    write("fixtures/deny_forbidden_type.json", FIXTURE)?;
    write("README.md", &readme(name))?;
    write(".gitignore", "/target\n")?;
    if sdk_vendored {
        vendor_sdk(&dir).map_err(|(path, source)| ScaffoldError::Write { path, source })?;
    }
    Ok(Scaffolded {
        dir,
        sdk,
        sdk_vendored,
    })
}

/// Writes this opsdeploy's policy-sdk into `crate_dir/vendor/policy-sdk`, for a
/// policy crate outside an opsdeploy checkout.
/// A failure names the file that could not be written.
pub fn vendor_sdk(crate_dir: &Path) -> Result<(), (PathBuf, std::io::Error)> {
    let write = |rel: &str, content: &str| {
        let path = crate_dir.join("vendor/policy-sdk").join(rel);
        write_atomic(&path, content.as_bytes()).map_err(|source| (path, source))
    };
    for (rel, content) in SDK_FILES {
        write(rel, content)?;
    }
    write("Cargo.toml", SDK_MANIFEST)
}

/// A `policy-sdk` crate in `start` or one of its ancestors (an opsdeploy checkout).
fn find_sdk(start: &Path) -> Option<PathBuf> {
    start.ancestors().find_map(|dir| {
        let candidate = dir.join("policy-sdk");
        let manifest = std::fs::read_to_string(candidate.join("Cargo.toml")).ok()?;
        manifest
            .contains("name = \"policy-sdk\"")
            .then_some(candidate)
    })
}

/// `to` relative to `from` (both absolute), with `/` separators.
fn relative_path(from: &Path, to: &Path) -> String {
    let from: Vec<_> = from.components().collect();
    let to: Vec<_> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".into(); from.len() - common];
    parts.extend(
        to[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    parts.join("/")
}

const SDK_MANIFEST: &str = r#"[package]
name = "policy-sdk"
description = "Write opsdeploy policies in Rust and compile them to WebAssembly (ABI v1)"
version = "0.1.0"
edition = "2024"
license = "Apache-2.0"
publish = false

[dependencies]
serde = { version = "1", features = ["derive"] }
# float_roundtrip: numbers read as opsdeploy's check reads them (ABI.md, "Input").
serde_json = { version = "1", features = ["raw_value", "float_roundtrip"] }
"#;

fn cargo_toml(name: &str, sdk_dep: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
# cdylib: the .wasm module; rlib: native `cargo test`.
crate-type = ["cdylib", "rlib"]

[dependencies]
policy-sdk = {{ path = "{sdk_dep}" }}
serde = {{ version = "1", features = ["derive"] }}

[dev-dependencies]
serde_json = "1"

# A policy crate is its own workspace, wherever it lives.
[workspace]
"#
    )
}

fn lib_rs(name: &str) -> String {
    format!(
        r##"//! {name}: deny creating resources of types the platform team forbids.

use policy_sdk::prelude::*;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {{
    /// Terraform resource types that may not be created.
    #[serde(default)]
    forbidden_types: Vec<String>,
}}

pub fn evaluate(input: &Input) -> Vec<Violation> {{
    let settings: Settings = match input.settings() {{
        Ok(s) => s,
        Err(e) => return vec![Violation::deny("invalid-settings", e.to_string())],
    }};
    let Some(plan) = input.plan() else {{
        return Vec::new();
    }};
    plan.resource_changes
        .iter()
        .filter(|rc| rc.change.actions.is_create() || rc.change.actions.is_replace())
        .filter(|rc| settings.forbidden_types.iter().any(|t| *t == rc.resource_type))
        .map(|rc| {{
            Violation::deny(
                "forbidden-type",
                format!("{{}} creates a {{}}, which this project forbids", rc.address, rc.resource_type),
            )
            .at_address(&*rc.address)
        }})
        .collect()
}}

policy_sdk::export_policy! {{
    name: "{name}",
    description: "Deny creating resources of forbidden types",
    reads: [terraform],
    settings_schema: r#"{{"type":"object","additionalProperties":false,"properties":{{"forbidden_types":{{"type":"array","items":{{"type":"string"}}}}}}}}"#,
    evaluate: evaluate,
}}

#[cfg(test)]
mod tests {{
    use super::*;

    #[test]
    fn forbidden_type_is_denied_natively() {{
        let json = std::fs::read_to_string("fixtures/deny_forbidden_type.json").unwrap();
        let fixture: serde_json::Value = serde_json::from_str(&json).unwrap();
        let mut doc = fixture["input"].clone();
        doc["settings"] = fixture["settings"].clone();
        let text = doc.to_string();
        let violations = evaluate(&Input::from_json(&text).unwrap());
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].rule, "forbidden-type");
    }}
}}
"##
    )
}

const FIXTURE: &str = r#"{
  "description": "creating a forbidden resource type is denied; other creates pass",
  "settings": {"forbidden_types": ["aws_iam_user"]},
  "input": {
    "schema_version": 1,
    "environment": {"name": "staging", "project": "example"},
    "terraform": {
      "dir": "infra",
      "plan": {
        "format_version": "1.2",
        "resource_changes": [
          {"address": "aws_iam_user.ci", "mode": "managed", "type": "aws_iam_user", "name": "ci",
           "change": {"actions": ["create"], "before": null, "after": {"name": "ci"}}},
          {"address": "aws_s3_bucket.logs", "mode": "managed", "type": "aws_s3_bucket", "name": "logs",
           "change": {"actions": ["create"], "before": null, "after": {"bucket": "logs"}}}
        ]
      }
    }
  },
  "expect": [
    {"rule": "forbidden-type", "severity": "deny", "address": "aws_iam_user.ci"}
  ]
}
"#;

fn readme(name: &str) -> String {
    format!(
        r#"# {name}

An opsdeploy policy (ABI v1, see `ABI.md` of policy-sdk).

    opsdeploy policy test .     # build to wasm and run fixtures/*.json
    opsdeploy policy build .    # just build; prints the .wasm path
    cargo test                  # native unit tests

Use it from opsdeploy.hcl:

    policy "{name}" {{
      source      = "path/to/{wasm}.wasm"
      enforcement = "soft-mandatory"
      settings    = {{ forbidden_types = ["aws_iam_user"] }}
    }}
"#,
        wasm = name.replace('-', "_")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_crate_names() {
        assert!(validate_name("cost-guard").is_ok());
        assert!(validate_name("Cost").is_err());
        assert!(validate_name("9lives").is_err());
        assert!(validate_name("a b").is_err());
    }

    #[test]
    fn relative_paths_walk_up_then_down() {
        assert_eq!(
            relative_path(Path::new("/r/policies/x"), Path::new("/r/policy-sdk")),
            "../../policy-sdk"
        );
    }

    #[test]
    fn the_vendored_sdk_reads_json_as_the_workspaces_sdk_does() {
        // The features decide how numbers are read (float_roundtrip): a drift
        // would make a new policy skip values the host let through.
        let serde_json_line =
            |manifest: &'static str| manifest.lines().find(|l| l.starts_with("serde_json = "));
        let workspace = include_str!("../../Cargo.toml");
        assert!(serde_json_line(workspace).is_some_and(|l| l.contains("float_roundtrip")));
        assert_eq!(serde_json_line(workspace), serde_json_line(SDK_MANIFEST));
    }

    #[test]
    fn outside_a_checkout_the_sdk_is_vendored() {
        let tmp = tempfile::tempdir().unwrap();
        let s = new_policy(tmp.path(), "my-policy").unwrap();
        assert!(s.sdk_vendored);
        assert!(s.dir.join("vendor/policy-sdk/src/lib.rs").is_file());
        let err = new_policy(tmp.path(), "my-policy").unwrap_err();
        assert!(matches!(err, ScaffoldError::Exists { .. }));
    }
}
