//! Policy fixtures: an input document, the policy's settings and the violations
//! expected, one JSON file per case under a policy's `fixtures/` directory.
//!
//! ```json
//! {
//!   "description": "deleting the orders database is denied",
//!   "settings": {"types": ["aws_db_instance"]},
//!   "input": {"schema_version": 1, "environment": {"name": "production", "project": "shop"}},
//!   "terraform_plan": "$PLAN_SAMPLES/some/plan.json",
//!   "expect": [{"rule": "protected-delete", "severity": "deny", "address": "aws_db_instance.orders"}]
//! }
//! ```
//!
//! `input` defaults to an empty document for environment `test`; `terraform_plan`
//! becomes the `terraform` section, and each of `scan_reports` (`{"target",
//! "kind": "image"|"fs", "report": PATH}`) a scan in the `scans` section. Their
//! paths are relative to the fixture file, or start with `$VAR/` to name a
//! directory kept outside the policy (sample data that is not yours to commit)
//! through an environment variable. Every
//! expected violation must match one actual violation on the fields it gives
//! (`message_contains` matches a substring), and there must be no others.

use std::path::{Path, PathBuf};

use policy_sdk::{Section, Violation};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::engine::{Evaluation, Limits, Outcome, Policy, PolicyEngine};
use crate::input::InputDocument;

