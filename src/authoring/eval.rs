//! `opsdeploy policy eval`: one policy on one input document, outside any
//! project — a module file, a `.rego` file or `builtin:NAME`, on an input
//! document or on a terraform plan wrapped into one.

use std::path::Path;

use serde_json::value::RawValue;

use super::AuthoringError;
use super::project;
use crate::adapters::terraform::read_plan_file;
use crate::engine::{self, Evaluation, Limits, ModuleSource, PolicyEngine, RegoMode};
use crate::input::{self, InputDocument};
use crate::redact::Redactor;
use crate::report::Report;

/// What the policy reads.
pub enum EvalInput<'a> {
    /// An input document (JSON, schema version 1).
    Document(&'a Path),
    /// A terraform plan JSON (`terraform show -json`), for this environment.
    TerraformPlan {
        plan: &'a Path,
        environment: &'a str,
    },
}

pub struct EvalRequest<'a> {
    /// A `.wasm` module, a `.rego` file, or `builtin:NAME`.
    pub policy: &'a str,
    pub input: EvalInput<'a>,
    /// The policy's settings: JSON text, or `@FILE`.
    pub settings: Option<&'a str>,
    pub limits: Limits,
}

/// The evaluation, its free text scrubbed of the values the plan marks
/// sensitive, and the redactor that did it (a report scrubs with it too).
pub struct Evaluated {
    pub evaluation: Evaluation,
    pub redactor: Redactor,
}

impl Evaluated {
    pub fn report(&self) -> Report {
        Report::from_evaluation(&self.evaluation, &self.redactor)
    }
}

pub fn eval(engine: &PolicyEngine, req: &EvalRequest) -> Result<Evaluated, AuthoringError> {
    let rego_file = req.policy.ends_with(".rego");
    let source = match req.policy.strip_prefix("builtin:") {
        Some(name) => ModuleSource::builtin(name)?,
        // A .rego file runs in the built-in Rego runtime; its refusals name that.
        None if rego_file => engine::rego_runtime_source(),
        None => ModuleSource::read(Path::new(req.policy))?,
    };
    let doc = match req.input {
        EvalInput::Document(path) => {
            InputDocument::from_file(path).map_err(|source| AuthoringError::Input {
                path: path.to_path_buf(),
                source,
            })?
        }
        EvalInput::TerraformPlan { plan, environment } => {
            let plan_json =
                read_plan_file(plan).map_err(|source| AuthoringError::TerraformPlan {
                    path: plan.to_path_buf(),
                    source,
                })?;
            let now = crate::store::now_rfc3339();
            let mut doc =
                InputDocument::new(&input::environment_section(environment, "local", now));
            doc.set_terraform(".", plan_json);
            doc
        }
    };
    let settings = req.settings.map(read_settings).transpose()?;
    let loaded = if rego_file {
        // conftest's convention: the plan itself is `input`.
        let input =
            matches!(req.input, EvalInput::TerraformPlan { .. }).then_some("terraform.plan");
        project::rego_file_source(Path::new(req.policy), input)
            .and_then(|rego| engine.load_rego(&rego, RegoMode::Deny))
    } else {
        engine.load_with(&source, &req.limits)
    };
    let mut evaluation = match loaded {
        Ok(policy) => {
            if let Some(s) = &settings {
                let value: serde_json::Value =
                    serde_json::from_str(s.get()).expect("settings were read as JSON");
                policy.check_settings(&value)?;
            }
            let input = doc.parts(
                policy.reads.as_deref(),
                &policy.plan_view,
                settings.as_deref(),
            );
            engine.evaluate_parts(&policy, &input, &req.limits)
        }
        // A defective module is a denial, like a policy that fails while running.
        Err(e) if e.is_policy_defect() => Evaluation::refused(&source, &e),
        Err(e) => return Err(e.into()),
    };
    // What the policy said, without the values the plan marks sensitive.
    let redactor = doc.redactor();
    evaluation.scrub(&redactor);
    Ok(Evaluated {
        evaluation,
        redactor,
    })
}

/// `--settings`: JSON text, or `@FILE` holding it.
pub fn read_settings(arg: &str) -> Result<Box<RawValue>, AuthoringError> {
    let (text, from) = match arg.strip_prefix('@') {
        Some(path) => (
            std::fs::read_to_string(path).map_err(|source| AuthoringError::SettingsFile {
                path: path.into(),
                source,
            })?,
            path.to_string(),
        ),
        None => (arg.to_string(), "--settings".to_string()),
    };
    serde_json::from_str(&text).map_err(|source| AuthoringError::Settings { from, source })
}
