//! `opsdeploy drift ENV`: has the environment changed outside opsdeploy?
//! Terraform's refresh-only plan says for infrastructure; helm's release
//! history says for releases (the revision opsdeploy's last deployment left
//! must still be the live one). Exit 2 when drifted, like
//! `terraform plan -detailed-exitcode`.

use super::releases::workload_name;
use super::tools::{helm_for, terraform_for};
use super::{Project, Stage, WorkflowError};
use crate::config::Strategy;

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
            let fail = |e| WorkflowError::tool(Stage::TerraformDrift, e);
            tf.init().map_err(fail)?;
            let (drifted, output) = tf.drifted().map_err(fail)?;
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
        match project
            .history()?
            .current(&env.name)
            .and_then(|a| a.deployed())
        {
            None => unchecked.push("helm releases: nothing deployed by opsdeploy yet".into()),
            Some(deployed) => {
                let helm = helm_for(project)?;
                for r in &env.helm {
                    let mut names = vec![r.name.clone()];
                    if env.strategy == Strategy::BlueGreen
                        && let Some(color) = deployed.colors.get(&r.name)
                    {
                        names.push(workload_name(r, color));
                    }
                    for name in names {
                        let Some(&left) = deployed.helm_revisions.get(&name) else {
                            unchecked.push(format!(
                                "helm: the last deployment recorded no revision of {name}"
                            ));
                            continue;
                        };
                        let history = helm
                            .history(&name, &r.namespace)
                            .map_err(|e| WorkflowError::tool(Stage::HelmDrift, e))?;
                        match history.iter().max_by_key(|rev| rev.revision) {
                            None => findings.push(format!(
                                "helm: release {name} is not installed in {} (opsdeploy left revision {left})",
                                r.namespace
                            )),
                            Some(live) if live.revision != left => findings.push(format!(
                                "helm: release {name} is at revision {} ({}, chart {}: {}); opsdeploy left revision {left}",
                                live.revision, live.status, live.chart, live.description
                            )),
                            Some(live) if live.status != "deployed" => findings.push(format!(
                                "helm: release {name} revision {left} is {}",
                                live.status
                            )),
                            Some(_) => {}
                        }
                    }
                }
            }
        }
    }
    Ok(Drift {
        environment: env.name.clone(),
        drifted: !findings.is_empty(),
        findings,
        unchecked,
    })
}
