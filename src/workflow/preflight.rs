//! What apply will need, checked before anything runs: every command the
//! configuration names (migration runner, smoke test, monitor query) can be
//! started, and the project files they name exist. A missing one is a
//! configuration error naming its block (exit 1) at plan, instead of a
//! deploy that fails half-way. What is allowed but unwise is a warning.

use std::path::Path;

use super::{Project, WorkflowError};
use crate::config::Environment;

/// Something the configuration lacks, shown with the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub what: String,
    pub location: String,
    pub hint: String,
}

/// Checks the environment's commands; returns the warnings.
pub fn check(project: &Project, env: &Environment) -> Result<Vec<Warning>, WorkflowError> {
    let block = |name: &str| {
        format!(
            "opsdeploy.hcl, {name} block of environment \"{}\"",
            env.name
        )
    };
    if let Some(m) = &env.migrations {
        command(project.dir(), &m.command, &block("migrations"))?;
    }
    if let Some(s) = &env.smoke_test {
        command(project.dir(), &s.command, &block("smoke_test"))?;
    }
    if let Some(m) = &env.monitor {
        command(project.dir(), &m.error_rate_query, &block("monitor"))?;
    }
    let mut warnings = Vec::new();
    let production_like = env.name == "production" || env.promote_from.is_some();
    if production_like && env.monitor.is_none() {
        warnings.push(Warning {
            what: format!(
                "\"{}\" has no monitor block: nobody watches its error rate after a deploy, and a degradation is not rolled back",
                env.name
            ),
            location: format!("opsdeploy.hcl, environment \"{}\"", env.name),
            hint: "add `monitor { error_rate_query = [...] }` (a 15-minute window by default)"
                .into(),
        });
    }
    let promoted_from = project
        .config
        .environments
        .iter()
        .any(|e| e.promote_from.as_deref() == Some(env.name.as_str()));
    if promoted_from && env.health.is_none() {
        warnings.push(Warning {
            what: format!(
                "\"{}\" has no health check: its deployments are recorded as unverified, and promoting from it is refused unless the target allows it",
                env.name
            ),
            location: format!("opsdeploy.hcl, environment \"{}\"", env.name),
            hint: "add `health { url = \"https://.../healthz\" }`".into(),
        });
    }
    Ok(warnings)
}

/// The program of `argv` can be started (a project file, or a program on
/// PATH), and every argument naming a project file exists.
fn command(dir: &Path, argv: &[String], block: &str) -> Result<(), WorkflowError> {
    let Some((program, args)) = argv.split_first() else {
        return Ok(());
    };
    let missing = |file: Option<&String>| WorkflowError::CommandMissing {
        block: block.to_string(),
        program: program.clone(),
        file: file.cloned(),
    };
    if program.contains('/') {
        if !dir.join(program).is_file() {
            return Err(missing(None));
        }
    } else if which::which(program).is_err() {
        return Err(missing(None));
    }
    if let Some(arg) = args
        .iter()
        .filter(|a| names_a_file(a))
        .find(|a| !dir.join(a).exists())
    {
        return Err(missing(Some(arg)));
    }
    Ok(())
}

/// An argument that reads as a project path (`scripts/smoke.sh`), not an
/// option, a URL, a placeholder or a value.
fn names_a_file(arg: &str) -> bool {
    arg.contains('/')
        && !arg.starts_with('-')
        && !arg.contains("://")
        && !arg.contains('{')
        && !arg.contains('=')
        && !arg.contains(' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_that_name_project_files_are_told_apart_from_values() {
        for file in ["scripts/smoke.sh", "./run.py", "db/x.sql"] {
            assert!(names_a_file(file), "{file}");
        }
        for value in [
            "staging",
            "-fsS",
            "http://127.0.0.1:8080/healthz",
            "{file}",
            "ON_ERROR_STOP=1",
            "echo a/b",
        ] {
            assert!(!names_a_file(value), "{value}");
        }
    }

    #[test]
    fn a_missing_program_or_script_names_the_block() {
        let dir = tempfile::tempdir().unwrap();
        let block = "opsdeploy.hcl, smoke_test block of environment \"staging\"";
        let err =
            command(dir.path(), &["sh".into(), "scripts/smoke.sh".into()], block).unwrap_err();
        assert!(
            err.to_string()
                .contains("`scripts/smoke.sh`, which `sh` is given, does not exist"),
            "{err}"
        );
        assert!(
            matches!(&err, WorkflowError::CommandMissing { block: b, .. } if b == block),
            "{err:?}"
        );
        let err = command(dir.path(), &["no-such-program-opsdeploy".into()], block).unwrap_err();
        assert!(err.to_string().contains("is not installed"), "{err}");
        std::fs::create_dir(dir.path().join("scripts")).unwrap();
        std::fs::write(dir.path().join("scripts/smoke.sh"), "exit 0").unwrap();
        command(dir.path(), &["sh".into(), "scripts/smoke.sh".into()], block).unwrap();
    }
}
