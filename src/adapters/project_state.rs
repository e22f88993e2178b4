//! The project's SDLC state, read from plain Markdown files into the input
//! document's `gates` section (checked by the built-in `gates` policy).
//!
//! **State file** (e.g. `PROJECT_STATE.md`): a phase line and a gate table,
//! optionally a feature-flag table; everything else is free text.
//!
//! ```markdown
//! Phase: S09
//!
//! | Gate | Status | Date | Evidence |
//! |------|--------|------|----------|
//! | S06 Quality gates | passed | 2025-03-01 | CI run 812 |
//! | S07 Security review | passed | 2025-03-02 | docs/security-review.md |
//!
//! | Flag | staging | production |
//! |------|---------|------------|
//! | new_checkout | on | off |
//! | search_v2 | 10% | |
//! ```
//!
//! - The phase line is `Phase: S09` or `Current phase: S09` (list markers and
//!   `**bold**` allowed); the phase is its first word (`S09 — staging` → `S09`).
//! - The gate table is the table whose header has a `Gate` (or `Id`) and a
//!   `Status` column; `Name`, `Date` and `Evidence` columns are optional. A
//!   gate cell `S06 Quality gates` is id `S06`, name `Quality gates`. Status
//!   is kept as written; the policy decides what counts as passed.
//! - The feature-flag table is the table whose first header cell is `Flag`
//!   (or `Feature`, `Feature flag`); its other columns are environments. A flag
//!   is configured for an environment when its cell says anything but empty,
//!   `-`, `—`, `unset`, `tbd`, `todo` or `?`. Every flag in the table is
//!   declared; a missing environment column means no flag is configured there.
//!
//! **Security checklist**: Markdown task list items, `- [ ]` / `- [x]` (also
//! `*`, `+` and `1.` markers), each with its line.
//!
//! **Rollback runbook**: any file; it must exist and not be blank.
//!
//! Fenced code blocks are skipped. Malformed tables and checkboxes are errors
//! naming the file and line.

use std::collections::BTreeMap;
use std::path::Path;

use policy_sdk::input::{Checklist, ChecklistItem, DocumentFile, Gate, Gates};

#[derive(Debug, thiserror::Error)]
pub enum ProjectStateError {
    #[error("could not read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not UTF-8 text: {reason}")]
    NotText { path: String, reason: String },
    #[error("{path}:{line}: {reason}")]
    Malformed {
        path: String,
        line: u32,
        reason: String,
    },
}

/// The files the project names (relative to the project directory).
#[derive(Debug, Clone, Copy, Default)]
pub struct StateFiles<'a> {
    pub state_file: &'a str,
    pub security_checklist: Option<&'a str>,
    pub rollback_runbook: Option<&'a str>,
}

/// Reads the state file, checklist and runbook into the `gates` section for
/// `environment` (which decides which feature-flag column counts).
pub fn read_project_state(
    project_dir: &Path,
    files: &StateFiles,
    environment: &str,
) -> Result<Gates<'static>, ProjectStateError> {
    let state_text = read_text(project_dir, files.state_file)?;
    let mut gates = parse_state(files.state_file, &state_text, environment)?;
    if let Some(path) = files.security_checklist {
        let text = read_text(project_dir, path)?;
        gates.security_checklist = Some(parse_checklist(path, &text)?);
    }
    if let Some(path) = files.rollback_runbook {
        gates.rollback_runbook = Some(read_runbook(project_dir, path)?);
    }
    Ok(gates)
}

fn read_text(project_dir: &Path, path: &str) -> Result<String, ProjectStateError> {
    let bytes =
        std::fs::read(project_dir.join(path)).map_err(|source| ProjectStateError::Read {
            path: path.to_string(),
            source,
        })?;
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    String::from_utf8(bytes.to_vec()).map_err(|e| ProjectStateError::NotText {
        path: path.to_string(),
        reason: e.to_string(),
    })
}

