//! `opsdeploy policy replay`: what a policy (or the project's whole current
//! configuration) would have said about every plan bundle the store keeps,
//! judged on each bundle's own stored input document and set against the
//! verdict the bundle got when it was planned.
//!
//! Read-only: bundles are listed and read through the store (files or
//! PostgreSQL alike, never copied out) and the audit log is read; nothing is
//! written to either. Policies are loaded (compiled) once, then evaluated on
//! the bundles in parallel.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use policy_sdk::input::SCHEMA_VERSION;
use rayon::prelude::*;

use super::policies::{self, Loaded};
use super::{Project, WorkflowError};
use crate::builtins::UnknownBuiltin;
use crate::config::{Config, Enforcement, PolicyConfig, PolicySource};
use crate::engine::{EngineError, PolicyEngine};
use crate::input::InputDocument;
use crate::report::model::with_overrides;
pub use crate::report::replay::{
    Applied, BundleReplay, Change, Mode, Replay, ReplayedPolicy, Selection, Skipped, Summary,
    Verdict,
};
use crate::store::bundle::{MANIFEST, Manifest, RESULTS, sha256_hex};
use crate::store::records::ApplyStatus;
use crate::store::results::{Decision, Results};
use crate::store::{EntryData, Store, StoreError, short};

const INPUT: &str = "input.json";

/// Why a replay could not start.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    UnknownBuiltin(#[from] UnknownBuiltin),
    /// `--settings` the policy does not accept.
    #[error("{source}")]
    Settings {
        policy: String,
        #[source]
        source: EngineError,
    },
    /// The policy argument is not a module opsdeploy can run.
    #[error("{source}")]
    NotAPolicy {
        arg: String,
        #[source]
        source: EngineError,
    },
    /// `--since` is neither a date nor a duration.
    #[error(
        "`{text}` is neither a date (2026-11-24), a UTC time (2026-11-24T20:15:03Z) nor a duration (7d, 12h)"
    )]
    Since { text: String },
}

/// What to replay.
#[derive(Debug, Clone)]
pub enum Subject {
    /// One policy: a `.wasm` file, a `.rego` file or `builtin:NAME`. It is judged as
    /// hard-mandatory (a denial blocks), whatever it is configured as now: a
    /// replay asks what it would block if enforced.
    Policy {
        policy: String,
        /// `--settings`; without them, the settings opsdeploy.hcl gives the
        /// same policy, else the policy's defaults.
        settings: Option<serde_json::Value>,
    },
    /// Every policy of the current opsdeploy.hcl, as configured for each
    /// bundle's environment (enforcement, settings and limits).
    Config,
}

