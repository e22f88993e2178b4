//! The terraform configuration a plan was made from, kept in its bundle: a
//! copy of every file of the root module and of the local modules it calls
//! (`terraform/config/PATH`), and `terraform/config.json` saying how to plan
//! it again (directory, workspace, variables) and its fingerprint.
//!
//! Two uses. A failed deploy, or `opsdeploy rollback`, returns the
//! environment to an earlier deployment by planning that deployment's copy
//! against the live state (see `tfreturn`). And promotion compares
//! fingerprints: two environments run "the same terraform configuration" when
//! the files they share (local modules, a root module both use) and the
//! settings of their own root modules are equal once what is
//! environment-specific by design is left out — the environment's own name
//! (written `${environment}`), the variables opsdeploy.hcl sets for it
//! (`vars`, `var_files`), and the names listed in `terraform {
//! environment_vars = [...] }`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Project, WorkflowError};
use crate::config::{Config, Environment, TerraformConfig};
use crate::store::bundle::{Bundle, BundleBuilder, FileEntry, sha256_hex};

/// Where the copy lives inside a bundle.
pub const CONFIG_DIR: &str = "terraform/config";
pub const SNAPSHOT: &str = "terraform/config.json";

/// `terraform/config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The root module, relative to the project.
    pub dir: String,
    #[serde(default)]
    pub workspace: Option<String>,
    /// As configured: relative to `dir`.
    #[serde(default)]
    pub var_files: Vec<String>,
    #[serde(default)]
    pub vars: Vec<(String, String)>,
    /// Every file kept, relative to the project.
    pub files: Vec<FileEntry>,
    pub fingerprint: Fingerprint,
}

/// What makes two environments' configurations the same.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Files the environments share, path → sha256: the local modules, and
    /// the root module's files when another environment uses the same root.
    pub shared: BTreeMap<String, String>,
    /// The root module's own settings (module arguments, sources, versions,
    /// variables, resource arguments), with the environment's name written
    /// `${environment}`; what is environment-specific is left out.
    pub settings: BTreeMap<String, Value>,
    /// Names left out as environment-specific (`engine_version` leaves out
    /// `var.engine_version` and every module's `engine_version` argument).
    pub environment_specific: Vec<String>,
    /// sha256 of `shared` and `settings`.
    pub digest: String,
}

impl Fingerprint {
    fn new(
        shared: BTreeMap<String, String>,
        settings: BTreeMap<String, Value>,
        environment_specific: Vec<String>,
    ) -> Self {
        let digest = sha256_hex(
            serde_json::to_string(&(&shared, &settings))
                .expect("maps of strings and JSON values serialize")
                .as_bytes(),
        );
        Fingerprint {
            shared,
            settings,
            environment_specific,
            digest,
        }
    }

    /// How `self` (what `here` plans) differs from `other` (what `there`
    /// runs), leaving out what either side calls environment-specific.
    pub fn differences(&self, other: &Fingerprint, here: &str, there: &str) -> Vec<String> {
        let skip: BTreeSet<&str> = self
            .environment_specific
            .iter()
            .chain(&other.environment_specific)
            .map(String::as_str)
            .collect();
        let mut out = Vec::new();
        for path in keys(&self.shared, &other.shared) {
            match (self.shared.get(path), other.shared.get(path)) {
                (Some(a), Some(b)) if a == b => {}
                (Some(_), Some(_)) => out.push(format!("{path} differs from what {there} runs")),
                (Some(_), None) => out.push(format!("{path} is not part of what {there} runs")),
                (None, _) => out.push(format!(
                    "{path}, part of what {there} runs, is not used by {here}"
                )),
            }
        }
        for key in keys(&self.settings, &other.settings) {
            if skip.contains(setting_name(key)) {
                continue;
            }
            let shown = |v: Option<&Value>| v.map_or("(not set)".to_string(), Value::to_string);
            let (a, b) = (self.settings.get(key), other.settings.get(key));
            if a != b {
                out.push(format!(
                    "{key} is {} for {here}, {} on {there}",
                    shown(a),
                    shown(b)
                ));
            }
        }
        out
    }
}

