//! The project files a plan depends on: recorded (with their sha256) in the
//! bundle so an edit after approval is caught, and the configuration files
//! passed to policies in the `files` section. That is every file the plan
//! reads and every project file a command in opsdeploy.hcl runs or names
//! (smoke test, migration runner, error-rate query, tool paths). None of
//! them is read through a symlink that leaves the project.

use std::path::{Path, PathBuf};

use policy_sdk::input::ProjectFile;

use super::WorkflowError;
use crate::config::{Config, Environment, PolicySource};
use crate::fsutil::{ProjectReadError, read_in_project, resolve_in_project};

/// Rendered from the audit log after every entry: never a source (it changes
/// with every command).
const AUDIT_MARKDOWN: &str = "AUDIT_LOG.md";

/// A project file, its path relative to the project and its content.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub rel: String,
    pub bytes: Vec<u8>,
    /// Kind for the `files` section, when policies should see it.
    pub kind: Option<&'static str>,
    /// opsdeploy writes sections of it (`crate::generated`), which its hash leaves out.
    pub without_generated: bool,
}

impl SourceFile {
    pub fn project_file(&self) -> Option<ProjectFile<'static>> {
        let kind = self.kind?;
        // Lossy: one stray byte must not hide the rest of a file from no-secrets.
        let content = String::from_utf8_lossy(&self.bytes).into_owned();
        Some(ProjectFile {
            path: self.rel.clone().into(),
            kind: kind.into(),
            content: content.into(),
        })
    }
}

fn kind_of(path: &Path) -> Option<&'static str> {
    let name = path.file_name()?.to_string_lossy().to_lowercase();
    if name.ends_with(".tfvars") || name.ends_with(".tfvars.json") {
        Some("tfvars")
    } else if name.ends_with(".tf") || name.ends_with(".tf.json") {
        Some("terraform")
    } else if name.starts_with("docker-compose") || name.starts_with("compose.") {
        Some("compose")
    } else if name == ".env" || name.ends_with(".env") {
        Some("env")
    } else {
        None
    }
}

