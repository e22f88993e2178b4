//! Finding the tools a workflow step runs (terraform, helm, the policy
//! engine) as the project configures them.

use super::{Project, Stage, WorkflowError};
use crate::adapters::helm::Helm;
use crate::adapters::terraform::{Terraform, TerraformOptions};
use crate::config::Environment;
use crate::engine::PolicyEngine;

/// The environment's terraform, when it has a `terraform` block.
pub fn terraform_for(
    project: &Project,
    env: &Environment,
) -> Option<Result<Terraform, WorkflowError>> {
    let tf = env.terraform.as_ref()?;
    Some(
        Terraform::new(TerraformOptions {
            binary: tf
                .binary
                .clone()
                .or_else(|| project.config.tools.terraform.clone()),
            dir: project.config.resolve(&tf.dir),
            workspace: tf.workspace.clone(),
            var_files: tf.var_files.clone(),
            vars: tf.vars.clone(),
        })
        .map_err(|e| WorkflowError::tool(Stage::FindTerraform, e)),
    )
}

pub fn helm_for(project: &Project) -> Result<Helm, WorkflowError> {
    Helm::new(project.config.tools.helm.as_deref(), project.dir())
        .map_err(|e| WorkflowError::tool(Stage::FindHelm, e))
}

/// The policy engine with its module cache.
pub fn policy_engine() -> Result<PolicyEngine, WorkflowError> {
    PolicyEngine::with_default_cache().map_err(|e| WorkflowError::tool(Stage::PolicyCache, e))
}