/// Replays `subject` over the selected bundles of the project's store.
pub fn replay(
    project: &Project,
    subject: &Subject,
    selection: &Selection,
) -> Result<Replay, WorkflowError> {
    let history = project.history()?;
    let engine = super::tools::policy_engine()?;
    let (mode, loaded) = match subject {
        Subject::Policy { policy, settings } => (
            Mode::Policy,
            vec![load_one(
                &project.config,
                &engine,
                policy,
                settings.as_ref(),
            )?],
        ),
        Subject::Config => (
            Mode::Config,
            policies::load_configs(&project.config.policies, project.dir(), &engine)?,
        ),
    };
    let store = &*project.store;
    let listed: Vec<Result<Listed, Skipped>> = store
        .bundle_digests()?
        .into_par_iter()
        .map(|digest| list(store, digest))
        .collect::<Result<_, StoreError>>()?;
    let (mut skipped, mut chosen) = (Vec::new(), Vec::new());
    for l in listed {
        match l {
            Ok(l) if selection.selects(&l.manifest) => chosen.push(l),
            Ok(_) => {}
            Err(s) => skipped.push(s),
        }
    }
    // Oldest first; plans made within the same second in the order the log
    // recorded them.
    let mut planned_seq: BTreeMap<&str, u64> = BTreeMap::new();
    for e in history.entries() {
        if let (EntryData::Plan(_), Some(d)) = (&e.data, e.digest.as_deref()) {
            planned_seq.entry(d).or_insert(e.seq);
        }
    }
    let order = |l: &Listed| {
        let seq = planned_seq
            .get(l.digest.as_str())
            .copied()
            .unwrap_or(u64::MAX);
        (l.manifest.created_at.clone(), seq, l.digest.clone())
    };
    chosen.sort_by_cached_key(order);
    if let Some(n) = selection.last {
        chosen.drain(..chosen.len().saturating_sub(n));
    }

    let applied = applied_status(&history, &chosen);
    let job = Job {
        store,
        engine: &engine,
        loaded: &loaded,
        mode,
        config: &project.config,
        history: &history,
        applied: &applied,
    };
    let results: Vec<Result<BundleReplay, Skipped>> = chosen
        .par_iter()
        .map(|l| job.replay(l))
        .collect::<Result<_, WorkflowError>>()?;
    let mut bundles = Vec::new();
    for r in results {
        match r {
            Ok(b) => bundles.push(b),
            Err(s) => skipped.push(s),
        }
    }
    skipped.sort_by(|a, b| (&a.planned_at, &a.digest).cmp(&(&b.planned_at, &b.digest)));
    let summary = Summary {
        replayed: bundles.len(),
        skipped: skipped.len(),
        newly_blocked: bundles.iter().filter(|b| b.newly_blocked()).count(),
        unblocked: bundles.iter().filter(|b| b.unblocked()).count(),
        findings_changed: bundles
            .iter()
            .filter(|b| !b.verdict_changed() && (!b.new.is_empty() || !b.gone.is_empty()))
            .count(),
    };
    Ok(Replay {
        mode,
        policies: loaded
            .iter()
            .map(|l| ReplayedPolicy {
                name: l.config.name.clone(),
                origin: l.origin(),
                sha256: l.sha256(),
                enforcement: l.config.enforcement,
                settings: l.config.settings.clone(),
                environments: l.config.environments.clone(),
            })
            .collect(),
        selection: selection.clone(),
        bundles,
        skipped,
        summary,
    })
}

impl Selection {
    fn selects(&self, m: &Manifest) -> bool {
        self.environment
            .as_ref()
            .is_none_or(|e| *e == m.environment)
            && self
                .since
                .as_ref()
                .is_none_or(|s| m.created_at.as_str() >= s.as_str())
    }
}

/// `--since` as of now (see [`parse_since`]).
pub fn since(text: &str) -> Result<String, ReplayError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    parse_since(text, now)
}

/// `--since`: a date (`2026-11-24`), an instant (`2026-11-24T20:15:03Z`) or
/// a duration back from `now_secs` (`7d`, `12h`), as RFC 3339 UTC.
pub fn parse_since(text: &str, now_secs: i64) -> Result<String, ReplayError> {
    let t = text.trim();
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let is_date = |d: &str| {
        let p: Vec<&str> = d.split('-').collect();
        p.len() == 3
            && p[0].len() == 4
            && p[1].len() == 2
            && p[2].len() == 2
            && p.iter().all(|x| digits(x))
    };
    if is_date(t) {
        return Ok(format!("{t}T00:00:00Z"));
    }
    if let Some((date, time)) = t.split_once('T')
        && is_date(date)
        && let Some(time) = time.strip_suffix('Z')
        && time.len() == 8
        && time.split(':').count() == 3
        && time.split(':').all(|x| x.len() == 2 && digits(x))
    {
        return Ok(t.to_string());
    }
    let back = crate::units::parse_duration(t).map_err(|_| ReplayError::Since {
        text: text.to_string(),
    })?;
    Ok(crate::store::rfc3339(now_secs.saturating_sub(
        i64::try_from(back.as_secs()).unwrap_or(i64::MAX),
    )))
}

/// A bundle whose manifest matches its digest.
struct Listed {
    digest: String,
    manifest: Manifest,
}

fn skip(digest: &str, manifest: Option<&Manifest>, reason: impl Into<String>) -> Skipped {
    Skipped {
        digest: digest.to_string(),
        environment: manifest.map(|m| m.environment.clone()),
        planned_at: manifest.map(|m| m.created_at.clone()),
        reason: reason.into(),
    }
}

