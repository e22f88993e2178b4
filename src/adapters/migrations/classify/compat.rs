//! Verdicts that depend on the rest of the file.

use policy_sdk::migration::StatementKind;

use super::Classified;

/// A rename stays compatible when the old name comes back later in the same
/// file: a view with the table's old name (`ALTER TABLE a RENAME TO b; CREATE
/// VIEW a AS SELECT * FROM b`) or a column re-added under its old name.
pub(super) fn keep_compatible_renames(statements: &mut [Classified]) {
    let mut later_views: Vec<(usize, String)> = Vec::new();
    let mut later_columns: Vec<(usize, String, String)> = Vec::new();
    for (i, s) in statements.iter().enumerate() {
        for a in &s.actions {
            match (a.operation.as_str(), &a.table, &a.column) {
                ("CREATE VIEW", Some(v), _) => later_views.push((i, v.clone())),
                ("ADD COLUMN", Some(t), Some(c)) => later_columns.push((i, t.clone(), c.clone())),
                _ => {}
            }
        }
    }
    for (i, s) in statements.iter_mut().enumerate() {
        for a in &mut s.actions {
            if a.kind != StatementKind::Breaking {
                continue;
            }
            let kept = match (a.operation.as_str(), &a.table, &a.column) {
                ("RENAME TABLE", Some(t), _) => later_views
                    .iter()
                    .any(|(j, v)| *j > i && v == t)
                    .then(|| format!("a view named `{t}` created later in this file keeps the old name working")),
                ("RENAME COLUMN", Some(t), Some(c)) => later_columns
                    .iter()
                    .any(|(j, tt, cc)| *j > i && tt == t && cc == c)
                    .then(|| format!("`{c}` is added back later in this file, so the running app still finds it")),
                _ => None,
            };
            if let Some(why) = kept {
                a.kind = StatementKind::Expand;
                a.reason = format!("{}; {why}", a.reason.split(':').next().unwrap_or(""));
            }
        }
    }
}
