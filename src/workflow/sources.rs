//! The project files a plan depends on: recorded (with their sha256) in the
//! bundle so an edit after approval is caught, and the configuration files
//! passed to policies in the `files` section.

use std::path::{Path, PathBuf};

use policy_sdk::input::ProjectFile;

use crate::config::{Config, Environment, PolicySource};

/// A project file, its path relative to the project and its content.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub rel: String,
    pub bytes: Vec<u8>,
    /// Kind for the `files` section, when policies should see it.
    pub kind: Option<&'static str>,
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

/// Files directly in `dir` (not recursing into `.terraform` or hidden dirs)
/// that `keep` accepts, sorted.
fn files_in(dir: &Path, recursive: bool, keep: &dyn Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let path = e.path();
        let hidden = e.file_name().to_string_lossy().starts_with('.');
        if path.is_dir() {
            if recursive && !hidden {
                out.extend(files_in(&path, true, keep));
            }
        } else if path.is_file() && keep(&path) {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// Project files the environment's commands run: any argument of a
/// smoke test, error-rate query or migration command that names a file in
/// the project (`./scripts/smoke.sh`, `bash scripts/rate.sh`).
fn scripts(config: &Config, env: &Environment) -> Vec<PathBuf> {
    let commands = [
        env.smoke_test.as_ref().map(|c| &c.command),
        env.monitor.as_ref().map(|m| &m.error_rate_query),
        env.migrations.as_ref().and_then(|m| m.command.as_ref()),
    ];
    let mut out = Vec::new();
    for arg in commands.into_iter().flatten().flatten() {
        let rel = Path::new(arg);
        // Only files inside the project: no absolute path, no `..`.
        let inside = rel.components().all(|c| {
            matches!(
                c,
                std::path::Component::Normal(_) | std::path::Component::CurDir
            )
        });
        let path = config.resolve(rel);
        if inside && path.is_file() && !out.contains(&path) {
            out.push(path);
        }
    }
    out
}

/// Every project file the environment's plan depends on.
pub fn collect(config: &Config, env: &Environment) -> Vec<SourceFile> {
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
        for p in files_in(&dir, false, &|p| {
            kind_of(p).is_some() || p.ends_with(".terraform.lock.hcl")
        }) {
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
            for p in files_in(&chart, true, &|_| true) {
                add(p, None);
            }
        }
    }
    if let Some(m) = &env.migrations {
        for p in files_in(&config.resolve(&m.dir), false, &|p| {
            p.extension().is_some_and(|e| e == "sql")
        }) {
            add(p, None);
        }
    }
    if let Some(allowlist) = env.scan.as_ref().and_then(|s| s.allowlist.as_ref()) {
        add(config.resolve(allowlist), None);
    }
    if let Some(rb) = &env.rollback {
        add(config.resolve(&rb.runbook), None);
    }
    for f in [&config.files.state_file, &config.files.security_checklist] {
        add(config.resolve(f), None);
    }
    for p in config.policies_for(&env.name) {
        if let PolicySource::File(f) = &p.source {
            add(config.resolve(f), None);
        }
    }
    // Compose files and `.env` at the project root ship with the deployment too.
    for p in files_in(&config.dir, false, &|p| {
        matches!(kind_of(p), Some("compose" | "env"))
    }) {
        let kind = kind_of(&p);
        add(p, kind);
    }
    paths
        .into_iter()
        .filter_map(|(p, kind)| {
            let bytes = std::fs::read(&p).ok()?;
            Some(SourceFile {
                rel: rel(config, &p),
                bytes,
                kind,
            })
        })
        .collect()
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
