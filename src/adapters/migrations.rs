//! Database migrations: reads a migrations directory into the input
//! document's `migrations` section, every statement classified (README,
//! "expand-contract").
//!
//! The directory holds one file per migration, run in file-name order
//! (digit runs compare as numbers, so `V2__x.sql` comes before `V10__y.sql`):
//!
//! - `NAME.sql` — the phase is declared by a header comment before the first
//!   statement, `-- opsdeploy: phase=expand` or `-- opsdeploy: phase=contract`,
//!   or not at all;
//! - `NAME.expand.sql` / `NAME.contract.sql` — the phase in the name;
//! - `NAME.up.sql` is read as `NAME.sql`; `NAME.down.sql` (a rollback script)
//!   is not a migration and is skipped.
//!
//! A migration's id is its file name without these suffixes. Expand
//! migrations run before the new app version is deployed, contract ones after
//! it; a migration that declares no phase runs before (it is treated as expand).

mod classify;
mod split;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use policy_sdk::migration::{Hazard, Migration, Phase, Run, Statement};
use sha2::{Digest, Sha256};

pub use classify::{Action, Classified, History, classify_file};

#[derive(Debug, thiserror::Error)]
pub enum MigrationsError {
    #[error("could not read migrations directory {dir}: {source}")]
    ReadDir { dir: String, source: std::io::Error },
    #[error("could not read migration {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("migration {path} is not UTF-8 text: {reason}")]
    NotText { path: String, reason: String },
    #[error("migration {path}:{line}: {reason}")]
    Header {
        path: String,
        line: u32,
        reason: String,
    },
    #[error("migrations {first} and {second} have the same id `{id}`")]
    DuplicateId {
        id: String,
        first: String,
        second: String,
    },
}

/// Where each migration already ran, by migration id (from the audit log).
pub type RanOn = BTreeMap<String, Vec<Run<'static>>>;

/// Reads every migration of `dir` (relative to `project_dir`, and shown as
/// written), classifies its statements and attaches where it already ran.
pub fn read_migrations(
    project_dir: &Path,
    dir: &str,
    ran_on: &RanOn,
) -> Result<Vec<Migration<'static>>, MigrationsError> {
    let full = project_dir.join(dir);
    let entries = std::fs::read_dir(&full).map_err(|source| MigrationsError::ReadDir {
        dir: dir.to_string(),
        source,
    })?;
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| MigrationsError::ReadDir {
            dir: dir.to_string(),
            source,
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_file = entry
            .file_type()
            .is_ok_and(|t| t.is_file() || t.is_symlink());
        if is_file && name.to_ascii_lowercase().ends_with(".sql") && name_parts(&name).is_some() {
            files.push((name, entry.path()));
        }
    }
    files.sort_by(|a, b| natural_cmp(&a.0, &b.0));

    let mut texts = Vec::with_capacity(files.len());
    for (name, path) in &files {
        let shown = join_shown(dir, name);
        let bytes = std::fs::read(path).map_err(|source| MigrationsError::Read {
            path: shown.clone(),
            source,
        })?;
        texts.push((name.as_str(), shown, bytes));
    }
    let sources: Vec<Source> = texts
        .iter()
        .map(|(name, shown, bytes)| Source {
            file_name: name,
            path: shown,
            bytes,
        })
        .collect();
    let mut migrations = migrations_from_sources(&sources)?;
    for m in &mut migrations {
        if let Some(runs) = ran_on.get(m.id.as_ref()) {
            m.ran_on = runs.clone();
        }
    }
    Ok(migrations)
}

/// One migration file's name, shown path and bytes.
#[derive(Debug, Clone, Copy)]
pub struct Source<'s> {
    pub file_name: &'s str,
    pub path: &'s str,
    pub bytes: &'s [u8],
}

/// Builds migrations from files already read, in the order given (the
/// classifier carries what earlier files created into later ones).
pub fn migrations_from_sources(
    sources: &[Source],
) -> Result<Vec<Migration<'static>>, MigrationsError> {
    let mut history = History::default();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut out = Vec::with_capacity(sources.len());
    for source in sources {
        // A `.down.sql` passed in explicitly is still read, under its full stem.
        let (id, name_phase) =
            name_parts(source.file_name).unwrap_or_else(|| (source.file_name.to_string(), None));
        if let Some(first) = seen.insert(id.clone(), source.path.to_string()) {
            return Err(MigrationsError::DuplicateId {
                id,
                first,
                second: source.path.to_string(),
            });
        }
        let text = decode(source)?;
        let split = split::split(text);
        let first_statement = split.pieces.first().map_or(u32::MAX, |p| p.line);
        let header_phase = header_phase(source.path, &split.line_comments, first_statement)?;
        let phase = match (name_phase, header_phase) {
            (Some(n), Some((h, line))) if n != h => {
                return Err(MigrationsError::Header {
                    path: source.path.to_string(),
                    line,
                    reason: format!(
                        "the header says phase={} but the file name says {}",
                        phase_name(h),
                        phase_name(n)
                    ),
                });
            }
            (Some(n), _) => Some(n),
            (None, h) => h.map(|(p, _)| p),
        };
        let statements = to_statements(classify_file(text, &mut history));
        out.push(Migration {
            id: id.into(),
            path: source.path.to_string().into(),
            sha256: hex::encode(Sha256::digest(source.bytes)).into(),
            sql: text.to_string().into(),
            phase,
            phase_default: false,
            statements,
            ran_on: Vec::new(),
        });
    }
    Ok(out)
}