/// Reads and checks a bundle's manifest: nothing is trusted because of where
/// it is stored.
fn list(store: &dyn Store, digest: String) -> Result<Result<Listed, Skipped>, StoreError> {
    let Some(bytes) = store.read_bundle_file(&digest, MANIFEST)? else {
        return Ok(Err(skip(&digest, None, "it has no manifest.json")));
    };
    if sha256_hex(&bytes) != digest {
        return Ok(Err(skip(
            &digest,
            None,
            "its manifest.json does not match its digest: it was changed after the plan",
        )));
    }
    Ok(match serde_json::from_slice::<Manifest>(&bytes) {
        Ok(manifest) => Ok(Listed { digest, manifest }),
        Err(e) => Err(skip(
            &digest,
            None,
            format!("its manifest.json is not one this opsdeploy reads: {e}"),
        )),
    })
}

/// How each selected bundle's last apply ended.
fn applied_status(history: &super::History, chosen: &[Listed]) -> BTreeMap<String, Applied> {
    let envs: BTreeSet<&str> = chosen
        .iter()
        .map(|l| l.manifest.environment.as_str())
        .collect();
    let mut out = BTreeMap::new();
    for env in envs {
        for a in history.applies(env) {
            let status = match a.status() {
                None if a.finish.is_none() => Applied::Interrupted,
                None => Applied::Failed,
                Some(ApplyStatus::Succeeded) => Applied::Succeeded,
                Some(ApplyStatus::Failed) => Applied::Failed,
                Some(ApplyStatus::RolledBack) => Applied::RolledBack,
                Some(ApplyStatus::RollbackFailed) => Applied::RollbackFailed,
            };
            // Once applied, a bundle stays applied whatever later applies of it did.
            let kept = out.entry(a.digest.clone()).or_insert(status);
            if *kept != Applied::Succeeded {
                *kept = status;
            }
        }
    }
    out
}

/// What every bundle's replay shares.
struct Job<'a> {
    store: &'a dyn Store,
    engine: &'a PolicyEngine,
    loaded: &'a [Loaded],
    mode: Mode,
    config: &'a Config,
    history: &'a super::History,
    applied: &'a BTreeMap<String, Applied>,
}

impl Job<'_> {
    fn replay(&self, l: &Listed) -> Result<Result<BundleReplay, Skipped>, WorkflowError> {
        let m = &l.manifest;
        let skipped = |reason: String| Ok(Err(skip(&l.digest, Some(m), reason)));
        let Some(entry) = m.files.iter().find(|f| f.path == INPUT) else {
            return skipped("it has no input document (input.json)".into());
        };
        let Some(input) = self.store.read_bundle_file(&l.digest, INPUT)? else {
            return skipped("its input.json is missing".into());
        };
        if sha256_hex(&input) != entry.sha256 {
            return skipped(
                "its input.json does not match the manifest: it was changed after the plan".into(),
            );
        }
        if let Err(reason) = current_schema(stored_schema_version(&input)) {
            return skipped(reason);
        }
        let doc = match InputDocument::from_slice(INPUT, &input) {
            Ok(doc) => doc,
            Err(e) => return skipped(e.to_string()),
        };
        let Some(results) = self.store.read_bundle_file(&l.digest, RESULTS)? else {
            return skipped("it has no policy results (results.json) to compare with".into());
        };
        let results: Results = match serde_json::from_slice(&results) {
            Ok(r) => r,
            Err(e) => return skipped(format!("its results.json is not readable: {e}")),
        };
        let overrides = self.history.overrides(&l.digest);
        let then = with_overrides(&results.decisions, &overrides);

        let evaluated: Vec<Decision> = match self.mode {
            Mode::Policy => policies::evaluate(self.engine, self.loaded, &doc, &overrides),
            Mode::Config => {
                if self.config.environment(&m.environment).is_none() {
                    return skipped(format!(
                        "its environment \"{}\" is no longer in opsdeploy.hcl",
                        m.environment
                    ));
                }
                // One at a time: the bundles are what runs in parallel.
                self.loaded
                    .iter()
                    .filter(|l| applies_to(&l.config, &m.environment))
                    .flat_map(|l| {
                        policies::evaluate(self.engine, std::slice::from_ref(l), &doc, &overrides)
                    })
                    .collect()
            }
        };
        let evaluated = scrubbed(&doc, evaluated);
        let now: Vec<Decision> = match self.mode {
            Mode::Config => evaluated,
            // The bundle's other decisions stand; the replayed one replaces
            // (or joins) them.
            Mode::Policy => {
                let mut now: Vec<Decision> = then
                    .iter()
                    .filter(|d| !evaluated.iter().any(|e| e.policy == d.policy))
                    .cloned()
                    .collect();
                now.extend(evaluated);
                now
            }
        };
        let compared: BTreeSet<&str> = match self.mode {
            Mode::Policy => self.loaded.iter().map(|l| l.config.name.as_str()).collect(),
            Mode::Config => then.iter().chain(&now).map(|d| d.policy.as_str()).collect(),
        };
        let (new, gone) = differences(&then, &now, &compared);
        let (then, blocked_by_then) = Verdict::of(&then);
        let (now, blocked_by_now) = Verdict::of(&now);
        Ok(Ok(BundleReplay {
            digest: l.digest.clone(),
            environment: m.environment.clone(),
            planned_at: m.created_at.clone(),
            planned_by: m.planned_by.clone(),
            applied: self.applied.get(&l.digest).copied().unwrap_or(Applied::No),
            then,
            now,
            blocked_by_then,
            blocked_by_now,
            new,
            gone,
        }))
    }
}

