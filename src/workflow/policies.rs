//! Loading the project's policies and turning evaluations into decisions:
//! what each policy said, its enforcement level, and whether it blocks.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::history::OverrideRecord;
use std::path::Path;

use super::{ErrorClass, WorkflowError};
use crate::config::{Config, Enforcement, PolicyConfig, PolicySource};
use crate::engine::{EngineError, Evaluation, Limits, ModuleSource, Policy, PolicyEngine};
use crate::input::InputDocument;
use crate::report::bundle::ReportError;
use crate::store::bundle::{Bundle, PolicyEntry};

/// A configured policy, loaded (or refused, which is a denial when evaluated).
pub struct Loaded {
    pub config: PolicyConfig,
    pub source: Option<ModuleSource>,
    pub policy: Result<Policy, EngineError>,
    settings: Option<Box<RawValue>>,
}

impl Loaded {
    pub fn sha256(&self) -> String {
        self.source
            .as_ref()
            .map(|s| s.sha256.clone())
            .unwrap_or_default()
    }

    pub fn origin(&self) -> String {
        match &self.config.source {
            PolicySource::Builtin => format!("builtin:{}", self.config.name),
            PolicySource::File(p) => p.display().to_string(),
        }
    }

    pub fn manifest_entry(&self) -> PolicyEntry {
        PolicyEntry {
            name: self.config.name.clone(),
            origin: self.origin(),
            sha256: self.sha256(),
            enforcement: self.config.enforcement,
            settings: self.config.settings.clone(),
        }
    }

    fn limits(&self) -> Limits {
        let d = Limits::default();
        Limits {
            fuel: self.config.fuel.unwrap_or(d.fuel),
            memory_bytes: self.config.memory.unwrap_or(d.memory_bytes),
            timeout: self.config.timeout.unwrap_or(d.timeout),
            output_bytes: d.output_bytes,
        }
    }
}

/// Loads every policy that applies to the environment.
pub fn load(
    config: &Config,
    engine: &PolicyEngine,
    environment: &str,
) -> Result<Vec<Loaded>, WorkflowError> {
    let configs: Vec<PolicyConfig> = config.policies_for(environment).cloned().collect();
    load_configs(&configs, &config.dir, engine)
}

/// Loads policies as configured (file sources relative to `dir`). Settings
/// that do not match a policy's schema are a configuration error; a module
/// that cannot be used is kept as a refusal, so evaluating it denies (fail
/// closed).
pub fn load_configs(
    configs: &[PolicyConfig],
    dir: &Path,
    engine: &PolicyEngine,
) -> Result<Vec<Loaded>, WorkflowError> {
    use rayon::prelude::*;
    // Compiling (a cache miss) takes a second or more per module: all at once.
    let loaded: Vec<_> = configs
        .par_iter()
        .map(|pc| {
            let source = match &pc.source {
                PolicySource::Builtin => {
                    ModuleSource::builtin(&pc.name).ok_or_else(|| EngineError::InvalidModule {
                        origin: format!("builtin:{}", pc.name),
                        reason: "no such built-in policy".into(),
                    })
                }
                PolicySource::File(path) => ModuleSource::read(&dir.join(path)),
            };
            match source {
                Ok(source) => {
                    let policy = engine.load(&source);
                    (Some(source), policy)
                }
                Err(e) => (None, Err(e)),
            }
        })
        .collect();
    let mut out = Vec::new();
    for (pc, (source, policy)) in configs.iter().zip(loaded) {
        if let (Ok(policy), Some(settings)) = (&policy, &pc.settings) {
            policy
                .check_settings(settings)
                .map_err(|e| WorkflowError::Other {
                    what: e.to_string(),
                    location: Some(format!("opsdeploy.hcl, policy \"{}\"", pc.name)),
                    hint: Some("fix `settings` to match what the policy accepts".into()),
                    class: ErrorClass::Error,
                })?;
        }
        let settings = pc
            .settings
            .as_ref()
            .map(|s| RawValue::from_string(s.to_string()).expect("serde_json output is JSON"));
        out.push(Loaded {
            config: pc.clone(),
            source,
            policy,
            settings,
        });
    }
    Ok(out)
}