/// The flat input-document form: one entry per action.
pub fn to_statements(classified: Vec<Classified>) -> Vec<Statement<'static>> {
    let mut out = Vec::new();
    for c in classified {
        for a in c.actions {
            out.push(Statement {
                line: c.line,
                ordinal: c.ordinal,
                sql: c.sql.clone().into(),
                kind: a.kind,
                operation: (!a.operation.is_empty()).then(|| a.operation.into()),
                table: a.table.map(Into::into),
                column: a.column.map(Into::into),
                reason: Some(a.reason.into()),
                hazards: a
                    .hazards
                    .into_iter()
                    .map(|(code, message)| Hazard {
                        code: code.into(),
                        message: message.into(),
                    })
                    .collect(),
                unparsed: c.unparsed,
            });
        }
    }
    out
}

fn decode<'s>(source: &Source<'s>) -> Result<&'s str, MigrationsError> {
    let bytes = source
        .bytes
        .strip_prefix(b"\xEF\xBB\xBF")
        .unwrap_or(source.bytes);
    std::str::from_utf8(bytes).map_err(|e| MigrationsError::NotText {
        path: source.path.to_string(),
        reason: e.to_string(),
    })
}

/// `(id, phase from the name)`; `None` for files that are not migrations
/// (`.down.sql`).
fn name_parts(file_name: &str) -> Option<(String, Option<Phase>)> {
    let lower = file_name.to_ascii_lowercase();
    let stem_len = if lower.ends_with(".sql") {
        file_name.len() - ".sql".len()
    } else {
        file_name.len()
    };
    let (stem, lower_stem) = (&file_name[..stem_len], &lower[..stem_len]);
    if lower_stem.ends_with(".down") {
        return None;
    }
    for (suffix, phase) in [
        (".expand", Some(Phase::Expand)),
        (".contract", Some(Phase::Contract)),
        (".up", None),
    ] {
        if lower_stem.ends_with(suffix) {
            return Some((stem[..stem.len() - suffix.len()].to_string(), phase));
        }
    }
    Some((stem.to_string(), None))
}

/// The `-- opsdeploy: phase=...` header, with its line. Directives must come
/// before the first statement; a misplaced or misspelt one is an error rather
/// than silently ignored.
fn header_phase(
    path: &str,
    comments: &[(u32, &str)],
    first_statement: u32,
) -> Result<Option<(Phase, u32)>, MigrationsError> {
    let mut found = None;
    for &(line, comment) in comments {
        let body = comment.trim_start_matches('-').trim();
        let Some(rest) = strip_prefix_ci(body, "opsdeploy:") else {
            continue;
        };
        let err = |reason: String| MigrationsError::Header {
            path: path.to_string(),
            line,
            reason,
        };
        if line > first_statement {
            return Err(err(
                "`-- opsdeploy:` directives belong in the header, before the first statement"
                    .into(),
            ));
        }
        for setting in rest.split_whitespace() {
            match setting.split_once('=') {
                Some((key, value)) if key.eq_ignore_ascii_case("phase") => {
                    let phase = match value.to_ascii_lowercase().as_str() {
                        "expand" => Phase::Expand,
                        "contract" => Phase::Contract,
                        other => {
                            return Err(err(format!(
                                "unknown phase `{other}` (expected phase=expand or phase=contract)"
                            )));
                        }
                    };
                    if let Some((earlier, at)) = found
                        && earlier != phase
                    {
                        return Err(err(format!(
                            "phase={} contradicts phase={} on line {at}",
                            phase_name(phase),
                            phase_name(earlier)
                        )));
                    }
                    found = Some((phase, line));
                }
                _ => {
                    return Err(err(format!(
                        "unknown directive `{setting}` (expected phase=expand or phase=contract)"
                    )));
                }
            }
        }
    }
    Ok(found)
}

fn strip_prefix_ci<'s>(s: &'s str, prefix: &str) -> Option<&'s str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Expand => "expand",
        Phase::Contract => "contract",
    }
}