fn keys<'a, V>(a: &'a BTreeMap<String, V>, b: &'a BTreeMap<String, V>) -> BTreeSet<&'a str> {
    a.keys().chain(b.keys()).map(String::as_str).collect()
}

/// `module.app.engine_version` → `engine_version`; `var.region` → `region`.
fn setting_name(key: &str) -> &str {
    key.rsplit('.').next().unwrap_or(key)
}

fn error(what: String, path: String) -> WorkflowError {
    WorkflowError::TerraformFiles { what, path }
}

/// Copies the environment's terraform configuration into the bundle being
/// built and records its snapshot; `plan_json` is `terraform show -json` of
/// the plan just made.
pub fn keep(
    project: &Project,
    env: &Environment,
    tf: &TerraformConfig,
    plan_json: &str,
    builder: &mut BundleBuilder,
) -> Result<Snapshot, WorkflowError> {
    let config = &project.config;
    let root = config.resolve(&tf.dir);
    let mut files: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut modules: Vec<PathBuf> = Vec::new();
    collect_module(config, &root, &mut files, &mut modules)?;
    for f in &tf.var_files {
        let path = root.join(f);
        files.insert(rel(config, &path)?, path);
    }
    let root_rel = rel(config, &root)?;
    let shared_root = config
        .environments
        .iter()
        .any(|e| e.name != env.name && e.terraform.as_ref().is_some_and(|t| t.dir == tf.dir));
    // Var files are per environment by design, even inside a shared root.
    let var_files: BTreeSet<String> = config
        .environments
        .iter()
        .filter_map(|e| e.terraform.as_ref())
        .flat_map(|t| t.var_files.iter().map(|f| config.resolve(&t.dir).join(f)))
        .filter_map(|p| rel(config, &p).ok())
        .collect();
    let mut kept = Vec::new();
    let mut shared = BTreeMap::new();
    for (rel_path, path) in &files {
        let bytes = std::fs::read(path).map_err(|e| {
            error(
                format!("could not read terraform file {rel_path}: {e}"),
                rel_path.clone(),
            )
        })?;
        let sha = sha256_hex(&bytes);
        builder.add_file(&format!("{CONFIG_DIR}/{rel_path}"), &bytes)?;
        let in_root = Path::new(rel_path).starts_with(&root_rel);
        if (!in_root || shared_root) && !var_files.contains(rel_path) {
            shared.insert(rel_path.clone(), sha.clone());
        }
        kept.push(FileEntry {
            path: rel_path.clone(),
            sha256: sha,
            bytes: bytes.len() as u64,
            without_generated: false,
        });
    }
    let mut environment_specific: BTreeSet<String> = tf.environment_vars.iter().cloned().collect();
    environment_specific.extend(tf.vars.iter().map(|(k, _)| k.clone()));
    for f in &tf.var_files {
        environment_specific.extend(assigned_names(&root.join(f)));
    }
    let settings = if shared_root {
        // The shared files say it all; variables come from per-environment settings.
        BTreeMap::new()
    } else {
        root_settings(plan_json, &env.name, &environment_specific)
    };
    let snapshot = Snapshot {
        dir: root_rel,
        workspace: tf.workspace.clone(),
        var_files: tf
            .var_files
            .iter()
            .map(|f| f.display().to_string())
            .collect(),
        vars: tf.vars.clone(),
        files: kept,
        fingerprint: Fingerprint::new(shared, settings, environment_specific.into_iter().collect()),
    };
    builder.add_file(
        SNAPSHOT,
        &serde_json::to_vec_pretty(&snapshot).expect("the snapshot serializes"),
    )?;
    Ok(snapshot)
}

