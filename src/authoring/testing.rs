//! `opsdeploy policy test`: build policies in any language (or take a
//! prebuilt module), run each one's fixtures and a Rego policy's `test_`
//! rules, and say how they went — as a table, as JSON, or as the report
//! model's `tests`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use policy_sdk::Violation;
use serde::Serialize;

use super::AuthoringError;
use super::fixtures::{self, CaseResult};
use super::project::{self, Language};
use crate::engine::{Limits, ModuleSource, Policy, PolicyEngine};
use crate::report::model::{Report, TestCase};
use crate::report::table::{Cell, GREEN, RED, Table, verdict};

/// What to test.
pub struct TestRequest<'a> {
    /// A policy directory, a directory of them, or (with `wasm`) a fixtures directory.
    pub dir: &'a Path,
    /// A prebuilt module to test instead of building crates.
    pub wasm: Option<&'a Path>,
    pub limits: Limits,
}

/// One policy and the directory of its fixtures.
pub struct Suite {
    pub policy: Policy,
    pub fixtures: PathBuf,
}

/// Every fixture's verdict, with the policy it tested.
pub struct TestRun {
    pub cases: Vec<(String, CaseResult)>,
}

/// Runs the Rego policies' `test_` rules, then every suite's fixtures;
/// `started` is told how many fixtures each suite has before they run
/// (progress for people).
pub fn run(
    engine: &PolicyEngine,
    req: &TestRequest,
    mut started: impl FnMut(&Suite, usize),
) -> Result<TestRun, AuthoringError> {
    let mut cases = Vec::new();
    let (suites, rego_tests) = suites(engine, req)?;
    for tests in &rego_tests {
        for case in fixtures::run_rego_tests(engine, tests, &req.limits) {
            cases.push((tests.name.clone(), case));
        }
    }
    for suite in suites {
        let files = fixtures::fixture_files(&suite.fixtures)?;
        started(&suite, files.len());
        for file in files {
            let case = fixtures::run_fixture(engine, &suite.policy, &file, &req.limits)?;
            cases.push((suite.policy.name.clone(), case));
        }
    }
    Ok(TestRun { cases })
}

/// The policies to test with where their fixtures are, and the Rego
/// policies (in test mode) whose `*_test.rego` files hold `test_` rules.
fn suites(
    engine: &PolicyEngine,
    req: &TestRequest,
) -> Result<(Vec<Suite>, Vec<Policy>), AuthoringError> {
    if let Some(wasm) = req.wasm {
        let policy = engine.load_with(&ModuleSource::read(wasm)?, &req.limits)?;
        let fixtures = if req.dir.join("fixtures").is_dir() {
            req.dir.join("fixtures")
        } else {
            req.dir.to_path_buf()
        };
        return Ok((vec![Suite { policy, fixtures }], Vec::new()));
    }
    let projects = project::discover(req.dir)?;
    let artifacts = project::build_all(&projects)?;
    let (mut suites, mut rego_tests) = (Vec::new(), Vec::new());
    for (p, artifact) in projects.iter().zip(&artifacts) {
        let (policy, tests) = project::load(engine, artifact, &req.limits)?;
        rego_tests.extend(tests);
        // A Rego policy may be tested by its _test.rego files alone.
        if p.language != Language::Rego || p.fixtures().is_dir() {
            suites.push(Suite {
                policy,
                fixtures: p.fixtures(),
            });
        }
    }
    Ok((suites, rego_tests))
}

/// `policy test --format json`.
#[derive(Debug, Serialize)]
pub struct TestRunOutput {
    pub passed: usize,
    pub failed: usize,
    pub cases: Vec<CaseOutput>,
}

#[derive(Debug, Serialize)]
pub struct CaseOutput {
    pub policy: String,
    pub case: String,
    pub passed: bool,
    pub failure: Option<String>,
    pub fuel_used: Option<u64>,
    /// What the policy said (none when it was not evaluated: a Rego `test_` rule).
    pub violations: Option<Vec<Violation>>,
}

impl TestRun {
    pub fn failed(&self) -> usize {
        self.cases.iter().filter(|(_, c)| !c.passed()).count()
    }

    /// One row per fixture: its verdict, policy and case.
    pub fn table(&self) -> String {
        let mut table = Table::new(&["result", "policy", "fixture"]).indent(0);
        for (policy, case) in &self.cases {
            table.row([
                verdict(if case.passed() { "ok" } else { "FAILED" }),
                Cell::from(policy),
                Cell::from(&case.name),
            ]);
        }
        table.render()
    }

    /// Failure details and the totals line.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let failed: Vec<_> = self.cases.iter().filter(|(_, c)| !c.passed()).collect();
        if !failed.is_empty() {
            out.push_str("\nfailures:\n");
            for (policy, case) in &failed {
                let _ = writeln!(out, "\n---- {policy}::{} ----", case.name);
                if let Some(d) = &case.description {
                    let _ = writeln!(out, "{d}");
                }
                let _ = writeln!(out, "{}", case.failure.as_deref().unwrap_or_default());
            }
        }
        let passed = self.cases.len() - failed.len();
        let verdict = if failed.is_empty() {
            format!("{GREEN}ok{GREEN:#}")
        } else {
            format!("{RED}FAILED{RED:#}")
        };
        let _ = writeln!(
            out,
            "\ntest result: {verdict}. {passed} passed; {} failed",
            failed.len()
        );
        // Fixture names, descriptions and failures come from outside.
        crate::escape::terminal(&out).into_owned()
    }

    pub fn output(&self) -> TestRunOutput {
        let failed = self.failed();
        TestRunOutput {
            passed: self.cases.len() - failed,
            failed,
            cases: self
                .cases
                .iter()
                .map(|(policy, c)| CaseOutput {
                    policy: policy.clone(),
                    case: c.name.clone(),
                    passed: c.passed(),
                    failure: c.failure.clone(),
                    fuel_used: c.evaluation.as_ref().and_then(|e| e.fuel_used),
                    violations: c.evaluation.as_ref().map(|e| e.violations()),
                })
                .collect(),
        }
    }

    /// The run in the report model (`tests`).
    pub fn report(&self) -> Report {
        Report::from_tests(
            self.cases
                .iter()
                .map(|(policy, c)| TestCase {
                    policy: policy.clone(),
                    case: c.name.clone(),
                    file: c.file.display().to_string(),
                    passed: c.passed(),
                    failure: c.failure.clone(),
                })
                .collect(),
        )
    }
}