fn join_shown(dir: &str, name: &str) -> String {
    let dir = dir.trim_end_matches('/');
    if dir.is_empty() || dir == "." {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// File-name order where runs of digits compare by value.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let n = x.iter().take_while(|b| b.is_ascii_digit()).count();
                let m = y.iter().take_while(|b| b.is_ascii_digit()).count();
                let (p, q) = (trim_zeros(&x[..n]), trim_zeros(&y[..m]));
                let order = p.len().cmp(&q.len()).then_with(|| p.cmp(q));
                if order != Ordering::Equal {
                    return order;
                }
                x = &x[n..];
                y = &y[m..];
            }
            (Some(c), Some(d)) => {
                if c != d {
                    return c.cmp(d);
                }
                x = &x[1..];
                y = &y[1..];
            }
        }
    }
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let zeros = digits.iter().take_while(|&&b| b == b'0').count();
    &digits[zeros.min(digits.len().saturating_sub(1))..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use policy_sdk::migration::StatementKind;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn files_run_in_natural_order_with_phase_from_name_or_header() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        write(
            d,
            "V10__drop.contract.sql",
            "ALTER TABLE t DROP COLUMN old;",
        );
        write(
            d,
            "V2__add.sql",
            "-- opsdeploy: phase=expand\nALTER TABLE t ADD COLUMN c int;",
        );
        write(d, "V1__init.up.sql", "CREATE TABLE t (old int);");
        write(d, "V1__init.down.sql", "DROP TABLE t;");
        write(d, "notes.txt", "not a migration");
        let ms = read_migrations(d, ".", &RanOn::new()).unwrap();
        let got: Vec<(&str, Option<Phase>)> = ms.iter().map(|m| (m.id.as_ref(), m.phase)).collect();
        assert_eq!(
            got,
            vec![
                ("V1__init", None),
                ("V2__add", Some(Phase::Expand)),
                ("V10__drop", Some(Phase::Contract)),
            ]
        );
        assert_eq!(ms[2].statements[0].kind, StatementKind::Contract);
        assert_eq!(ms[2].path, "V10__drop.contract.sql");
        assert_eq!(
            ms[0].sha256,
            hex::encode(Sha256::digest(b"CREATE TABLE t (old int);"))
        );
    }

    #[test]
    fn ran_on_is_attached_by_id() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "0001_init.sql", "CREATE TABLE t (id int);");
        let mut ran = RanOn::new();
        ran.insert(
            "0001_init".into(),
            vec![Run {
                environment: "staging".into(),
                sha256: "abc".into(),
                bundle: None,
                at: None,
                release_healthy: None,
            }],
        );
        let ms = read_migrations(tmp.path(), "", &ran).unwrap();
        assert_eq!(ms[0].ran_on[0].environment, "staging");
    }

    #[test]
    fn bad_headers_and_duplicate_ids_name_the_file_and_line() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::create_dir(d.join("db")).unwrap();
        write(
            &d.join("db"),
            "0001_a.sql",
            "-- opsdeploy: phase=contracts\nDROP TABLE t;",
        );
        let err = read_migrations(d, "db", &RanOn::new())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("db/0001_a.sql:1: unknown phase `contracts`"),
            "{err}"
        );

        std::fs::write(
            d.join("0001_a.sql"),
            "-- opsdeploy: phase=expand\nDROP TABLE t;",
        )
        .unwrap();
        write(d, "0001_a.contract.sql", "DROP TABLE u;");
        let err = read_migrations(d, ".", &RanOn::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("same id `0001_a`"), "{err}");

        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "1_x.contract.sql",
            "-- opsdeploy: phase=expand\nDROP TABLE t;",
        );
        let err = read_migrations(tmp.path(), ".", &RanOn::new())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "1_x.contract.sql:1: the header says phase=expand but the file name says contract"
            ),
            "{err}"
        );

        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "1_x.sql",
            "DROP TABLE t;\n-- opsdeploy: phase=contract\n",
        );
        let err = read_migrations(tmp.path(), ".", &RanOn::new())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("1_x.sql:2: `-- opsdeploy:` directives belong in the header"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_directory_and_binary_files_are_clear_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let err = read_migrations(tmp.path(), "db/migrations", &RanOn::new()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("could not read migrations directory db/migrations")
        );
        std::fs::write(tmp.path().join("1.sql"), b"\xff\xfe\x00").unwrap();
        let err = read_migrations(tmp.path(), ".", &RanOn::new()).unwrap_err();
        assert!(err.to_string().contains("1.sql is not UTF-8"), "{err}");
    }

    #[test]
    fn natural_order_compares_digit_runs_by_value() {
        let mut names = vec!["V10__a", "V2__b", "V1_10__c", "V1_2__d", "0003_x", "03_y"];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            names,
            vec!["0003_x", "03_y", "V1_2__d", "V1_10__c", "V2__b", "V10__a"]
        );
    }

    #[test]
    fn statements_carry_line_ordinal_and_one_entry_per_action() {
        let sources = [Source {
            file_name: "1.sql",
            path: "db/1.sql",
            bytes:
                b"-- note\nBEGIN;\nALTER TABLE t\n  ADD COLUMN a int,\n  DROP COLUMN b;\nCOMMIT;\n",
        }];
        let ms = migrations_from_sources(&sources).unwrap();
        let got: Vec<(u32, u32, Option<&str>)> = ms[0]
            .statements
            .iter()
            .map(|s| (s.ordinal, s.line, s.operation.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, 2, Some("BEGIN")),
                (2, 3, Some("ADD COLUMN")),
                (2, 3, Some("DROP COLUMN")),
                (3, 6, Some("COMMIT")),
            ]
        );
    }
}
