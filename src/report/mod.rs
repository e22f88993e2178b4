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
pub mod replay;
pub mod rollout;
mod sarif;
mod scan;
pub mod table;

use std::fmt::Write as _;

use anstyle::Style;
use policy_sdk::Severity;

use crate::engine::{Evaluation, Outcome};
use crate::store::short;
pub use audit::{audit_markdown, describe as describe_entry};
pub use model::Report;
pub use plan::{approval_summary, plan_human};
pub use scan::scan_human;

/// Version of the `--format json` shape of every command's own result (those
/// that are not the report model, which has [`model::REPORT_SCHEMA`]); bumped
/// on any breaking change. docs/json.md documents each shape.
pub const OUTPUT_SCHEMA: u32 = 1;

/// A command's result as `--format json` writes it: `{"schema": N, ...}`
/// with the result's own fields after the version.
#[derive(serde::Serialize)]
struct Output<'a, T: serde::Serialize> {
    schema: u32,
    #[serde(flatten)]
    result: &'a T,
}

/// A command's result (a struct) as its `--format json`.
pub fn json<T: serde::Serialize>(result: &T) -> String {
    serde_json::to_string_pretty(&Output {
        schema: OUTPUT_SCHEMA,
        result,
    })
    .expect("command results serialize")
}

/// A command's list result as its `--format json`: the list as it is, its
/// elements as docs/json.md gives them for schema [`OUTPUT_SCHEMA`].
pub fn json_list<T: serde::Serialize>(items: &[T]) -> String {
    serde_json::to_string_pretty(items).expect("command results serialize")
}

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

use table::{Cell, DIM, GREEN, RED, Table, YELLOW};

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
        short(&e.sha256),
        violations.len(),
        if violations.len() == 1 { "" } else { "s" },
        e.fuel_used
            .map_or_else(|| "unknown (stopped by its deadline)".into(), thousands),
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
    crate::escape::terminal(&out).into_owned()
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
