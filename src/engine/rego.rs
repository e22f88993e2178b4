//! Rego policies: the built-in Rego runtime module (regorus compiled to
//! wasm32-unknown-unknown, `rego-runtime/`) evaluating a policy's `.rego`
//! files. It is an ordinary ABI v1 module, so a Rego policy runs in the same
//! sandbox under the same fuel, memory and deadline as any other; the host only
//! puts the program (one line of JSON) and a newline before each input.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use policy_sdk::Section;
use sha2::{Digest, Sha256};

use super::{EngineError, ModuleSource, Policy, PolicyEngine};

include!(concat!(env!("OUT_DIR"), "/rego_runtime.rs"));

/// How the runtime reports each `test_*` rule in test mode (rego-runtime/).
pub const TEST_PASSED: &str = "rego-test-passed";
pub const TEST_FAILED: &str = "rego-test-failed";

/// Conftest's default namespace.
pub const DEFAULT_QUERY: &str = "data.main";

/// A Rego policy before loading: its files and what to evaluate.
#[derive(Debug, Clone)]
pub struct RegoSource {
    pub name: String,
    /// Shown in reports and results, e.g. `rego:policies/k8s/*.rego`.
    pub origin: String,
    pub files: Vec<RegoFile>,
    /// The package whose deny / violation / warn rules are read.
    pub query: String,
    /// Where Rego's `input` comes from in the input document (a dotted path,
    /// `name[]` for each element of an array, or `kubernetes`); the whole
    /// document when `None`.
    pub input: Option<String>,
    /// `auto`, `v0` or `v1`.
    pub rego_version: String,
}

#[derive(Debug, Clone)]
pub struct RegoFile {
    /// As shown in errors: relative to the project.
    pub path: String,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegoMode {
    /// The conftest rules of the queried package.
    Deny,
    /// The `test_*` rules of the `*_test.rego` files.
    Test,
}

#[derive(Debug, thiserror::Error)]
pub enum RegoError {
    #[error("could not read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{pattern}` matches no .rego file")]
    NoFiles { pattern: String },
    #[error("`{pattern}` has more than one `*`; use one, in the file name (policies/k8s/*.rego)")]
    Pattern { pattern: String },
}

/// The `.rego` files a pattern names, sorted: a file, a directory (its `.rego`
/// files), or a path whose file name has one `*` (`policies/k8s/*.rego`).
pub fn expand(dir: &Path, pattern: &str) -> Result<Vec<PathBuf>, RegoError> {
    let read_dir = |d: &Path| {
        std::fs::read_dir(d).map_err(|source| RegoError::Read {
            path: d.to_path_buf(),
            source,
        })
    };
    let full = dir.join(pattern);
    let mut found: Vec<PathBuf> = match pattern.matches('*').count() {
        0 if full.is_dir() => read_dir(&full)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "rego") && p.is_file())
            .collect(),
        0 => vec![full],
        1 => {
            let parent = full.parent().unwrap_or(dir).to_path_buf();
            let name = full
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let Some((prefix, suffix)) = name.split_once('*') else {
                return Err(RegoError::Pattern {
                    pattern: pattern.to_string(),
                });
            };
            read_dir(&parent)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_file()
                        && p.file_name().is_some_and(|n| {
                            let n = n.to_string_lossy();
                            n.len() >= prefix.len() + suffix.len()
                                && n.starts_with(prefix)
                                && n.ends_with(suffix)
                        })
                })
                .collect()
        }
        _ => {
            return Err(RegoError::Pattern {
                pattern: pattern.to_string(),
            });
        }
    };
    found.sort();
    if found.is_empty() {
        return Err(RegoError::NoFiles {
            pattern: pattern.to_string(),
        });
    }
    Ok(found)
}

/// Reads the files of every pattern (each file once), shown relative to `dir`.
pub fn read_files(dir: &Path, patterns: &[String]) -> Result<Vec<RegoFile>, RegoError> {
    let mut files: Vec<RegoFile> = Vec::new();
    for pattern in patterns {
        for path in expand(dir, pattern)? {
            let shown = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            if files.iter().any(|f| f.path == shown) {
                continue;
            }
            let text = std::fs::read_to_string(&path).map_err(|source| RegoError::Read {
                path: path.clone(),
                source,
            })?;
            files.push(RegoFile { path: shown, text });
        }
    }
    Ok(files)
}

/// The runtime module, as loaded like any other module (and cached).
pub fn runtime_source() -> ModuleSource {
    ModuleSource::from_bytes("builtin:rego", "rego", REGO_RUNTIME.into())
}

