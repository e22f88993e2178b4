//! `opsdeploy scan` for a terminal: severity counts per target in one
//! aligned table, the misconfigurations trivy found (no policy judges them),
//! then what the policies said.

use std::fmt::Write as _;

use anstyle::Style;
use policy_sdk::scan::ScanKind;

use super::model::Report;
use super::table::{BOLD, Cell, DIM, RED, Table, YELLOW};
use crate::store::results::Decision;

/// Misconfigurations listed before "… and N more".
const MISCONFIG_SHOWN: usize = 20;

pub fn scan_human(report: &Report, decisions: &[Decision]) -> String {
    let mut out = String::new();
    let fail_on = report.scans.first().and_then(|s| s.fail_on);
    let _ = writeln!(
        out,
        "{BOLD}scan{BOLD:#} of {} target{}{}",
        report.scans.len(),
        if report.scans.len() == 1 { "" } else { "s" },
        fail_on
            .map(|f| format!(", fail_on {f}"))
            .unwrap_or_default()
    );
    let mut table = Table::new(&[
        "target",
        "kind",
        "critical",
        "high",
        "medium",
        "low",
        "unknown",
        "secrets",
        "misconfig",
    ]);
    for column in 2..9 {
        table = table.right_align(column);
    }
    // A count that matters stands out; zero stays plain.
    let count = |n: usize, style: Style| {
        Cell::styled(n.to_string(), if n > 0 { style } else { Style::new() })
    };
    for s in &report.scans {
        let c = &s.counts;
        table.row([
            Cell::from(&s.target),
            Cell::from(match s.kind {
                ScanKind::Image => "image",
                ScanKind::Fs => "files",
            }),
            count(c.critical, RED),
            count(c.high, YELLOW),
            count(c.medium, Style::new()),
            count(c.low, Style::new()),
            count(c.unknown, Style::new()),
            count(s.secrets.len(), RED),
            count(s.misconfigurations.len(), YELLOW),
        ]);
    }
    out.push_str(&table.render());

    let misconfigs: Vec<_> = report
        .scans
        .iter()
        .flat_map(|s| &s.misconfigurations)
        .collect();
    if !misconfigs.is_empty() {
        let _ = writeln!(out, "\n{BOLD}misconfigurations{BOLD:#}");
        let mut table = Table::new(&["severity", "id", "title", "where"]);
        for m in misconfigs.iter().take(MISCONFIG_SHOWN) {
            table.row([
                Cell::from(m.severity.as_str()),
                Cell::from(&m.id),
                Cell::from(m.title.as_deref().unwrap_or_default()),
                Cell::styled(
                    match m.line {
                        Some(l) => format!("{}:{l}", m.path),
                        None => m.path.clone(),
                    },
                    DIM,
                ),
            ]);
        }
        out.push_str(&table.render());
        if misconfigs.len() > MISCONFIG_SHOWN {
            let _ = writeln!(
                out,
                "  … and {} more (--format json or html lists them all)",
                misconfigs.len() - MISCONFIG_SHOWN
            );
        }
    }
    super::plan::decisions(decisions, &mut out);
    crate::escape::terminal(&out).into_owned()
}