fn applies_to(pc: &PolicyConfig, env: &str) -> bool {
    pc.environments.is_empty() || pc.environments.iter().any(|e| e == env)
}

/// The decisions without the values the document's terraform plan marks
/// sensitive, as the plan stored its own: a careless policy may quote one,
/// and findings compare by what was stored.
fn scrubbed(doc: &InputDocument, decisions: Vec<Decision>) -> Vec<Decision> {
    if decisions.iter().all(|d| d.violations.is_empty()) {
        return decisions;
    }
    crate::store::results::scrubbed(&decisions, &doc.redactor())
}

/// The findings of the `compared` policies that are new now, and those gone,
/// matched by policy, rule, severity and place (messages may word the same
/// finding differently); repeats count.
fn differences(
    then: &[Decision],
    now: &[Decision],
    compared: &BTreeSet<&str>,
) -> (Vec<Change>, Vec<Change>) {
    type Key<'a> = (
        &'a str,
        &'a str,
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
        Option<u32>,
    );
    fn findings(decisions: &[Decision], compared: &BTreeSet<&str>) -> Vec<Change> {
        decisions
            .iter()
            .filter(|d| compared.contains(d.policy.as_str()))
            .flat_map(|d| {
                d.violations.iter().map(|v| Change {
                    policy: d.policy.clone(),
                    violation: v.clone(),
                })
            })
            .collect()
    }
    fn key(c: &Change) -> Key<'_> {
        let v = &c.violation;
        (
            &c.policy,
            &v.rule,
            v.severity.as_str(),
            v.address.as_deref(),
            v.path.as_deref(),
            v.line,
        )
    }
    fn minus(a: &[Change], b: &[Change]) -> Vec<Change> {
        let mut left: BTreeMap<Key<'_>, usize> = BTreeMap::new();
        for c in b {
            *left.entry(key(c)).or_default() += 1;
        }
        a.iter()
            .filter(|c| match left.get_mut(&key(c)) {
                Some(n) if *n > 0 => {
                    *n -= 1;
                    false
                }
                _ => true,
            })
            .cloned()
            .collect()
    }
    let (then, now) = (findings(then, compared), findings(now, compared));
    (minus(&now, &then), minus(&then, &now))
}