fn rel(config: &Config, path: &Path) -> String {
    path.strip_prefix(&config.dir)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

/// The refusal of a project file opsdeploy will not read.
fn unreadable(config: &Config, e: ProjectReadError) -> WorkflowError {
    let path = match &e {
        ProjectReadError::Escapes { path, .. }
        | ProjectReadError::NotAFile { path }
        | ProjectReadError::Io { path, .. } => path,
    };
    let shown = rel(config, path);
    WorkflowError::ProjectFile {
        message: e.to_string().replace(&path.display().to_string(), &shown),
        path: shown,
        problem: e,
    }
}

/// Files directly in `dir` (not recursing into `.terraform` or hidden dirs)
/// that `keep` accepts, sorted. A symlink that leaves the project is an error.
fn files_in(
    config: &Config,
    dir: &Path,
    recursive: bool,
    keep: &dyn Fn(&Path) -> bool,
) -> Result<Vec<PathBuf>, WorkflowError> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(out);
    };
    for e in entries.flatten() {
        let path = e.path();
        let hidden = e.file_name().to_string_lossy().starts_with('.');
        if e.file_type().is_ok_and(|t| t.is_symlink()) && (recursive || keep(&path)) {
            resolve_in_project(&config.dir, &path).map_err(|e| unreadable(config, e))?;
        }
        if path.is_dir() {
            if recursive && !hidden {
                out.extend(files_in(config, &path, true, keep)?);
            }
        } else if path.is_file() && keep(&path) {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// Project files a command names: its program and arguments that are paths
/// of files inside the project (`./scripts/smoke.sh`, `bash scripts/rate.sh`);
/// no absolute path outside it, no `..`.
fn named_by(config: &Config, command: &[String]) -> Vec<PathBuf> {
    use std::path::Component;
    command
        .iter()
        .filter(|a| !a.contains("{file}") && !a.starts_with('-'))
        .map(Path::new)
        .filter(|a| {
            a.starts_with(&config.dir)
                || a.components()
                    .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        })
        .map(|a| config.resolve(a))
        .filter(|p| p.is_file())
        .collect()
}

/// Project files the environment's commands run: the smoke test, the
/// error-rate query and the migration runner. Apply runs them, so a script
/// edited after the approval must not run unreviewed.
fn scripts(config: &Config, env: &Environment) -> Vec<PathBuf> {
    let commands = [
        env.smoke_test.as_ref().map(|c| &c.command),
        env.monitor.as_ref().map(|m| &m.error_rate_query),
        env.migrations.as_ref().map(|m| &m.command),
    ];
    commands
        .into_iter()
        .flatten()
        .flat_map(|c| named_by(config, c))
        .collect()
}

/// Every project file the environment's plan and apply depend on.
pub fn collect(config: &Config, env: &Environment) -> Result<Vec<SourceFile>, WorkflowError> {
    let mut paths: Vec<(PathBuf, Option<&'static str>)> = Vec::new();
    let mut add = |p: PathBuf, kind: Option<&'static str>| {
        if !paths.iter().any(|(q, _)| *q == p) {
            paths.push((p, kind));
        }
    };
    // The configuration and every project script its commands run ship with
    // the deployment: no-secrets reads them too.
    add(
        config.dir.join(crate::config::CONFIG_FILE),
        Some("opsdeploy"),
    );
    for p in scripts(config, env) {
        add(p, Some("script"));
    }
    if let Some(tf) = &env.terraform {
        let dir = config.resolve(&tf.dir);
        for p in files_in(config, &dir, false, &|p| {
            kind_of(p).is_some() || p.ends_with(".terraform.lock.hcl")
        })? {
            let kind = kind_of(&p);
            add(p, kind);
        }
        for f in &tf.var_files {
            // Var files are relative to the terraform directory, as terraform reads them.
            add(dir.join(f), Some("tfvars"));
        }
    }
    for release in &env.helm {
        for v in &release.values {
            add(config.resolve(v), Some("helm-values"));
        }
        let chart = config.resolve(Path::new(&release.chart));
        if chart.is_dir() {
            for p in files_in(config, &chart, true, &|_| true)? {
                add(p, None);
            }
        }
    }
    if let Some(m) = &env.migrations {
        for p in files_in(config, &config.resolve(&m.dir), false, &|p| {
            p.extension().is_some_and(|e| e == "sql")
        })? {
            add(p, None);
        }
    }
    if let Some(allowlist) = env.scan.as_ref().and_then(|s| s.allowlist.as_ref()) {
        add(config.resolve(allowlist), None);
    }
    if let Some(rb) = &env.rollback {
        add(config.resolve(&rb.runbook), None);
    }
    // Who may approve is part of what is approved.
    if let Some(signers) = &env.approval.signers {
        add(config.resolve(signers), None);
    }
    for f in [
        &config.files.state_file,
        &config.files.security_checklist,
        &config.files.continuity_file,
    ] {
        add(config.resolve(f), None);
    }
    for p in config.policies_for(&env.name) {
        match &p.source {
            PolicySource::File(f) => add(config.resolve(f), None),
            // Every .rego file a pattern names is part of the plan; one that
            // cannot be read fails the policy's load, which denies.
            PolicySource::Rego(rego) => {
                for pattern in &rego.files {
                    for f in crate::engine::expand_rego(&config.dir, pattern).unwrap_or_default() {
                        add(f, None);
                    }
                }
            }
            PolicySource::Builtin => {}
        }
    }
    let t = &config.tools;
    let tools = [&t.terraform, &t.helm, &t.trivy];
    let binary = env.terraform.as_ref().and_then(|t| t.binary.as_ref());
    for tool in tools.into_iter().flatten().chain(binary) {
        for p in named_by(config, &[tool.display().to_string()]) {
            add(p, None);
        }
    }
    // Compose files and `.env` at the project root ship with the deployment too.
    for p in files_in(config, &config.dir, false, &|p| {
        matches!(kind_of(p), Some("compose" | "env"))
    })? {
        let kind = kind_of(&p);
        add(p, kind);
    }
    let generated =
        [&config.files.state_file, &config.files.continuity_file].map(|f| config.resolve(f));
    let mut out = Vec::new();
    for (p, kind) in paths {
        if p == config.dir.join(AUDIT_MARKDOWN) {
            continue;
        }
        let Some(bytes) = read_in_project(&config.dir, &p).map_err(|e| unreadable(config, e))?
        else {
            continue;
        };
        out.push(SourceFile {
            rel: rel(config, &p),
            bytes,
            kind,
            without_generated: generated.contains(&p),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_and_the_scripts_its_commands_run_go_to_policies() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = &tmp.path().join("shop");
        std::fs::create_dir_all(dir.join("scripts")).unwrap();
        std::fs::write(tmp.path().join("outside.sh"), "#!/bin/sh\n").unwrap();
        std::fs::write(dir.join("scripts/smoke.sh"), "#!/bin/sh\n").unwrap();
        std::fs::write(dir.join("scripts/rate.sh"), "#!/bin/sh\n").unwrap();
        std::fs::write(dir.join("scripts/unused.sh"), "#!/bin/sh\n").unwrap();
        std::fs::write(
            dir.join(crate::config::CONFIG_FILE),
            r#"project = "shop"
environment "staging" {
  smoke_test { command = ["./scripts/smoke.sh", "staging"] }
  monitor {
    window           = "1m"
    error_rate_query = ["sh", "scripts/rate.sh", "/etc/passwd", "scripts/../../outside.sh"]
    max_error_rate   = 0.1
  }
}
"#,
        )
        .unwrap();
        let config = Config::load(dir).unwrap();
        let env = config.environment("staging").unwrap();
        let kinds: Vec<(String, Option<&str>)> = collect(&config, env)
            .unwrap()
            .into_iter()
            .map(|f| (f.rel, f.kind))
            .collect();
        assert!(
            kinds.contains(&("opsdeploy.hcl".into(), Some("opsdeploy"))),
            "{kinds:?}"
        );
        assert!(
            kinds.contains(&("scripts/smoke.sh".into(), Some("script"))),
            "{kinds:?}"
        );
        assert!(
            kinds.contains(&("scripts/rate.sh".into(), Some("script"))),
            "{kinds:?}"
        );
        // Neither a script no command runs, nor a file outside the project.
        assert!(
            !kinds.iter().any(|(p, _)| p.ends_with("unused.sh")
                || p.contains("passwd")
                || p.contains("outside")),
            "{kinds:?}"
        );
    }
}
