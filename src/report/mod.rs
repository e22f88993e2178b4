//! What people and tools read. Human text is each command's own; every other
//! format is written from one [`Report`] model (`model.rs`), one module per
//! format.

mod audit;
pub mod bundle;
mod html;
mod junit;
mod markdown;
pub mod model;
mod plan;
pub mod redact;
pub mod replay;
pub mod rollout;
mod sarif;
mod scan;
pub mod table;

use std::fmt::Write as _;

use anstyle::Style;
use policy_sdk::Severity;

use crate::authoring::fixtures::CaseResult;
use crate::engine::{Evaluation, Outcome};
pub use audit::{audit_markdown, describe as describe_entry};
pub use model::Report;
pub use plan::plan_human;
pub use redact::Redactor;
pub use scan::scan_human;

/// What `--format` selects: the one list of output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Text for a terminal
    Human,
    /// JSON: each command's result; for reports, the documented report model
    Json,
    /// SARIF 2.1.0, for GitHub code scanning
    Sarif,
    /// JUnit XML, for CI test dashboards
    Junit,
    /// Markdown, for pull-request comments (under 65,000 characters)
    Markdown,
    /// One self-contained HTML file, for security review
    Html,
}

impl Format {
    /// Formats only reports have (`human` and `json` every command has).
    pub fn is_report_only(self) -> bool {
        !matches!(self, Format::Human | Format::Json)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Human => "human",
            Format::Json => "json",
            Format::Sarif => "sarif",
            Format::Junit => "junit",
            Format::Markdown => "markdown",
            Format::Html => "html",
        }
    }
}

/// The report in a machine or review format; `None` for [`Format::Human`],
/// which each command writes in its own words.
pub fn write(report: &Report, format: Format) -> Option<String> {
    Some(match format {
        Format::Human => return None,
        Format::Json => {
            let mut s = serde_json::to_string_pretty(report).expect("the report serializes");
            s.push('\n');
            s
        }
        Format::Sarif => {
            let mut s = sarif::write(report);
            s.push('\n');
            s
        }
        Format::Junit => junit::write(report),
        Format::Markdown => markdown::write(report),
        Format::Html => html::write(report),
    })
}

use table::{Cell, DIM, GREEN, RED, Table, YELLOW, verdict};

fn severity_style(s: Severity) -> Style {
    match s {
        Severity::Deny => RED,
        Severity::Warn => YELLOW,
        Severity::Info => DIM,
    }
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One evaluation for a terminal: header, aligned violations, verdict.
pub fn evaluation_human(e: &Evaluation) -> String {
    let mut out = String::new();
    let violations = e.violations();
    let _ = writeln!(
        out,
        "policy {} (sha256 {}…) · {} violation{} · fuel {} · {:.1} ms",
        e.policy,
        &e.sha256[..12.min(e.sha256.len())],
        violations.len(),
        if violations.len() == 1 { "" } else { "s" },
        thousands(e.fuel_used),
        e.duration_ms.as_secs_f64() * 1e3
    );
    let mut table = Table::new(&["severity", "rule", "message"]);
    for v in &violations {
        table.row([
            Cell::styled(v.severity.as_str(), severity_style(v.severity)),
            Cell::from(&v.rule),
            Cell::from(&v.message),
        ]);
        let location = match (&v.address, &v.path, v.line) {
            (Some(a), _, _) => Some(a.clone()),
            (None, Some(p), Some(l)) => Some(format!("{p}:{l}")),
            (None, Some(p), None) => Some(p.clone()),
            _ => None,
        };
        if let Some(loc) = location {
            table.detail(format!("{DIM}--> {loc}{DIM:#}"));
        }
    }
    if !table.is_empty() {
        out.push_str(&table.render());
    }
    let result = match &e.outcome {
        Outcome::Failed(_) => format!("{RED}denied{RED:#} (the policy failed; failing closed)"),
        Outcome::Completed { .. } if e.denies() => {
            let n = violations
                .iter()
                .filter(|v| v.severity == Severity::Deny)
                .count();
            format!("{RED}denied{RED:#} ({n} deny)")
        }
        Outcome::Completed { .. } => format!("{GREEN}allowed{GREEN:#}"),
    };
    let _ = writeln!(out, "result: {result}");
    out
}

/// One row per fixture: its verdict, policy and case.
pub fn fixtures_table(results: &[(String, CaseResult)]) -> String {
    let mut table = Table::new(&["result", "policy", "fixture"]).indent(0);
    for (policy, case) in results {
        table.row([
            verdict(if case.passed() { "ok" } else { "FAILED" }),
            Cell::from(policy),
            Cell::from(&case.name),
        ]);
    }
    table.render()
}

/// Failure details and the totals line.
pub fn fixtures_summary(results: &[(String, CaseResult)]) -> String {
    let mut out = String::new();
    let failed: Vec<_> = results.iter().filter(|(_, c)| !c.passed()).collect();
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
    let passed = results.len() - failed.len();
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

/// Fixture results as JSON.
pub fn fixtures_json(results: &[(String, CaseResult)]) -> String {
    let cases: Vec<_> = results
        .iter()
        .map(|(policy, c)| {
            serde_json::json!({
                "policy": policy,
                "case": c.name,
                "passed": c.passed(),
                "failure": c.failure,
                "fuel_used": c.evaluation.as_ref().map(|e| e.fuel_used),
            })
        })
        .collect();
    let failed = results.iter().filter(|(_, c)| !c.passed()).count();
    serde_json::to_string_pretty(&serde_json::json!({
        "passed": results.len() - failed,
        "failed": failed,
        "cases": cases,
    }))
    .expect("json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(100), "100");
    }
}
