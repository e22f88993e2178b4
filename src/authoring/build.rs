//! `opsdeploy policy build`: find policy crates and compile them to wasm.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;

use super::wasm_build::{self, MISSING_TARGET_HINT, WASM_TARGET};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(
        "{dir} holds no policy (a Rust crate, policy.c, policy.zig, policy.ts or .rego files, or directories of them)"
    )]
    NoCrates { dir: PathBuf },
    #[error("{manifest} is not a policy crate: {reason}")]
    NotAPolicy { manifest: PathBuf, reason: String },
    #[error("could not run `{command}`: {reason}")]
    Spawn { command: String, reason: String },
    #[error("`cargo metadata` failed for {manifest}: {stderr}")]
    Metadata { manifest: PathBuf, stderr: String },
    #[error("the Rust target {WASM_TARGET} is not installed")]
    MissingTarget,
    #[error("cargo could not build {crates} for {WASM_TARGET} (compiler output above)")]
    Cargo { crates: String },
    #[error("cargo reported success but {path} does not exist")]
    MissingArtifact { path: PathBuf },
    #[error("{tool} is not installed; it builds {language} policies")]
    MissingToolchain {
        language: &'static str,
        tool: String,
        install: &'static str,
    },
    #[error("the {language} compiler could not build the policy in {dir} (its output is above)")]
    Compiler {
        language: &'static str,
        dir: PathBuf,
    },
    #[error("could not copy the built module: {source}")]
    Copy {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A crate that builds a policy module.
#[derive(Debug, Clone)]
pub struct PolicyCrate {
    pub package: String,
    pub dir: PathBuf,
    manifest: PathBuf,
    workspace_root: PathBuf,
    target_dir: PathBuf,
}

impl PolicyCrate {
    /// Where its compiled module lands.
    pub fn wasm_path(&self) -> PathBuf {
        wasm_build::artifact_path(&self.wasm_target_dir(), &self.package)
    }

    /// Policies get a target directory of their own, next to the workspace's.
    fn wasm_target_dir(&self) -> PathBuf {
        self.target_dir.join("wasm-policies")
    }
}

#[derive(Deserialize)]
struct CargoMetadata {
    packages: Vec<MetaPackage>,
    target_directory: PathBuf,
    workspace_root: PathBuf,
}

#[derive(Deserialize)]
struct MetaPackage {
    name: String,
    manifest_path: PathBuf,
    targets: Vec<MetaTarget>,
}

#[derive(Deserialize)]
struct MetaTarget {
    crate_types: Vec<String>,
}

/// The policy crate at `dir`, or the policy crates in its subdirectories.
pub fn discover(dir: &Path) -> Result<Vec<PolicyCrate>, BuildError> {
    if dir.join("Cargo.toml").is_file() {
        return Ok(vec![describe(&dir.join("Cargo.toml"))?]);
    }
    let mut manifests: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|_| BuildError::NoCrates {
            dir: dir.to_path_buf(),
        })?
        .filter_map(|e| e.ok().map(|e| e.path().join("Cargo.toml")))
        .filter(|m| m.is_file())
        .collect();
    manifests.sort();
    if manifests.is_empty() {
        return Err(BuildError::NoCrates {
            dir: dir.to_path_buf(),
        });
    }
    manifests.iter().map(|m| describe(m)).collect()
}

fn describe(manifest: &Path) -> Result<PolicyCrate, BuildError> {
    let manifest = manifest
        .canonicalize()
        .unwrap_or_else(|_| manifest.to_path_buf());
    let mut cmd = cargo();
    cmd.args([
        "metadata",
        "--no-deps",
        "--format-version",
        "1",
        "--manifest-path",
    ])
    .arg(&manifest);
    let output = run_captured(&mut cmd)?;
    if !output.status.success() {
        return Err(BuildError::Metadata {
            manifest,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    let meta: CargoMetadata =
        serde_json::from_slice(&output.stdout).map_err(|e| BuildError::Metadata {
            manifest: manifest.clone(),
            stderr: e.to_string(),
        })?;
    let package = meta
        .packages
        .into_iter()
        .find(|p| p.manifest_path == manifest)
        .ok_or_else(|| BuildError::NotAPolicy {
            manifest: manifest.clone(),
            reason: "it is a workspace manifest, not a package".into(),
        })?;
    if !package
        .targets
        .iter()
        .any(|t| t.crate_types.iter().any(|c| c == "cdylib"))
    {
        return Err(BuildError::NotAPolicy {
            manifest,
            reason: "its library is not a cdylib (add `crate-type = [\"cdylib\", \"rlib\"]` under [lib])"
                .into(),
        });
    }
    let dir = manifest.parent().unwrap_or(Path::new("."));
    // Shown to people: relative to where they are, when it is below it.
    let dir = std::env::current_dir()
        .ok()
        .and_then(|cwd| dir.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| dir.to_path_buf());
    Ok(PolicyCrate {
        package: package.name,
        dir,
        manifest,
        workspace_root: meta.workspace_root,
        target_dir: meta.target_directory,
    })
}

/// Compiles the crates, one cargo invocation per workspace. Cargo's output
/// goes to our stderr so compile errors reach the author as rustc wrote them.
pub fn build(crates: &[PolicyCrate]) -> Result<Vec<PathBuf>, BuildError> {
    ensure_wasm_target()?;
    let mut by_workspace: BTreeMap<&Path, Vec<&PolicyCrate>> = BTreeMap::new();
    for c in crates {
        by_workspace.entry(&c.workspace_root).or_default().push(c);
    }
    for group in by_workspace.values() {
        let packages: Vec<String> = group.iter().map(|c| c.package.clone()).collect();
        let mut cmd = wasm_build::cargo_build_command(
            &group[0].manifest,
            &packages,
            &group[0].wasm_target_dir(),
        );
        tracing::info!(crates = %packages.join(", "), "building policies");
        let status = cmd
            .stdout(Stdio::null())
            .status()
            .map_err(|e| BuildError::Spawn {
                command: "cargo build".into(),
                reason: e.to_string(),
            })?;
        if !status.success() {
            return Err(BuildError::Cargo {
                crates: packages.join(", "),
            });
        }
    }
    crates
        .iter()
        .map(|c| {
            let path = c.wasm_path();
            if path.is_file() {
                Ok(path)
            } else {
                Err(BuildError::MissingArtifact { path })
            }
        })
        .collect()
}

/// The hint for a missing target, used by the CLI.
pub fn missing_target_hint() -> &'static str {
    MISSING_TARGET_HINT
}

fn ensure_wasm_target() -> Result<(), BuildError> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = run_captured(Command::new(rustc).args(["--print", "sysroot"]))?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    if sysroot.join("lib/rustlib").join(WASM_TARGET).is_dir() {
        Ok(())
    } else {
        Err(BuildError::MissingTarget)
    }
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn run_captured(cmd: &mut Command) -> Result<std::process::Output, BuildError> {
    cmd.output().map_err(|e| BuildError::Spawn {
        command: format!("{:?}", cmd.get_program()),
        reason: e.to_string(),
    })
}
