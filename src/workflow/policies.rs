//! Loading the project's policies and turning evaluations into decisions:
//! what each policy said, its enforcement level, and whether it blocks.

use serde_json::value::RawValue;

use crate::store::records::OverrideRecord;
use std::path::Path;

use super::WorkflowError;
use crate::config::{Config, PolicyConfig, PolicySource};
use crate::engine::{EngineError, Evaluation, Limits, ModuleSource, Policy, PolicyEngine};
use crate::input::InputDocument;
use crate::store::bundle::{Bundle, PolicyEntry};
use crate::store::results::{self, Decision};

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
        let c = &self.config;
        Limits::default().overridden(c.fuel, c.memory, c.timeout)
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
                    ModuleSource::builtin(&pc.name).map_err(|e| EngineError::InvalidModule {
                        origin: format!("builtin:{}", pc.name),
                        reason: e.to_string(),
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
                .map_err(|source| WorkflowError::InvalidSettings {
                    policy: pc.name.clone(),
                    source,
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
    Ok(results::scrubbed(&decisions, &bundle.redactor()?))
}

fn decide(l: &Loaded, eval: Evaluation, overrides: &[OverrideRecord]) -> Decision {
    Decision::new(&l.config.name, l.config.enforcement, eval, overrides)
}
