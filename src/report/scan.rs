//! `opsdeploy scan` for a terminal: severity counts per target in one
//! aligned table, the misconfigurations trivy found (no policy judges them),
//! then what the policies said.

use std::fmt::Write as _;

use anstyle::{AnsiColor, Color, Style};
use policy_sdk::scan::ScanKind;

use super::model::Report;
use crate::workflow::policies::Decision;

const RED: Style = Style::new()
    .fg_color(Some(Color::Ansi(AnsiColor::Red)))
    .bold();
const YELLOW: Style = Style::new()
    .fg_color(Some(Color::Ansi(AnsiColor::Yellow)))
    .bold();
const BOLD: Style = Style::new().bold();
const DIM: Style = Style::new().dimmed();

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
    let header = [
        "target",
        "kind",
        "critical",
        "high",
        "medium",
        "low",
        "unknown",
        "secrets",
        "misconfig",
    ];
    let rows: Vec<[String; 9]> = report
        .scans
        .iter()
        .map(|s| {
            let c = &s.counts;
            [
                s.target.clone(),
                match s.kind {
                    ScanKind::Image => "image",
                    ScanKind::Fs => "files",
                }
                .to_string(),
                c.critical.to_string(),
                c.high.to_string(),
                c.medium.to_string(),
                c.low.to_string(),
                c.unknown.to_string(),
                s.secrets.len().to_string(),
                s.misconfigurations.len().to_string(),
            ]
        })
        .collect();
    let mut width = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    out.push_str("  ");
    for (i, h) in header.iter().enumerate() {
        let w = width[i];
        // Names left, counts right, as in any table of numbers.
        if i < 2 {
            let _ = write!(out, "{BOLD}{h:<w$}{BOLD:#}  ");
        } else {
            let _ = write!(out, "{BOLD}{h:>w$}{BOLD:#}  ");
        }
    }
    trim_line(&mut out);
    for row in &rows {
        out.push_str("  ");
        for (i, cell) in row.iter().enumerate() {
            let w = width[i];
            let style = match i {
                2 | 7 if cell != "0" => RED,
                3 | 8 if cell != "0" => YELLOW,
                _ => Style::new(),
            };
            if i < 2 {
                let _ = write!(out, "{cell:<w$}  ");
            } else {
                let _ = write!(out, "{style}{cell:>w$}{style:#}  ");
            }
        }
        trim_line(&mut out);
    }

    let misconfigs: Vec<_> = report
        .scans
        .iter()
        .flat_map(|s| &s.misconfigurations)
        .collect();
    if !misconfigs.is_empty() {
        let _ = writeln!(out, "\n{BOLD}misconfigurations{BOLD:#}");
        for m in misconfigs.iter().take(MISCONFIG_SHOWN) {
            let at = match m.line {
                Some(l) => format!("{}:{l}", m.path),
                None => m.path.clone(),
            };
            let _ = writeln!(
                out,
                "  {:<8} {} {} {DIM}--> {at}{DIM:#}",
                m.severity.as_str(),
                m.id,
                m.title.as_deref().unwrap_or_default(),
            );
        }
        if misconfigs.len() > MISCONFIG_SHOWN {
            let _ = writeln!(
                out,
                "  … and {} more (--format json or html lists them all)",
                misconfigs.len() - MISCONFIG_SHOWN
            );
        }
    }
    super::plan::decisions(decisions, &mut out);
    out
}

/// Ends a table line: no trailing blanks.
fn trim_line(out: &mut String) {
    let kept = out.trim_end_matches(' ').len();
    out.truncate(kept);
    out.push('\n');
}