fn read_runbook(
    project_dir: &Path,
    path: &str,
) -> Result<DocumentFile<'static>, ProjectStateError> {
    let full = project_dir.join(path);
    match std::fs::read(&full) {
        Ok(bytes) => Ok(DocumentFile {
            path: path.to_string().into(),
            exists: true,
            content_bytes: bytes.trim_ascii().len() as u64,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DocumentFile {
            path: path.to_string().into(),
            exists: false,
            content_bytes: 0,
        }),
        Err(source) => Err(ProjectStateError::Read {
            path: path.to_string(),
            source,
        }),
    }
}

/// Lines outside fenced code blocks, 1-based.
fn prose_lines(text: &str) -> impl Iterator<Item = (u32, &str)> {
    let mut fence: Option<&str> = None;
    text.lines().enumerate().filter_map(move |(i, line)| {
        let trimmed = line.trim_start();
        let marker = if trimmed.starts_with("```") {
            Some("```")
        } else if trimmed.starts_with("~~~") {
            Some("~~~")
        } else {
            None
        };
        match (fence, marker) {
            (None, Some(m)) => {
                fence = Some(m);
                None
            }
            (Some(f), Some(m)) if f == m => {
                fence = None;
                None
            }
            (Some(_), _) => None,
            (None, None) => Some((i as u32 + 1, line)),
        }
    })
}

/// A Markdown table: header cells and rows, each with its line.
struct Table<'t> {
    line: u32,
    header: Vec<String>,
    rows: Vec<(u32, Vec<&'t str>)>,
}

fn tables(text: &str) -> Vec<Table<'_>> {
    let mut out: Vec<Table> = Vec::new();
    let mut open = false;
    for (line, raw) in prose_lines(text) {
        let t = raw.trim();
        if !t.starts_with('|') {
            open = false;
            continue;
        }
        let cells = cells(t);
        if !open {
            out.push(Table {
                line,
                header: cells.iter().map(|c| c.to_ascii_lowercase()).collect(),
                rows: Vec::new(),
            });
            open = true;
        } else if cells
            .iter()
            .all(|c| !c.is_empty() && c.chars().all(|ch| matches!(ch, '-' | ':' | ' ')))
        {
            // the |---|---| separator
        } else if let Some(table) = out.last_mut() {
            table.rows.push((line, cells));
        }
    }
    out
}

/// Cells of a `| a | b |` row; `\|` is a literal pipe.
fn cells(row: &str) -> Vec<&str> {
    let inner = row.strip_prefix('|').unwrap_or(row);
    let inner = inner
        .strip_suffix('|')
        .filter(|s| !s.ends_with('\\'))
        .unwrap_or(inner);
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = inner.as_bytes();
    for i in 0..bytes.len() {
        if bytes[i] == b'|' && (i == 0 || bytes[i - 1] != b'\\') {
            out.push(inner[start..i].trim());
            start = i + 1;
        }
    }
    out.push(inner[start..].trim());
    out
}

/// `**x**`, `` `x` `` and `_x_` around a cell: the text inside.
fn plain(cell: &str) -> &str {
    let mut c = cell.trim();
    for mark in ["**", "__", "`", "*", "_"] {
        if let Some(inner) = c.strip_prefix(mark).and_then(|s| s.strip_suffix(mark)) {
            c = inner.trim();
        }
    }
    c
}

fn column(header: &[String], names: &[&str]) -> Option<usize> {
    header.iter().position(|h| names.contains(&plain(h)))
}