/// The snapshot a bundle keeps, when it planned terraform.
pub fn read(bundle: &Bundle) -> Result<Option<Snapshot>, WorkflowError> {
    if !bundle.manifest.files.iter().any(|f| f.path == SNAPSHOT) {
        return Ok(None);
    }
    let bytes = bundle.read(SNAPSHOT)?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| WorkflowError::ReturnImpossible {
            digest: bundle.digest.clone(),
            reason: format!(
                "{SNAPSHOT} of plan bundle {} is not readable: {e}",
                super::short(&bundle.digest)
            ),
        })
}

/// A path of the project, relative to it with `/`; an error when it lies outside.
fn rel(config: &Config, path: &Path) -> Result<String, WorkflowError> {
    let project = config
        .dir
        .canonicalize()
        .unwrap_or_else(|_| config.dir.clone());
    let real = path.canonicalize().map_err(|e| {
        error(
            format!("terraform path {} cannot be read: {e}", path.display()),
            path.display().to_string(),
        )
    })?;
    real.strip_prefix(&project)
        .map(|p| p.to_string_lossy().replace('\\', "/"))
        .map_err(|_| {
            error(
                format!(
                    "terraform path {} lies outside the project, so a plan cannot keep a copy of it to return to",
                    path.display()
                ),
                path.display().to_string(),
            )
        })
}

/// Every file of the module in `dir` (not `.terraform`, state files or
/// hidden entries, but the dependency lock file), then the local modules it
/// calls, each once.
fn collect_module(
    config: &Config,
    dir: &Path,
    files: &mut BTreeMap<String, PathBuf>,
    seen: &mut Vec<PathBuf>,
) -> Result<(), WorkflowError> {
    let real = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    if seen.contains(&real) {
        return Ok(());
    }
    seen.push(real);
    let mut local_modules = Vec::new();
    for path in module_files(dir) {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.ends_with(".tf") && path.parent() == Some(dir) {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            local_modules.extend(local_sources(&text).into_iter().map(|s| dir.join(s)));
        }
        files.insert(rel(config, &path)?, path);
    }
    for m in local_modules {
        collect_module(config, &m, files, seen)?;
    }
    Ok(())
}

