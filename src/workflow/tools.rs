//! Finding the tools a workflow step runs (terraform, helm) as the project
//! configures them, and the error a tool's failure becomes.

use super::{ErrorClass, Project, WorkflowError};
use crate::adapters::helm::Helm;
use crate::adapters::terraform::{Terraform, TerraformOptions};
use crate::config::Environment;

pub(crate) fn tool_error(what: impl std::fmt::Display, hint: &str) -> WorkflowError {
    WorkflowError::Other {
        what: what.to_string(),
        location: None,
        hint: Some(hint.to_string()),
        class: ErrorClass::Error,
    }
}

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
        .map_err(|e| {
            tool_error(
                e,
                "install terraform, or set its path: terraform { binary = \"...\" }",
            )
        }),
    )
}

pub fn helm_for(project: &Project) -> Result<Helm, WorkflowError> {
    Helm::new(project.config.tools.helm.as_deref(), project.dir())
        .map_err(|e| tool_error(e, "install helm, or set its path: tools { helm = \"...\" }"))
}