/// Parses a state file's text (shown as `path` in errors).
pub fn parse_state(
    path: &str,
    text: &str,
    environment: &str,
) -> Result<Gates<'static>, ProjectStateError> {
    let malformed = |line: u32, reason: String| ProjectStateError::Malformed {
        path: path.to_string(),
        line,
        reason,
    };
    let mut gates = Gates {
        state_file: Some(path.to_string().into()),
        ..Gates::default()
    };

    let mut phase_line = 0;
    for (line, raw) in prose_lines(text) {
        let Some(value) = phase_value(raw) else {
            continue;
        };
        let phase = value
            .split(|c: char| c.is_whitespace() || c == ',' || c == '(')
            .next()
            .unwrap_or("")
            .trim_matches(|c: char| c == '*' || c == '`');
        if phase.is_empty() {
            return Err(malformed(
                line,
                "the phase line names no phase (e.g. `Phase: S09`)".into(),
            ));
        }
        match &gates.phase {
            Some(earlier) if earlier != phase => {
                return Err(malformed(
                    line,
                    format!("phase `{phase}` contradicts phase `{earlier}` on line {phase_line}"),
                ));
            }
            _ => {
                gates.phase = Some(phase.to_string().into());
                gates.phase_line = Some(line);
                phase_line = line;
            }
        }
    }

    for table in tables(text) {
        let width = table.header.len();
        for (line, row) in &table.rows {
            if row.len() != width {
                return Err(malformed(
                    *line,
                    format!(
                        "this table row has {} cells but the table header on line {} has {width}",
                        row.len(),
                        table.line
                    ),
                ));
            }
        }
        let gate_col = column(&table.header, &["gate", "id", "gate id"]);
        let status_col = column(&table.header, &["status", "state"]);
        if let (Some(gate_col), Some(status_col)) = (gate_col, status_col) {
            read_gate_table(&table, gate_col, status_col, &mut gates, &malformed)?;
        } else if table.header.first().is_some_and(|h| {
            ["flag", "flags", "feature", "feature flag", "feature flags"].contains(&plain(h))
        }) {
            let env_col = table
                .header
                .iter()
                .position(|h| plain(h) == environment.to_ascii_lowercase());
            for (line, row) in &table.rows {
                let name = plain(row[0]);
                if name.is_empty() {
                    return Err(malformed(
                        *line,
                        "a feature flag row without a flag name".into(),
                    ));
                }
                let configured = env_col.is_some_and(|c| {
                    let v = plain(row[c]).to_ascii_lowercase();
                    !["", "-", "—", "unset", "tbd", "todo", "?"].contains(&v.as_str())
                });
                if gates
                    .feature_flags
                    .insert(name.to_string().into(), configured)
                    .is_some()
                {
                    return Err(malformed(
                        *line,
                        format!("feature flag `{name}` is listed twice"),
                    ));
                }
            }
        }
    }
    Ok(gates)
}

fn read_gate_table(
    table: &Table,
    gate_col: usize,
    status_col: usize,
    gates: &mut Gates<'static>,
    malformed: &dyn Fn(u32, String) -> ProjectStateError,
) -> Result<(), ProjectStateError> {
    let name_col = column(&table.header, &["name", "gate name", "description"]);
    let date_col = column(&table.header, &["date", "passed on", "when"]);
    let evidence_col = column(&table.header, &["evidence", "link", "proof", "notes"]);
    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    for (line, row) in &table.rows {
        let gate_cell = plain(row[gate_col]);
        let (id, rest) = match gate_cell.split_once(char::is_whitespace) {
            Some((id, rest)) => (
                id,
                rest.trim_start_matches([' ', '-', '—', ':', '–']).trim(),
            ),
            None => (gate_cell, ""),
        };
        let id = id.trim_matches(['*', '_', '`']);
        if id.is_empty() {
            return Err(malformed(
                *line,
                "a gate row without a gate id (e.g. `S06`)".into(),
            ));
        }
        let status = plain(row[status_col]);
        if status.is_empty() {
            return Err(malformed(*line, format!("gate {id} has no status")));
        }
        if let Some(first) = seen.insert(id.to_string(), *line) {
            return Err(malformed(
                *line,
                format!("gate {id} is listed twice (also on line {first})"),
            ));
        }
        let optional = |c: Option<usize>| {
            c.map(|c| plain(row[c]))
                .filter(|v| !v.is_empty())
                .map(|v| v.to_string().into())
        };
        let name =
            optional(name_col).or_else(|| (!rest.is_empty()).then(|| rest.to_string().into()));
        gates.gates.push(Gate {
            id: id.to_string().into(),
            name,
            status: status.to_string().into(),
            date: optional(date_col),
            evidence: optional(evidence_col),
            line: Some(*line),
        });
    }
    Ok(())
}

