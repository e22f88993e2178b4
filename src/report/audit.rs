//! AUDIT_LOG.md: the audit log rendered for people.

use std::fmt::Write as _;

use crate::store::short;
use crate::store::{Entry, EntryData};

/// One line of plain words per entry, newest last, grouped under a table.
pub fn audit_markdown(entries: &[Entry]) -> String {
    let mut out = String::from(
        "# Audit log\n\nRendered by opsdeploy from `.opsdeploy/audit.jsonl`; do not edit \
         (`opsdeploy audit verify` checks the original).\n\n\
         | # | when (UTC) | who | environment | what | plan |\n|---|---|---|---|---|---|\n",
    );
    for e in entries {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            e.seq,
            escape(&e.at),
            escape(&e.actor),
            escape(e.environment.as_deref().unwrap_or("-")),
            escape(&describe(e)),
            e.digest
                .as_deref()
                .map(|d| format!("`{}`", short(d)))
                .unwrap_or_else(|| "-".into())
        );
    }
    out
}

fn escape(s: &str) -> String {
    crate::escape::controls(&s.replace('|', "\\|").replace('\n', " ")).into_owned()
}

/// What an entry records, in words.
pub fn describe(e: &Entry) -> String {
    match &e.data {
        EntryData::Plan(p) => format!("planned: {}", p.summary),
        EntryData::PolicyResults(r) => format!("policies: {}", r.verdict),
        EntryData::Approval(a) => match &a.comment {
            Some(c) if !c.is_empty() => format!("approved: {c}"),
            _ => "approved".into(),
        },
        EntryData::Override(o) => format!("overrode policy {}: {}", o.policy, o.reason),
        EntryData::ApplyStart(_) => "apply started".into(),
        EntryData::ApplyStep(s) => format!("{}: {}", s.step, s.status.as_str()),
        EntryData::ApplyFinish(f) => format!("apply finished: {}", f.status.as_str()),
        EntryData::Health(s) => format!(
            "health {}: {}",
            s.check.as_deref().unwrap_or_default(),
            s.status.as_str()
        ),
        EntryData::Rollback(r) => format!("rollback: {}", r.status.as_str()),
        EntryData::Promotion(p) => format!("promotion from {}", p.from),
        EntryData::Incident(i) => format!("incident: {}", i.what),
        EntryData::LockTakeover(l) => format!("took over a lock left by {}", l.previous),
    }
}