/// The input sections a selector needs: `None` is all of them.
fn reads(origin: &str, input: Option<&str>) -> Result<Option<Vec<Section>>, EngineError> {
    let Some(selector) = input else {
        return Ok(None);
    };
    let first = selector.split('.').next().unwrap_or_default();
    let first = first.strip_suffix("[]").unwrap_or(first);
    match first {
        "kubernetes" => Ok(Some(vec![Section::Helm])),
        // Always passed.
        "environment" | "settings" => Ok(Some(Vec::new())),
        name => match Section::parse(name) {
            Some(section) => Ok(Some(vec![section])),
            None => Err(EngineError::InvalidModule {
                origin: origin.to_string(),
                reason: format!(
                    "its input `{selector}` does not start with a section of the input document (kubernetes, environment, settings, {})",
                    Section::ALL.map(|s| s.as_str()).join(", ")
                ),
            }),
        },
    }
}

impl PolicyEngine {
    /// A Rego policy: the runtime module carrying the policy's program. Its
    /// sha256 covers the runtime and every file, so the results and the audit
    /// log name the exact Rego evaluated.
    pub fn load_rego(&self, source: &RegoSource, mode: RegoMode) -> Result<Policy, EngineError> {
        let runtime = runtime_source();
        let mut policy = self.load(&runtime)?;
        let mut digest = Sha256::new();
        digest.update(runtime.sha256.as_bytes());
        for file in &source.files {
            digest.update(file.path.as_bytes());
            digest.update([0]);
            digest.update(Sha256::digest(file.text.as_bytes()));
        }
        let program = serde_json::json!({
            "modules": source.files.iter().map(|f| serde_json::json!({"path": f.path, "text": f.text})).collect::<Vec<_>>(),
            "query": source.query,
            "input": source.input,
            "mode": match mode { RegoMode::Deny => "deny", RegoMode::Test => "test" },
            "rego_version": source.rego_version,
        });
        policy.reads = reads(&source.origin, source.input.as_deref())?;
        policy.name = source.name.clone();
        policy.origin = source.origin.clone();
        policy.sha256 = hex::encode(digest.finalize());
        policy.metadata = None;
        policy.program = Some(Arc::from(program.to_string()));
        Ok(policy)
    }
}

/// The runtime's input: the program's line (serde_json escapes every newline
/// inside it), then the document's parts.
pub(super) fn wrap<'a>(program: &'a str, parts: &[&'a [u8]]) -> Vec<&'a [u8]> {
    let mut wrapped = Vec::with_capacity(parts.len() + 2);
    wrapped.extend([program.as_bytes(), b"\n"]);
    wrapped.extend_from_slice(parts);
    wrapped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_name_files_directories_and_one_star() {
        let tmp = tempfile::tempdir().unwrap();
        let k8s = tmp.path().join("policies/k8s");
        std::fs::create_dir_all(&k8s).unwrap();
        for f in ["deny.rego", "lib.rego", "deny_test.rego", "notes.md"] {
            std::fs::write(k8s.join(f), "package main\n").unwrap();
        }
        let names = |pattern: &str| -> Vec<String> {
            expand(tmp.path(), pattern)
                .unwrap()
                .iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(
            names("policies/k8s/*.rego"),
            ["deny.rego", "deny_test.rego", "lib.rego"]
        );
        assert_eq!(names("policies/k8s"), names("policies/k8s/*.rego"));
        assert_eq!(names("policies/k8s/*_test.rego"), ["deny_test.rego"]);
        assert!(matches!(
            expand(tmp.path(), "policies/k8s/*.yaml"),
            Err(RegoError::NoFiles { .. })
        ));
        assert!(matches!(
            expand(tmp.path(), "policies/*/*.rego"),
            Err(RegoError::Pattern { .. })
        ));
    }

    #[test]
    fn the_program_line_ends_at_the_first_newline_whatever_the_rego_holds() {
        let program = serde_json::json!({"modules": [{"path": "a.rego", "text": "package main\n\ndeny[m] { m := 1 }\n"}]}).to_string();
        let wrapped = wrap(&program, &[b"{\"x\":", b"\n1}"]).concat();
        let newline = wrapped.iter().position(|&b| b == b'\n').unwrap();
        assert_eq!(&wrapped[..newline], program.as_bytes());
        assert_eq!(&wrapped[newline + 1..], b"{\"x\":\n1}");
    }

    #[test]
    fn the_input_selector_decides_the_sections_passed() {
        assert_eq!(
            reads("p", Some("terraform.plan")).unwrap(),
            Some(vec![Section::Terraform])
        );
        assert_eq!(
            reads("p", Some("kubernetes")).unwrap(),
            Some(vec![Section::Helm])
        );
        assert_eq!(reads("p", None).unwrap(), None);
        let err = reads("p", Some("plan.resource_changes")).unwrap_err();
        assert!(err.to_string().contains("`plan.resource_changes`"), "{err}");
    }
}
