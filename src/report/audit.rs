//! AUDIT_LOG.md: the audit log rendered for people.

use std::fmt::Write as _;

use crate::store::{Entry, EntryKind};

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
                .map(|d| format!("`{}`", &d[..12.min(d.len())]))
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
    let d = &e.data;
    let s = |k: &str| {
        d.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    match e.kind {
        EntryKind::Plan => format!("planned: {}", s("summary")),
        EntryKind::PolicyResults => format!("policies: {}", s("verdict")),
        EntryKind::Approval => {
            let c = s("comment");
            if c.is_empty() {
                "approved".into()
            } else {
                format!("approved: {c}")
            }
        }
        EntryKind::Override => format!("overrode policy {}: {}", s("policy"), s("reason")),
        EntryKind::ApplyStart => "apply started".into(),
        EntryKind::ApplyStep => format!("{}: {}", s("step"), s("status")),
        EntryKind::ApplyFinish => format!("apply finished: {}", s("status")),
        EntryKind::Health => format!("health {}: {}", s("check"), s("status")),
        EntryKind::Rollback => format!("rollback: {}", s("status")),
        EntryKind::Promotion => format!("promotion from {}", s("from")),
        EntryKind::Incident => format!("incident: {}", s("what")),
        EntryKind::LockTakeover => format!("took over a lock left by {}", s("previous")),
    }
}
