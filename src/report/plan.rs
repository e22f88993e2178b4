//! The plan summary people read at a glance: what changes, what the policies
//! said grouped by enforcement level, and the next command.

use std::fmt::Write as _;

use policy_sdk::migration::Phase;
use policy_sdk::scan::ScanKind;

use super::table::{BOLD, Cell, DIM, Table, YELLOW, verdict};
use crate::config::Enforcement;
use crate::store::bundle::Manifest;
use crate::store::results::Decision;
use crate::store::short;

/// The changes part: terraform counts, helm releases, images, migrations.
pub fn changes(manifest: &Manifest, out: &mut String) {
    let s = &manifest.summary;
    if let Some(tf) = &s.terraform {
        let _ = write!(out, "  {:<11} {tf}", "terraform");
        if tf.forget > 0 {
            let _ = write!(out, ", {} to forget", tf.forget);
        }
        if tf.drifted > 0 {
            let _ = write!(
                out,
                " {DIM}({} changed outside terraform){DIM:#}",
                tf.drifted
            );
        }
        out.push('\n');
    }
    for r in s.helm.iter().flatten() {
        let _ = writeln!(
            out,
            "  {:<11} {} {} {} ({} manifests, namespace {})",
            "helm",
            r.release,
            r.chart,
            r.version.as_deref().unwrap_or(""),
            r.manifests,
            r.namespace,
        );
    }
    for i in s.images.iter().flatten() {
        // `scan { paths }` are scanned for secrets and misconfigurations only.
        if i.kind == ScanKind::Fs {
            let _ = writeln!(
                out,
                "  {:<11} {}  secrets {}  misconfigurations {}",
                "files", i.target, i.secrets, i.misconfigurations,
            );
            continue;
        }
        let _ = writeln!(
            out,
            "  {:<11} {}  critical {}  high {}  medium {}  low {}",
            "image", i.target, i.critical, i.high, i.medium, i.low,
        );
    }
    for m in s.migrations.iter().flatten() {
        let phase = match m.phase {
            Some(Phase::Contract) => "contract",
            Some(Phase::Expand) | None => "expand",
        };
        let _ = writeln!(out, "  {:<11} {} ({phase})", "migration", m.id);
    }
    if out.is_empty() {
        out.push_str("  nothing to change\n");
    }
}

/// Policy decisions as a table, strictest enforcement level first; each
/// violation (and an override) on a line under its policy.
pub fn decisions(decisions: &[Decision], out: &mut String) {
    if decisions.is_empty() {
        let _ = writeln!(
            out,
            "\n{BOLD}policies{BOLD:#}: none configured for this environment"
        );
        return;
    }
    let _ = writeln!(out, "\n{BOLD}policies{BOLD:#}");
    let mut table = Table::new(&["result", "policy", "enforcement", "findings"]).right_align(3);
    for level in [
        Enforcement::HardMandatory,
        Enforcement::SoftMandatory,
        Enforcement::Advisory,
    ] {
        for d in decisions.iter().filter(|d| d.enforcement == level) {
            table.row([
                verdict(decision_word(d)),
                Cell::from(&d.policy),
                Cell::from(level.as_str()),
                Cell::from(d.violations.len().to_string()),
            ]);
            if let Some(by) = &d.overridden_by {
                table.detail(format!(
                    "{DIM}overridden by {by}: {}{DIM:#}",
                    d.override_reason.as_deref().unwrap_or_default()
                ));
            }
            for v in &d.violations {
                let at = super::model::location(v);
                table.detail(format!(
                    "{} {}: {}{}",
                    v.severity,
                    v.rule,
                    v.message,
                    at.map(|a| format!(" {DIM}--> {a}{DIM:#}"))
                        .unwrap_or_default()
                ));
            }
        }
    }
    out.push_str(&table.render());
}

/// The verdict word of one decision, as the plan and report tables print it.
pub fn decision_word(d: &Decision) -> &'static str {
    // A policy that could not run denies (fail closed) and says so, as the
    // report model's status does.
    if d.failure().is_some() {
        "failed"
    } else if d.blocks {
        "deny"
    } else if d.denied && d.overridden_by.is_some() {
        "overridden"
    } else if d.denied {
        "warn"
    } else {
        "pass"
    }
}

/// The whole plan summary.
pub fn plan_human(
    digest: &str,
    manifest: &Manifest,
    decisions_list: &[Decision],
    incidents: &[String],
) -> String {
    let mut out = format!(
        "{BOLD}plan {}{BOLD:#} for {} ({}), by {}\n",
        short(digest),
        manifest.environment,
        manifest.project,
        manifest.planned_by
    );
    let mut body = String::new();
    changes(manifest, &mut body);
    out.push_str(&body);
    decisions(decisions_list, &mut out);
    if !incidents.is_empty() {
        let _ = writeln!(
            out,
            "\n{YELLOW}incidents{YELLOW:#} since the last successful deploy of {}:",
            manifest.environment
        );
        for i in incidents {
            for (n, line) in i.lines().enumerate() {
                let _ = writeln!(out, "  {}{line}", if n == 0 { "" } else { "  " });
            }
        }
    }
    out
}