/// The `schema_version` of a stored input document: read from the prefix
/// opsdeploy writes it in, else by parsing the document's top level.
fn stored_schema_version(bytes: &[u8]) -> Option<u64> {
    const PREFIX: &[u8] = b"{\"schema_version\":";
    if let Some(rest) = bytes.strip_prefix(PREFIX) {
        let end = rest.iter().position(|b| !b.is_ascii_digit()).unwrap_or(0);
        if end > 0 && matches!(rest.get(end), Some(b',' | b'}')) {
            return std::str::from_utf8(&rest[..end]).ok()?.parse().ok();
        }
    }
    #[derive(serde::Deserialize)]
    struct Top {
        schema_version: Option<u64>,
    }
    serde_json::from_slice::<Top>(bytes).ok()?.schema_version
}

/// Whether a stored document can be replayed as this opsdeploy's schema.
/// Version 1 is the first: an upgrade from an older version, once there is
/// one, is a function over the raw document applied here; until then an
/// unknown version is skipped with the reason.
fn current_schema(version: Option<u64>) -> Result<(), String> {
    let current = u64::from(SCHEMA_VERSION);
    match version {
        Some(v) if v == current => Ok(()),
        Some(v) if v > current => Err(format!(
            "its input document has schema version {v}, newer than this opsdeploy reads ({current})"
        )),
        Some(v) => Err(format!(
            "its input document has schema version {v}, and no upgrade from it to version {current} is defined"
        )),
        None => Err("its input document has no schema_version".into()),
    }
}

/// What a policy argument names, and its name when it is not configured.
fn source_of(arg: &str) -> Result<(PolicySource, String), ReplayError> {
    if let Some(name) = arg.strip_prefix("builtin:") {
        crate::builtins::builtin(name)?;
        return Ok((PolicySource::Builtin, name.to_string()));
    }
    let path = PathBuf::from(arg);
    if arg.ends_with(".rego") {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().replace('_', "-"))
            .unwrap_or_else(|| "rego".into());
        let rego = crate::config::RegoConfig {
            files: vec![arg.to_string()],
            query: None,
            input: None,
            rego_version: None,
        };
        return Ok((PolicySource::Rego(rego), stem));
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().replace('_', "-"))
        .unwrap_or_else(|| "policy".into());
    Ok((PolicySource::File(path), stem))
}

