//! Policy projects in any language: a directory holding one policy, its
//! language told by its files, built to a module (or, for Rego, read), with its
//! fixtures under `fixtures/`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::build::{self, BuildError};
use super::toolchain;
use crate::engine::{
    DEFAULT_QUERY, EngineError, Limits, ModuleSource, Policy, PolicyEngine, RegoMode, RegoSource,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Rust,
    C,
    Zig,
    AssemblyScript,
    Rego,
}

impl Language {
    pub const NAMES: [&str; 5] = ["rust", "c", "zig", "assemblyscript", "rego"];

    pub fn as_str(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::C => "c",
            Language::Zig => "zig",
            Language::AssemblyScript => "assemblyscript",
            Language::Rego => "rego",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "rust" => Some(Language::Rust),
            "c" => Some(Language::C),
            "zig" => Some(Language::Zig),
            "assemblyscript" => Some(Language::AssemblyScript),
            "rego" => Some(Language::Rego),
            _ => None,
        }
    }

    /// The language of the policy in `dir`, by its files.
    pub fn detect(dir: &Path) -> Option<Self> {
        let has = |name: &str| dir.join(name).is_file();
        if has("Cargo.toml") {
            Some(Language::Rust)
        } else if has("policy.zig") {
            Some(Language::Zig)
        } else if has("policy.ts") {
            Some(Language::AssemblyScript)
        } else if has("policy.c") {
            Some(Language::C)
        } else if std::fs::read_dir(dir)
            .ok()?
            .flatten()
            .any(|e| e.path().extension().is_some_and(|x| x == "rego"))
        {
            Some(Language::Rego)
        } else {
            None
        }
    }
}

/// One policy directory.
#[derive(Debug, Clone)]
pub struct Project {
    pub language: Language,
    pub dir: PathBuf,
    /// The directory's name.
    pub name: String,
}

impl Project {
    /// Where a compiled (non-Rust) policy lands.
    pub fn wasm_path(&self) -> PathBuf {
        self.dir
            .join("build")
            .join(format!("{}.wasm", self.name.replace('-', "_")))
    }

    pub fn fixtures(&self) -> PathBuf {
        self.dir.join("fixtures")
    }
}

/// The policy in `dir`, or the policies in its subdirectories.
pub fn discover(dir: &Path) -> Result<Vec<Project>, BuildError> {
    let project = |dir: &Path| {
        Language::detect(dir).map(|language| Project {
            language,
            name: dir
                .canonicalize()
                .ok()
                .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "policy".into()),
            dir: dir.to_path_buf(),
        })
    };
    if let Some(p) = project(dir) {
        return Ok(vec![p]);
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|_| BuildError::NoCrates {
            dir: dir.to_path_buf(),
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let found: Vec<Project> = dirs.iter().filter_map(|d| project(d)).collect();
    if found.is_empty() {
        return Err(BuildError::NoCrates {
            dir: dir.to_path_buf(),
        });
    }
    Ok(found)
}

/// What building a project produced.
#[derive(Debug, Clone)]
pub enum Artifact {
    /// A compiled module, with its policy's name: a Rust crate's package
    /// name, else its directory's.
    Module { policy: String, path: PathBuf },
    /// Rego is not compiled: the built-in runtime evaluates its files.
    Rego(RegoSource),
}

/// Builds every project; Rust crates in one cargo run per workspace.
pub fn build_all(projects: &[Project]) -> Result<Vec<Artifact>, BuildError> {
    let crates: Vec<build::PolicyCrate> = projects
        .iter()
        .filter(|p| p.language == Language::Rust)
        .map(|p| build::discover(&p.dir).map(|mut c| c.remove(0)))
        .collect::<Result<_, _>>()?;
    let modules = if crates.is_empty() {
        Vec::new()
    } else {
        build::build(&crates)?
    };
    let mut rust = crates.into_iter().zip(modules);
    projects
        .iter()
        .map(|p| match p.language {
            Language::Rust => {
                let (krate, path) = rust.next().expect("one module per crate");
                Ok(Artifact::Module {
                    policy: krate.package,
                    path,
                })
            }
            Language::Rego => rego_source(p).map(Artifact::Rego),
            lang => {
                let out = p.wasm_path();
                toolchain::build(lang, &p.dir, &out)?;
                Ok(Artifact::Module {
                    policy: p.name.clone(),
                    path: out,
                })
            }
        })
        .collect()
}

/// A built policy; also `policy build --format json`.
#[derive(Debug, Serialize)]
pub struct Built {
    pub policy: String,
    /// The module; for Rego, which is not compiled, the policy's directory.
    pub wasm: PathBuf,
}

/// `policy build`: builds the policies under `dir`; with `out`, copies each
/// module there.
pub fn build_into(dir: &Path, out: Option<&Path>) -> Result<Vec<Built>, BuildError> {
    let projects = discover(dir)?;
    let artifacts = build_all(&projects)?;
    projects
        .iter()
        .zip(artifacts)
        .map(|(p, artifact)| match artifact {
            Artifact::Rego(source) => Ok(Built {
                policy: source.name,
                wasm: p.dir.clone(),
            }),
            Artifact::Module { policy, path } => Ok(Built {
                wasm: match out {
                    Some(out) => copy_into(&path, out)?,
                    None => path,
                },
                policy,
            }),
        })
        .collect()
}

/// `out/NAME.wasm`, a copy of the module.
fn copy_into(wasm: &Path, out: &Path) -> Result<PathBuf, BuildError> {
    let dest = out.join(wasm.file_name().unwrap_or(wasm.as_os_str()));
    std::fs::create_dir_all(out)
        .and_then(|()| std::fs::copy(wasm, &dest).map(|_| ()))
        .map_err(|source| BuildError::Copy {
            path: dest.clone(),
            source,
        })?;
    Ok(dest)
}

/// A Rego directory's settings (`rego.json`), all optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegoSettings {
    #[serde(default)]
    query: Option<String>,
    #[serde(default)]
    input: Option<String>,
    #[serde(default)]
    rego_version: Option<String>,
}

