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
use crate::store::summary::{ResourceChange, TerraformCounts};

/// The changes part: terraform counts, helm releases, images, migrations.
pub fn changes(digest: &str, manifest: &Manifest, out: &mut String) {
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
        resources(tf, digest, out);
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

/// How many resource changes human output lists before folding the rest
/// (JSON and every report format list them all).
const FOLD_AFTER: usize = 25;

/// One line per changed resource, as `terraform plan` marks them, with the
/// attributes an update changes.
fn resources(tf: &TerraformCounts, digest: &str, out: &mut String) {
    for r in tf.resources.iter().take(FOLD_AFTER) {
        let action = r.action.as_str();
        let mark = match action {
            "create" => "+",
            "update" => "~",
            "replace" => "-/+",
            "delete" => "-",
            _ => "?",
        };
        let mut line = format!("  {:<11} {mark:>3} {} {DIM}({action}", "", r.address);
        if let Some(reason) = &r.reason {
            let _ = write!(line, ": {reason}");
        }
        if let Some(from) = &r.moved_from {
            let _ = write!(line, ", moved from {from}");
        }
        line.push_str(&format!("){DIM:#}"));
        let _ = writeln!(out, "{line}");
        for a in &r.changed {
            let _ = writeln!(
                out,
                "  {:<11}       {}: {} -> {}{}",
                "",
                a.name,
                short_value(&a.before),
                short_value(&a.after),
                if a.forces_replacement {
                    " (forces replacement)"
                } else {
                    ""
                }
            );
        }
    }
    if tf.resources.len() > FOLD_AFTER {
        let _ = writeln!(
            out,
            "  {:<11} {DIM}... and {} more (`opsdeploy report {} --format json` lists every one){DIM:#}",
            "",
            tf.resources.len() - FOLD_AFTER,
            short(digest)
        );
    }
}

/// A resource change on one line, for report formats: action, reason and
/// every changed attribute (values as JSON, sensitive ones masked).
pub fn change_text(r: &ResourceChange) -> String {
    let mut text = r.action.clone();
    if let Some(reason) = &r.reason {
        let _ = write!(text, " ({reason})");
    }
    let attrs: Vec<String> = r
        .changed
        .iter()
        .map(|a| format!("{}: {} -> {}", a.name, a.before, a.after))
        .collect();
    if !attrs.is_empty() {
        let _ = write!(text, "; {}", attrs.join(", "));
    }
    text
}

/// A value on one line, long ones cut.
fn short_value(v: &serde_json::Value) -> String {
    let text = match v {
        serde_json::Value::String(s) if s.starts_with('(') && s.ends_with(')') => s.clone(),
        other => other.to_string(),
    };
    if text.chars().count() > 60 {
        format!("{}…", text.chars().take(59).collect::<String>())
    } else {
        text
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
        Enforcement::Shadow,
    ] {
        for d in decisions.iter().filter(|d| d.enforcement == level) {
            table.row([
                verdict(decision_word(d)),
                Cell::from(&d.policy),
                Cell::from(level.as_str()),
                Cell::from(d.violations.len().to_string()),
            ]);
            if level == Enforcement::Shadow && d.denied {
                table.detail(format!(
                    "{DIM}in shadow: it would deny if enforced; recorded, not blocking{DIM:#}"
                ));
            }
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
    if d.enforcement == Enforcement::Shadow {
        "shadow"
    } else if d.failure().is_some() {
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

/// What `approve` shows before it signs: the plan, its changes, and how
/// approvals of it are judged.
pub fn approval_summary(digest: &str, manifest: &Manifest, trust: &str) -> String {
    let mut out = format!(
        "{BOLD}plan {digest}{BOLD:#}\nfor {} ({}), planned by {}\n",
        manifest.environment, manifest.project, manifest.planned_by
    );
    let mut body = String::new();
    changes(digest, manifest, &mut body);
    out.push_str(&body);
    let _ = writeln!(out, "{trust}");
    out
}

/// The whole plan summary.
pub fn plan_human(
    digest: &str,
    manifest: &Manifest,
    decisions_list: &[Decision],
    incidents: &[String],
    trust: &[String],
) -> String {
    let mut out = format!(
        "{BOLD}plan {}{BOLD:#} for {} ({}), by {}\n",
        short(digest),
        manifest.environment,
        manifest.project,
        manifest.planned_by
    );
    let mut body = String::new();
    changes(digest, manifest, &mut body);
    out.push_str(&body);
    decisions(decisions_list, &mut out);
    if !manifest.policies_off.is_empty() {
        let _ = writeln!(
            out,
            "\n{YELLOW}off{YELLOW:#}: built-in safety policies not run for {}",
            manifest.environment
        );
        let mut table = Table::new(&["policy", "why"]);
        for p in &manifest.policies_off {
            table.row([p.name.as_str(), p.reason.as_str()]);
        }
        out.push_str(&table.render());
    }
    // How approvals of this plan are judged, then any change to who signs.
    for (n, line) in trust.iter().enumerate() {
        let _ = writeln!(out, "{}{line}", if n == 0 { "\n" } else { "  " });
    }
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
    // Names, messages and incidents come from outside.
    crate::escape::terminal(&out).into_owned()
}