/// The text after `Phase:` / `Current phase:` on a phase line.
fn phase_value(line: &str) -> Option<&str> {
    let mut t = line.trim();
    t = t.trim_start_matches(['-', '*', '+', '>', '#', ' ']);
    let lower = t.to_ascii_lowercase();
    let label = ["current phase", "phase"]
        .into_iter()
        .find(|l| lower.starts_with(l))?;
    let rest = t[label.len()..].trim_start_matches(['*', '_']).trim_start();
    let rest = rest.strip_prefix(':')?;
    Some(rest.trim_start_matches(['*', '_']).trim())
}

/// Parses a security checklist (Markdown task list).
pub fn parse_checklist(path: &str, text: &str) -> Result<Checklist<'static>, ProjectStateError> {
    let mut items = Vec::new();
    for (line, raw) in prose_lines(text) {
        let t = raw.trim_start();
        let after_marker = if let Some(rest) = t.strip_prefix(['-', '*', '+']) {
            rest
        } else {
            let digits = t.bytes().take_while(u8::is_ascii_digit).count();
            match t[digits..].strip_prefix(['.', ')']) {
                Some(rest) if digits > 0 => rest,
                _ => continue,
            }
        };
        let Some(body) = after_marker.strip_prefix(' ').map(str::trim_start) else {
            continue;
        };
        let Some(box_and_text) = body.strip_prefix('[') else {
            continue;
        };
        let Some((mark, text)) = box_and_text.split_once(']') else {
            continue;
        };
        let checked = match mark {
            " " | "" => false,
            "x" | "X" => true,
            other if other.chars().count() == 1 => {
                return Err(ProjectStateError::Malformed {
                    path: path.to_string(),
                    line,
                    reason: format!("checkbox `[{other}]` is neither `[ ]` nor `[x]`"),
                });
            }
            _ => continue, // a link such as `- [text](url)`
        };
        items.push(ChecklistItem {
            text: text.trim().to_string().into(),
            checked,
            line,
        });
    }
    Ok(Checklist {
        path: path.to_string().into(),
        items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATE: &str = "# Shop — project state\n\
        \n\
        **Current phase:** S09 — staging verification\n\
        \n\
        | Gate | Status | Date | Evidence |\n\
        |------|:------:|------|----------|\n\
        | S06 Quality gates | passed | 2025-03-01 | CI run 812 |\n\
        | **S07** — Security review | ✅ passed | 2025-03-02 | docs/security-review.md |\n\
        | S08 Approval | pending | | |\n\
        \n\
        ```\n\
        Phase: S01 (an example inside a code block is ignored)\n\
        ```\n\
        \n\
        | Flag | staging | production |\n\
        |---|---|---|\n\
        | new_checkout | on | off |\n\
        | search_v2 | 10% | - |\n";

    #[test]
    fn phase_gates_and_flags_are_read_with_lines() {
        let g = parse_state("PROJECT_STATE.md", STATE, "production").unwrap();
        assert_eq!(g.phase.as_deref(), Some("S09"));
        assert_eq!(g.phase_line, Some(3));
        let gates: Vec<(&str, Option<&str>, &str, Option<u32>)> = g
            .gates
            .iter()
            .map(|x| (x.id.as_ref(), x.name.as_deref(), x.status.as_ref(), x.line))
            .collect();
        assert_eq!(
            gates,
            vec![
                ("S06", Some("Quality gates"), "passed", Some(7)),
                ("S07", Some("Security review"), "✅ passed", Some(8)),
                ("S08", Some("Approval"), "pending", Some(9)),
            ]
        );
        assert_eq!(g.gates[0].evidence.as_deref(), Some("CI run 812"));
        assert_eq!(g.gates[2].date, None);
        assert_eq!(g.feature_flags.get("new_checkout"), Some(&true));
        assert_eq!(g.feature_flags.get("search_v2"), Some(&false));
        let dev = parse_state("s.md", STATE, "dev").unwrap();
        assert!(dev.feature_flags.values().all(|c| !c), "no dev column");
    }

    #[test]
    fn malformed_state_files_name_the_line() {
        let err = |text: &str| {
            parse_state("STATE.md", text, "staging")
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("| Gate | Status |\n|---|---|\n| S06 | passed | extra |\n"),
            "STATE.md:3: this table row has 3 cells but the table header on line 1 has 2"
        );
        assert_eq!(
            err("| Gate | Status |\n|---|---|\n| S06 |  |\n"),
            "STATE.md:3: gate S06 has no status"
        );
        assert_eq!(
            err("| Gate | Status |\n|---|---|\n| S06 | passed |\n| S06 | failed |\n"),
            "STATE.md:4: gate S06 is listed twice (also on line 3)"
        );
        assert_eq!(
            err("Phase: S09\n\nPhase: S10\n"),
            "STATE.md:3: phase `S10` contradicts phase `S09` on line 1"
        );
        assert_eq!(
            err("Phase:\n"),
            "STATE.md:1: the phase line names no phase (e.g. `Phase: S09`)"
        );
    }

    #[test]
    fn a_state_file_without_phase_or_gates_reads_as_empty() {
        let g = parse_state("s.md", "# nothing here\n", "staging").unwrap();
        assert!(g.phase.is_none() && g.gates.is_empty() && g.feature_flags.is_empty());
    }

    #[test]
    fn checklist_boxes_keep_their_lines_and_odd_marks_are_errors() {
        let text = "# Security\n- [x] TLS everywhere\n* [ ] Secrets in vault\n1. [X] Dependencies scanned\n\
                    - [link](http://example.com)\n  - [ ] nested item\n```\n- [ ] in a code block\n```\n";
        let c = parse_checklist("SECURITY.md", text).unwrap();
        let got: Vec<(&str, bool, u32)> = c
            .items
            .iter()
            .map(|i| (i.text.as_ref(), i.checked, i.line))
            .collect();
        assert_eq!(
            got,
            vec![
                ("TLS everywhere", true, 2),
                ("Secrets in vault", false, 3),
                ("Dependencies scanned", true, 4),
                ("nested item", false, 6),
            ]
        );
        let err = parse_checklist("SECURITY.md", "- [y] maybe\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "SECURITY.md:1: checkbox `[y]` is neither `[ ]` nor `[x]`"
        );
    }

    #[test]
    fn files_are_read_relative_to_the_project_and_a_missing_runbook_is_reported_not_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::write(d.join("STATE.md"), "Phase: S10\n").unwrap();
        std::fs::create_dir(d.join("docs")).unwrap();
        std::fs::write(d.join("docs/SECURITY.md"), "- [x] done\n").unwrap();
        std::fs::write(d.join("docs/ROLLBACK.md"), "  \n\n").unwrap();
        let files = StateFiles {
            state_file: "STATE.md",
            security_checklist: Some("docs/SECURITY.md"),
            rollback_runbook: Some("docs/ROLLBACK.md"),
        };
        let g = read_project_state(d, &files, "production").unwrap();
        assert_eq!(g.state_file.as_deref(), Some("STATE.md"));
        assert_eq!(g.security_checklist.unwrap().items.len(), 1);
        let runbook = g.rollback_runbook.unwrap();
        assert!(
            runbook.exists && runbook.content_bytes == 0,
            "blank counts as empty"
        );

        let missing = StateFiles {
            rollback_runbook: Some("docs/NOPE.md"),
            ..files
        };
        let g = read_project_state(d, &missing, "production").unwrap();
        assert!(!g.rollback_runbook.unwrap().exists);

        let no_state = StateFiles {
            state_file: "MISSING.md",
            ..files
        };
        let err = read_project_state(d, &no_state, "production").unwrap_err();
        assert!(
            err.to_string().starts_with("could not read MISSING.md"),
            "{err}"
        );
    }
}