/// One policy's verdict on one plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Decision {
    pub policy: String,
    pub enforcement: Enforcement,
    pub sha256: String,
    /// A deny violation, or the policy failed (fail closed).
    pub denied: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overridden_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_reason: Option<String>,
    /// Denied and mandatory and not overridden: the deploy may not go ahead.
    pub blocks: bool,
    pub evaluation: serde_json::Value,
    pub violations: Vec<policy_sdk::Violation>,
}

/// Evaluates every loaded policy (in parallel) on the document.
pub fn evaluate(
    engine: &PolicyEngine,
    loaded: &[Loaded],
    doc: &InputDocument,
    overrides: &[OverrideRecord],
) -> Vec<Decision> {
    let mut evaluations: Vec<Option<Evaluation>> = vec![None; loaded.len()];
    type Job<'a> = (&'a Policy, Vec<&'a [u8]>, Limits);
    let (indexes, batch): (Vec<usize>, Vec<Job>) = loaded
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let policy = l.policy.as_ref().ok()?;
            let input = doc.parts(
                policy.reads.as_deref(),
                policy.plan_keys.as_deref(),
                l.settings.as_deref(),
            );
            Some((i, (policy, input, l.limits())))
        })
        .unzip();
    for (i, eval) in indexes.into_iter().zip(engine.evaluate_all(&batch)) {
        evaluations[i] = Some(eval);
    }
    loaded
        .iter()
        .zip(evaluations)
        .map(|(l, eval)| {
            let eval = eval.unwrap_or_else(|| match (&l.source, &l.policy) {
                (Some(source), Err(e)) => Evaluation::refused(source, e),
                (None, Err(e)) => Evaluation::refused(
                    &ModuleSource::from_bytes(&l.origin(), &l.config.name, Vec::new().into()),
                    e,
                ),
                (_, Ok(_)) => unreachable!("loaded policies were evaluated"),
            });
            decide(l, eval, overrides)
        })
        .collect()
}

/// The decisions without the values the bundle's terraform plan marks
/// sensitive: a careless policy may quote one in a message, and results are
/// stored in the bundle, printed and summarised in the audit log.
pub fn scrubbed(bundle: &Bundle, decisions: Vec<Decision>) -> Result<Vec<Decision>, WorkflowError> {
    let redactor = crate::report::bundle::redactor_for(bundle).map_err(|e| match e {
        ReportError::Bundle(b) => WorkflowError::Bundle(b),
        e @ ReportError::Unreadable { .. } => WorkflowError::Other {
            what: e.to_string(),
            location: Some(format!(
                ".opsdeploy/bundles/{}",
                super::short(&bundle.digest)
            )),
            hint: Some("plan again; the bundle's files were changed or lost".into()),
            class: ErrorClass::Error,
        },
    })?;
    Ok(redactor.scrub_decisions(&decisions))
}

fn decide(l: &Loaded, eval: Evaluation, overrides: &[OverrideRecord]) -> Decision {
    let denied = eval.denies();
    let ov = overrides.iter().find(|o| o.policy == l.config.name);
    let blocks = denied
        && match l.config.enforcement {
            Enforcement::Advisory => false,
            Enforcement::SoftMandatory => ov.is_none(),
            Enforcement::HardMandatory => true,
        };
    Decision {
        policy: l.config.name.clone(),
        enforcement: l.config.enforcement,
        sha256: eval.sha256.clone(),
        denied,
        overridden_by: ov
            .filter(|_| l.config.enforcement == Enforcement::SoftMandatory)
            .map(|o| o.approver.clone()),
        override_reason: ov
            .filter(|_| l.config.enforcement == Enforcement::SoftMandatory)
            .map(|o| o.reason.clone()),
        blocks,
        violations: eval.violations(),
        evaluation: serde_json::to_value(&eval).expect("evaluation serializes"),
    }
}

/// `results.json` of a bundle.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    pub digest: String,
    pub evaluated_at: String,
    pub decisions: Vec<Decision>,
}

impl Results {
    pub fn blocking(&self) -> Vec<&Decision> {
        self.decisions.iter().filter(|d| d.blocks).collect()
    }
}
