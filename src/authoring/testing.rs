//! `opsdeploy policy test`: build policy crates (or take a prebuilt module),
//! run each one's fixtures, and say how they went — as a table, as JSON, or
//! as the report model's `tests`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::AuthoringError;
use super::build;
use super::fixtures::{self, CaseResult};
use crate::engine::{Limits, ModuleSource, Policy, PolicyEngine};
use crate::report::model::{Report, TestCase};
use crate::report::table::{Cell, GREEN, RED, Table, verdict};

/// What to test.
pub struct TestRequest<'a> {
    /// A policy crate, a directory of them, or (with `wasm`) a fixtures directory.
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

/// Runs every suite's fixtures; `started` is told how many fixtures each
/// suite has before they run (progress for people).
pub fn run(
    engine: &PolicyEngine,
    req: &TestRequest,
    mut started: impl FnMut(&Suite, usize),
) -> Result<TestRun, AuthoringError> {
    let mut cases = Vec::new();
    for suite in suites(engine, req)? {
        let files = fixtures::fixture_files(&suite.fixtures)?;
        started(&suite, files.len());
        for file in files {
            let case = fixtures::run_fixture(engine, &suite.policy, &file, &req.limits)?;
            cases.push((suite.policy.name.clone(), case));
        }
    }
    Ok(TestRun { cases })
}

/// The policies to test and where their fixtures are.
fn suites(engine: &PolicyEngine, req: &TestRequest) -> Result<Vec<Suite>, AuthoringError> {
    if let Some(wasm) = req.wasm {
        let policy = engine.load(&ModuleSource::read(wasm)?)?;
        let fixtures = if req.dir.join("fixtures").is_dir() {
            req.dir.join("fixtures")
        } else {
            req.dir.to_path_buf()
        };
        return Ok(vec![Suite { policy, fixtures }]);
    }
    let crates = build::discover(req.dir)?;
    let built = build::build(&crates)?;
    crates
        .iter()
        .zip(built)
        .map(|(krate, wasm)| {
            Ok(Suite {
                policy: engine.load(&ModuleSource::read(&wasm)?)?,
                fixtures: krate.dir.join("fixtures"),
            })
        })
        .collect()
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
        out
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
                    fuel_used: c.evaluation.as_ref().map(|e| e.fuel_used),
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
