//! Loading the project's policies and turning evaluations into decisions:
//! what each policy said, its enforcement level, and whether it blocks.

use serde_json::value::RawValue;

use crate::store::records::OverrideRecord;
use std::path::Path;

use super::WorkflowError;
use crate::config::{Config, PolicyConfig, PolicySource, RegoConfig};
use crate::engine::{
    DEFAULT_QUERY, EngineError, Evaluation, Limits, ModuleSource, Policy, PolicyEngine, RegoMode,
    RegoSource,
};
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
    /// The loaded policy's (a Rego policy's covers its files), else the module's.
    pub fn sha256(&self) -> String {
        match (&self.policy, &self.source) {
            (Ok(policy), _) => policy.sha256.clone(),
            (Err(_), Some(source)) => source.sha256.clone(),
            (Err(_), None) => String::new(),
        }
    }

    pub fn origin(&self) -> String {
        match &self.config.source {
            PolicySource::Builtin => format!("builtin:{}", self.config.name),
            PolicySource::File(p) => p.display().to_string(),
            PolicySource::Rego(rego) => rego_origin(rego),
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
        limits_of(&self.config)
    }
}

fn limits_of(pc: &PolicyConfig) -> Limits {
    Limits::default().overridden(pc.fuel, pc.memory, pc.timeout)
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
                PolicySource::Rego(rego) => {
                    let policy = rego_source(&pc.name, dir, rego)
                        .and_then(|source| engine.load_rego(&source, RegoMode::Deny));
                    return (None, policy);
                }
            };
            match source {
                Ok(source) => {
                    let policy = engine.load_with(&source, &limits_of(pc));
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
        out.push(Loaded::new(pc, source, policy));
    }
    Ok(out)
}

/// `rego:` and the configured patterns, as results and the audit log name it.
fn rego_origin(rego: &RegoConfig) -> String {
    format!("rego:{}", rego.files.join(","))
}

/// A configured Rego policy with its files read (relative to `dir`).
pub fn rego_source(name: &str, dir: &Path, rego: &RegoConfig) -> Result<RegoSource, EngineError> {
    let files =
        crate::engine::read_rego_files(dir, &rego.files).map_err(|source| EngineError::Rego {
            policy: name.to_string(),
            source,
        })?;
    Ok(RegoSource {
        name: name.to_string(),
        origin: rego_origin(rego),
        files,
        query: rego
            .query
            .clone()
            .unwrap_or_else(|| DEFAULT_QUERY.to_string()),
        input: rego.input.clone(),
        rego_version: rego.rego_version.clone().unwrap_or_else(|| "auto".into()),
    })
}

impl Loaded {
    fn new(
        pc: &PolicyConfig,
        source: Option<ModuleSource>,
        policy: Result<Policy, EngineError>,
    ) -> Self {
        let settings = pc
            .settings
            .as_ref()
            .map(|s| RawValue::from_string(s.to_string()).expect("serde_json output is JSON"));
        Loaded {
            config: pc.clone(),
            source,
            policy,
            settings,
        }
    }
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
                &policy.plan_view,
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