#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("could not read fixture {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("fixture {path} is not valid: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("{dir} has no fixtures (expected *.json files in it)")]
    Empty { dir: PathBuf },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fixture {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    settings: Option<Box<RawValue>>,
    #[serde(default)]
    input: Option<Box<RawValue>>,
    #[serde(default)]
    terraform_plan: Option<PathBuf>,
    /// Trivy reports appended to `scans.reports`, so fixtures use real ones.
    #[serde(default)]
    scan_reports: Vec<ScanReport>,
    expect: Vec<Expected>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScanReport {
    target: String,
    kind: policy_sdk::scan::ScanKind,
    /// Relative to the fixture file.
    report: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    rule: String,
    #[serde(default)]
    severity: Option<policy_sdk::Severity>,
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    line: Option<u32>,
    #[serde(default)]
    message_contains: Option<String>,
}

impl Expected {
    fn matches(&self, v: &Violation) -> bool {
        self.rule == v.rule
            && self.severity.is_none_or(|s| s == v.severity)
            && (self.address.is_none() || self.address == v.address)
            && (self.path.is_none() || self.path == v.path)
            && (self.line.is_none() || self.line == v.line)
            && self
                .message_contains
                .as_ref()
                .is_none_or(|m| v.message.contains(m.as_str()))
    }

    fn describe(&self) -> String {
        let mut s = self.rule.clone();
        if let Some(sev) = self.severity {
            s.push_str(&format!(" [{sev}]"));
        }
        for (k, v) in [("address", &self.address), ("path", &self.path)] {
            if let Some(v) = v {
                s.push_str(&format!(" {k}={v}"));
            }
        }
        if let Some(m) = &self.message_contains {
            s.push_str(&format!(" message~{m:?}"));
        }
        s
    }
}

/// The verdict on one fixture.
#[derive(Debug)]
pub struct CaseResult {
    pub name: String,
    /// The fixture file, as it was given (reports point at it).
    pub file: PathBuf,
    pub description: Option<String>,
    /// Why it failed; `None` when it passed.
    pub failure: Option<String>,
    pub evaluation: Option<Evaluation>,
}

impl CaseResult {
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}

/// The fixture files of a directory, sorted by name.
pub fn fixture_files(dir: &Path) -> Result<Vec<PathBuf>, FixtureError> {
    let entries = std::fs::read_dir(dir).map_err(|source| FixtureError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(FixtureError::Empty {
            dir: dir.to_path_buf(),
        });
    }
    Ok(files)
}

/// Runs one fixture file against a loaded policy.
pub fn run_fixture(
    engine: &PolicyEngine,
    policy: &Policy,
    file: &Path,
    limits: &Limits,
) -> Result<CaseResult, FixtureError> {
    let invalid = |reason: String| FixtureError::Invalid {
        path: file.to_path_buf(),
        reason,
    };
    let text = std::fs::read(file).map_err(|source| FixtureError::Read {
        path: file.to_path_buf(),
        source,
    })?;
    let fixture: Fixture = serde_json::from_slice(&text).map_err(|e| invalid(e.to_string()))?;
    let shown = file.display().to_string();
    let mut doc = match &fixture.input {
        Some(raw) => InputDocument::from_slice(&shown, raw.get().as_bytes())
            .map_err(|e| invalid(e.to_string()))?,
        None => InputDocument::from_slice(
            &shown,
            br#"{"schema_version":1,"environment":{"name":"test","project":"fixture"}}"#,
        )
        .map_err(|e| invalid(e.to_string()))?,
    };
    if let Some(plan) = &fixture.terraform_plan {
        let plan_path = data_path(file, plan).map_err(invalid)?;
        let plan = crate::adapters::terraform::read_plan_file(&plan_path)
            .map_err(|e| invalid(e.to_string()))?;
        doc.set_terraform(".", plan);
    }
    if !fixture.scan_reports.is_empty() {
        let mut scans: serde_json::Map<String, serde_json::Value> =
            match doc.section(Section::Scans) {
                Some(raw) => serde_json::from_str(raw.get()).map_err(|e| invalid(e.to_string()))?,
                None => serde_json::Map::new(),
            };
        let reports = scans
            .entry("reports")
            .or_insert_with(|| serde_json::Value::Array(Vec::new()));
        for scan in &fixture.scan_reports {
            let path = data_path(file, &scan.report).map_err(invalid)?;
            let bytes = std::fs::read(&path).map_err(|source| FixtureError::Read {
                path: path.clone(),
                source,
            })?;
            let shown = path.display().to_string();
            crate::adapters::trivy::check_report(&shown, &bytes)
                .map_err(|e| invalid(e.to_string()))?;
            let report: serde_json::Value =
                serde_json::from_slice(&bytes).map_err(|e| invalid(format!("{shown}: {e}")))?;
            if let Some(list) = reports.as_array_mut() {
                list.push(
                    serde_json::json!({"target": scan.target, "kind": scan.kind, "report": report}),
                );
            }
        }
        doc.set(Section::Scans, &scans);
    }
    let name = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(settings) = &fixture.settings {
        let value: serde_json::Value =
            serde_json::from_str(settings.get()).map_err(|e| invalid(e.to_string()))?;
        if let Err(e) = policy.check_settings(&value) {
            return Ok(CaseResult {
                name,
                file: file.to_path_buf(),
                description: fixture.description,
                failure: Some(e.to_string()),
                evaluation: None,
            });
        }
    }
    // Narrowed as `opsdeploy plan` narrows it, so a fixture sees what production does.
    let input = doc.parts(
        policy.reads.as_deref(),
        &policy.plan_view,
        fixture.settings.as_deref(),
    );
    let evaluation = engine.evaluate_parts(policy, &input, limits);
    let failure = compare(&fixture.expect, &evaluation);
    Ok(CaseResult {
        name,
        file: file.to_path_buf(),
        description: fixture.description,
        failure,
        evaluation: Some(evaluation),
    })
}

/// Runs a Rego policy's `test_*` rules (loaded with `RegoMode::Test`): one
/// case per rule, named by its path, placed at its `_test.rego` file.
pub fn run_rego_tests(engine: &PolicyEngine, tests: &Policy, limits: &Limits) -> Vec<CaseResult> {
    use crate::engine::{REGO_TEST_FAILED, REGO_TEST_PASSED};
    let doc = br#"{"schema_version":1,"environment":{"name":"test","project":"fixture"},"settings":null}"#;
    let evaluation = engine.evaluate(tests, doc, limits);
    let case = |v: &Violation, failure: Option<String>| CaseResult {
        name: v.address.clone().unwrap_or_else(|| v.rule.clone()),
        file: PathBuf::from(v.path.clone().unwrap_or_default()),
        description: None,
        failure,
        evaluation: None,
    };
    let violations = evaluation.violations();
    if violations.is_empty() {
        return vec![CaseResult {
            name: "test_* rules".into(),
            file: PathBuf::new(),
            description: None,
            failure: Some("the *_test.rego files declare no test_ rule".into()),
            evaluation: Some(evaluation),
        }];
    }
    violations
        .iter()
        .map(|v| match v.rule.as_str() {
            REGO_TEST_PASSED => case(v, None),
            REGO_TEST_FAILED => case(v, Some(v.message.clone())),
            // A parse error, or the runtime failing: the tests did not run.
            _ => {
                let at = match (&v.path, v.line) {
                    (Some(p), Some(l)) => format!(" at {p}:{l}"),
                    _ => String::new(),
                };
                CaseResult {
                    failure: Some(format!("{}{at}: {}", v.rule, v.message)),
                    ..case(v, None)
                }
            }
        })
        .collect()
}

/// A path a fixture names: `$VAR/rest` under the directory that environment
/// variable names, anything else relative to the fixture file.
fn data_path(file: &Path, named: &Path) -> Result<PathBuf, String> {
    let text = named.to_string_lossy();
    let Some((var, rest)) = text.strip_prefix('$').and_then(|t| t.split_once('/')) else {
        return Ok(file.parent().unwrap_or(Path::new(".")).join(named));
    };
    match std::env::var_os(var) {
        Some(dir) if !dir.is_empty() => Ok(PathBuf::from(dir).join(rest)),
        _ => Err(format!(
            "{text} starts with ${var}, which is not set: set {var} to the directory it names"
        )),
    }
}

fn compare(expected: &[Expected], evaluation: &Evaluation) -> Option<String> {
    let actual = match &evaluation.outcome {
        Outcome::Completed { violations } => violations.clone(),
        // A failure is the denial the engine reports; fixtures may expect it.
        Outcome::Failed(_) => evaluation.violations(),
    };
    let mut unmatched: Vec<&Violation> = actual.iter().collect();
    let mut missing = Vec::new();
    for e in expected {
        match unmatched.iter().position(|v| e.matches(v)) {
            Some(i) => {
                unmatched.remove(i);
            }
            None => missing.push(e.describe()),
        }
    }
    if missing.is_empty() && unmatched.is_empty() {
        return None;
    }
    let mut report = String::new();
    for m in &missing {
        report.push_str(&format!("expected but not reported: {m}\n"));
    }
    for v in &unmatched {
        let at = v.address.as_deref().or(v.path.as_deref()).unwrap_or("-");
        report.push_str(&format!(
            "reported but not expected: {} [{}] at {at}: {}\n",
            v.rule, v.severity, v.message
        ));
    }
    Some(report.trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_paths_are_relative_to_the_fixture_or_under_a_named_directory() {
        let file = Path::new("policies/p/fixtures/case.json");
        assert_eq!(
            data_path(file, Path::new("../plan.json")).unwrap(),
            Path::new("policies/p/fixtures/../plan.json")
        );
        // SAFETY: a variable no other test reads or writes.
        unsafe { std::env::set_var("OPSDEPLOY_TEST_FIXTURE_DATA", "/data/samples") };
        assert_eq!(
            data_path(file, Path::new("$OPSDEPLOY_TEST_FIXTURE_DATA/a/plan.json")).unwrap(),
            Path::new("/data/samples/a/plan.json")
        );
        let err =
            data_path(file, Path::new("$OPSDEPLOY_TEST_FIXTURE_UNSET/plan.json")).unwrap_err();
        assert!(
            err.contains("$OPSDEPLOY_TEST_FIXTURE_UNSET, which is not set"),
            "{err}"
        );
    }
}