/// The same file, however the two paths spell it.
fn same_file(dir: &Path, a: &Path, b: &Path) -> bool {
    let (a, b) = (dir.join(a), dir.join(b));
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Loads the one policy a replay names, as the configuration has it when it
/// names the same module (settings and limits), judged as hard-mandatory.
fn load_one(
    config: &Config,
    engine: &PolicyEngine,
    arg: &str,
    settings: Option<&serde_json::Value>,
) -> Result<Loaded, WorkflowError> {
    let (source, fallback) = source_of(arg)?;
    let configured = config.policies.iter().find(|p| match (&p.source, &source) {
        (PolicySource::Builtin, PolicySource::Builtin) => p.name == fallback,
        (PolicySource::File(a), PolicySource::File(b)) => same_file(&config.dir, a, b),
        (PolicySource::Rego(a), PolicySource::Rego(b)) => {
            a.files.len() == 1
                && same_file(&config.dir, Path::new(&a.files[0]), Path::new(&b.files[0]))
        }
        _ => false,
    });
    let mut pc = configured
        .cloned()
        .unwrap_or_else(|| PolicyConfig::unconfigured(&fallback, source));
    pc.enforcement = Enforcement::HardMandatory;
    pc.environments = Vec::new();
    if let Some(s) = settings {
        pc.settings = Some(s.clone());
    }
    let mut loaded = policies::load_configs(std::slice::from_ref(&pc), &config.dir, engine)
        .map_err(|e| match e {
            // Settings given here are wrong here, not in opsdeploy.hcl.
            WorkflowError::InvalidSettings { policy, source } if settings.is_some() => {
                ReplayError::Settings { policy, source }.into()
            }
            e => e,
        })?
        .remove(0);
    match loaded.policy {
        Ok(policy) => {
            if configured.is_none() {
                loaded.config.name = policy.name.clone();
            }
            loaded.policy = Ok(policy);
        }
        Err(source) => {
            return Err(ReplayError::NotAPolicy {
                arg: arg.to_string(),
                source,
            }
            .into());
        }
    }
    tracing::debug!(policy = %loaded.config.name, "replaying {}", short(&loaded.sha256()));
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use policy_sdk::Violation;

    fn decision(policy: &str, blocks: bool, violations: Vec<Violation>) -> Decision {
        let evaluation = crate::engine::Evaluation {
            policy: policy.into(),
            sha256: "0".repeat(64),
            outcome: crate::engine::Outcome::Completed {
                violations: violations.clone(),
            },
            fuel_used: Some(0),
            duration_ms: std::time::Duration::ZERO,
            logs: Vec::new(),
        };
        Decision {
            policy: policy.into(),
            enforcement: Enforcement::HardMandatory,
            sha256: "0".repeat(64),
            denied: blocks,
            overridden_by: None,
            override_reason: None,
            blocks,
            evaluation,
            violations,
        }
    }

    fn at(rule: &str, address: &str) -> Violation {
        let mut v = Violation::deny(rule, format!("{rule} at {address}"));
        v.address = Some(address.into());
        v
    }

    #[test]
    fn findings_differ_by_policy_rule_severity_and_place_not_by_wording_and_repeats_count() {
        let then = vec![
            decision(
                "p",
                true,
                vec![at("r", "a.x"), at("r", "a.x"), at("s", "a.y")],
            ),
            decision("other", true, vec![at("r", "a.z")]),
        ];
        let mut reworded = at("s", "a.y");
        reworded.message = "worded otherwise".into();
        let now = vec![decision(
            "p",
            true,
            vec![at("r", "a.x"), reworded, at("r", "b.w")],
        )];
        let compared = BTreeSet::from(["p"]);
        let (new, gone) = differences(&then, &now, &compared);
        let places = |c: &[Change]| {
            c.iter()
                .map(|c| {
                    format!(
                        "{}/{}@{}",
                        c.policy,
                        c.violation.rule,
                        c.violation.address.as_deref().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(places(&new), ["p/r@b.w"]);
        assert_eq!(places(&gone), ["p/r@a.x"], "one of the two repeats went");
    }

    #[test]
    fn the_schema_version_is_read_from_the_prefix_or_the_document() {
        assert_eq!(
            stored_schema_version(br#"{"schema_version":1,"environment":{}}"#),
            Some(1)
        );
        assert_eq!(
            stored_schema_version(br#"{"environment":{},"schema_version":7}"#),
            Some(7)
        );
        assert_eq!(stored_schema_version(br#"{"environment":{}}"#), None);
        assert_eq!(stored_schema_version(b"not json"), None);
        assert!(current_schema(Some(1)).is_ok());
        assert!(
            current_schema(Some(2))
                .unwrap_err()
                .contains("schema version 2, newer than this opsdeploy reads (1)")
        );
        assert!(
            current_schema(Some(0))
                .unwrap_err()
                .contains("no upgrade from it to version 1 is defined")
        );
        assert!(
            current_schema(None)
                .unwrap_err()
                .contains("no schema_version")
        );
    }

    #[test]
    fn since_takes_a_date_a_utc_time_or_a_duration_back() {
        let now = 1_795_550_103; // 2026-11-24T19:55:03Z
        assert_eq!(
            parse_since("2026-11-01", now).unwrap(),
            "2026-11-01T00:00:00Z"
        );
        assert_eq!(
            parse_since("2026-11-01T08:30:00Z", now).unwrap(),
            "2026-11-01T08:30:00Z"
        );
        assert_eq!(parse_since("1d", now).unwrap(), "2026-11-23T19:55:03Z");
        assert_eq!(parse_since("2h", now).unwrap(), "2026-11-24T17:55:03Z");
        for bad in ["yesterday", "2026-1-1", "2026-11-01T08:30:00+02:00", ""] {
            let err = parse_since(bad, now).unwrap_err().to_string();
            assert!(err.contains("neither a date"), "{bad}: {err}");
        }
    }
}