pub const REGO_SETTINGS_FILE: &str = "rego.json";

/// The Rego policy in a directory: its `.rego` files and `rego.json`.
pub fn rego_source(p: &Project) -> Result<RegoSource, BuildError> {
    let invalid = |path: PathBuf, reason: String| BuildError::NotAPolicy {
        manifest: path,
        reason,
    };
    let settings_path = p.dir.join(REGO_SETTINGS_FILE);
    let settings: RegoSettings = match std::fs::read(&settings_path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| invalid(settings_path.clone(), e.to_string()))?,
        Err(_) => RegoSettings::default(),
    };
    let files = crate::engine::read_rego_files(&p.dir, &[".".to_string()])
        .map_err(|e| invalid(p.dir.clone(), e.to_string()))?;
    Ok(RegoSource {
        name: p.name.clone(),
        origin: format!("rego:{}", p.dir.display()),
        files,
        query: settings.query.unwrap_or_else(|| DEFAULT_QUERY.to_string()),
        input: settings.input,
        rego_version: settings.rego_version.unwrap_or_else(|| "auto".into()),
    })
}

/// One `.rego` file as a policy named after it, conftest's conventions.
pub fn rego_file_source(path: &Path, input: Option<&str>) -> Result<RegoSource, EngineError> {
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().replace('_', "-"))
        .unwrap_or_else(|| "rego".into());
    let dir = path.parent().unwrap_or(Path::new("."));
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let files =
        crate::engine::read_rego_files(dir, &[file]).map_err(|source| EngineError::Rego {
            policy: name.clone(),
            source,
        })?;
    Ok(RegoSource {
        origin: path.display().to_string(),
        name,
        files,
        query: DEFAULT_QUERY.to_string(),
        input: input.map(str::to_string),
        rego_version: "auto".into(),
    })
}

/// Loads what a project built, for its fixtures; plus, for Rego with
/// `*_test.rego` files, the policy that runs those tests.
pub fn load(
    engine: &PolicyEngine,
    built: &Artifact,
    limits: &Limits,
) -> Result<(Policy, Option<Policy>), EngineError> {
    match built {
        Artifact::Module { path, .. } => {
            Ok((engine.load_with(&ModuleSource::read(path)?, limits)?, None))
        }
        Artifact::Rego(source) => {
            let policy = engine.load_rego(source, RegoMode::Deny)?;
            let tests = source
                .files
                .iter()
                .any(|f| f.path.ends_with("_test.rego"))
                .then(|| engine.load_rego(source, RegoMode::Test))
                .transpose()?;
            Ok((policy, tests))
        }
    }
}