fn module_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        let state = name.ends_with(".tfstate")
            || name.ends_with(".tfstate.backup")
            || name == "terraform.tfstate.d";
        if state || (name.starts_with('.') && name != ".terraform.lock.hcl") {
            continue;
        }
        if path.is_dir() {
            out.extend(module_files(&path));
        } else if path.is_file() {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// `source` of every `module` block that names a local path (`./`, `../`).
fn local_sources(text: &str) -> Vec<String> {
    let Ok(body) = hcl::parse(text) else {
        // terraform itself reports the syntax error when it plans.
        return Vec::new();
    };
    body.blocks()
        .filter(|b| b.identifier() == "module")
        .filter_map(|b| {
            b.body().attributes().find_map(|a| match a.expr() {
                hcl::Expression::String(s) if a.key() == "source" => Some(s.clone()),
                _ => None,
            })
        })
        .filter(|s| s.starts_with("./") || s.starts_with("../"))
        .collect()
}

/// Variable names a `.tfvars` file assigns.
fn assigned_names(path: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    if path.extension().is_some_and(|e| e == "json") {
        return serde_json::from_str::<serde_json::Map<String, Value>>(&text)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
    }
    hcl::parse(&text)
        .map(|b| b.attributes().map(|a| a.key().to_string()).collect())
        .unwrap_or_default()
}

/// The root module's settings from the plan's `configuration`: module calls
/// (source, version, arguments), resource arguments and root variables,
/// normalised for the environment's name.
fn root_settings(
    plan_json: &str,
    environment: &str,
    environment_specific: &BTreeSet<String>,
) -> BTreeMap<String, Value> {
    // Only these two keys become values: the rest of the plan (resource
    // changes, planned values, prior state) is skipped, never built.
    #[derive(serde::Deserialize, Default)]
    struct Roots {
        #[serde(default)]
        configuration: Value,
        #[serde(default)]
        variables: Value,
    }
    let plan: Roots = serde_json::from_str(plan_json).unwrap_or_default();
    let root = &plan.configuration["root_module"];
    let mut out = BTreeMap::new();
    let mut put = |key: String, value: &Value| {
        if !environment_specific.contains(setting_name(&key)) {
            out.insert(key, normalised(value, environment));
        }
    };
    if let Some(calls) = root["module_calls"].as_object() {
        for (name, call) in calls {
            for field in ["source", "version"] {
                if !call[field].is_null() {
                    put(format!("module.{name}.{field}"), &call[field]);
                }
            }
            for (arg, expr) in call["expressions"].as_object().into_iter().flatten() {
                put(format!("module.{name}.{arg}"), expr);
            }
        }
    }
    for r in root["resources"].as_array().into_iter().flatten() {
        let address = r["address"].as_str().unwrap_or_default();
        for (arg, expr) in r["expressions"].as_object().into_iter().flatten() {
            put(format!("{address}.{arg}"), expr);
        }
    }
    for (name, v) in plan.variables.as_object().into_iter().flatten() {
        put(format!("var.{name}"), &v["value"]);
    }
    out
}

/// `value` with every occurrence of the environment's name, as a word, in
/// its strings written `${environment}`.
fn normalised(value: &Value, environment: &str) -> Value {
    match value {
        Value::String(s) => Value::String(replace_word(s, environment, "${environment}")),
        Value::Array(a) => Value::Array(a.iter().map(|v| normalised(v, environment)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), normalised(v, environment)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn replace_word(text: &str, word: &str, with: &str) -> String {
    if word.is_empty() {
        return text.to_string();
    }
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(word) {
        let before = rest[..i].chars().next_back();
        let after = rest[i + word.len()..].chars().next();
        out.push_str(&rest[..i]);
        if before.is_some_and(is_word) || after.is_some_and(is_word) {
            out.push_str(word);
        } else {
            out.push_str(with);
        }
        rest = &rest[i + word.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_name_is_normalised_as_a_word_only() {
        assert_eq!(
            replace_word("orders-staging", "staging", "${environment}"),
            "orders-${environment}"
        );
        assert_eq!(replace_word("prod", "prod", "X"), "X");
        assert_eq!(replace_word("product prod", "prod", "X"), "product X");
    }

    #[test]
    fn local_module_sources_are_found_and_registry_ones_are_not() {
        let text = r#"
module "app" {
  source      = "../modules/app"
  environment = "staging"
}
module "vpc" {
  source  = "terraform-aws-modules/vpc/aws"
  version = "5.0.0"
}
"#;
        assert_eq!(local_sources(text), vec!["../modules/app".to_string()]);
    }

    #[test]
    fn settings_that_differ_are_named_and_environment_specific_ones_are_not() {
        let plan = |env: &str, version: u32, size: &str| {
            serde_json::json!({"configuration": {"root_module": {"module_calls": {"app": {
                "source": "../modules/app",
                "expressions": {
                    "environment": {"constant_value": env},
                    "engine_version": {"constant_value": version},
                    "size": {"constant_value": size},
                }
            }}}}})
            .to_string()
        };
        let specific: BTreeSet<String> = ["size".to_string()].into();
        let staging = Fingerprint::new(
            BTreeMap::new(),
            root_settings(&plan("staging", 15, "small"), "staging", &specific),
            specific.iter().cloned().collect(),
        );
        let same = Fingerprint::new(
            BTreeMap::new(),
            root_settings(&plan("production", 15, "large"), "production", &specific),
            specific.iter().cloned().collect(),
        );
        assert_eq!(staging.digest, same.digest);
        let newer = Fingerprint::new(
            BTreeMap::new(),
            root_settings(&plan("production", 16, "large"), "production", &specific),
            Vec::new(),
        );
        assert_eq!(
            newer.differences(&staging, "production", "staging"),
            vec![
                "module.app.engine_version is {\"constant_value\":16} for production, {\"constant_value\":15} on staging"
                    .to_string()
            ]
        );
    }
}
