//! `opsdeploy drift ENV`: has the environment changed outside opsdeploy?
//! Terraform's refresh-only plan says for infrastructure; exit 2 when drifted,
//! like `terraform plan -detailed-exitcode`.

use super::plan::{terraform_for, tool_error};
use super::{Project, WorkflowError};

#[derive(Debug, serde::Serialize)]
pub struct Drift {
    pub environment: String,
    pub drifted: bool,
    /// What drifted, per source (e.g. `terraform: 1 resource changed outside terraform`).
    pub findings: Vec<String>,
    /// What could not be checked and why.
    pub unchecked: Vec<String>,
}

pub fn drift(project: &Project, env_name: &str) -> Result<Drift, WorkflowError> {
    let env = project.config.require_environment(env_name)?;
    let mut findings = Vec::new();
    let mut unchecked = Vec::new();
    match terraform_for(project, env) {
        Some(tf) => {
            let tf = tf?;
            let hint = "fix the terraform configuration or credentials, then run drift again";
            tf.init().map_err(|e| tool_error(e, hint))?;
            let (drifted, output) = tf.drifted().map_err(|e| tool_error(e, hint))?;
            if drifted {
                let changed: Vec<&str> = output
                    .lines()
                    .map(str::trim)
                    .filter(|l| {
                        l.starts_with("# ") && l.contains("has changed")
                            || l.starts_with("# ") && l.contains("has been deleted")
                    })
                    .collect();
                if changed.is_empty() {
                    findings.push(
                        "terraform: the infrastructure differs from terraform's state".into(),
                    );
                }
                for c in changed {
                    findings.push(format!("terraform: {}", c.trim_start_matches("# ")));
                }
            }
        }
        None => unchecked.push("no terraform block: infrastructure not checked".into()),
    }
    if !env.helm.is_empty() {
        unchecked.push("helm releases: compared by `opsdeploy status` after each apply".into());
    }
    Ok(Drift {
        environment: env.name.clone(),
        drifted: !findings.is_empty(),
        findings,
        unchecked,
    })
}
