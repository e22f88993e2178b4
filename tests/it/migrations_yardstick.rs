//! The migration classifier against three linters' own expectations (squawk's
//! linter tests and snapshots, eugene's generated lint reports, atlas's
//! `migrate lint` test scripts, all in the test corpus): agreement per statement
//! on the kinds opsdeploy classifies, every disagreement listed with its reason
//! in tests/data/migration-yardstick.md.
//!
//! A statement agrees when the findings opsdeploy derives from its
//! classification, restricted to what the tool checks, equal the tool's
//! findings. Tool rules outside those kinds (lock timeouts, json columns,
//! enums, TRUNCATE CASCADE, transaction modes) are left out; a rule silenced by
//! an `-- eugene: ignore` directive still counts as triggered.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use opsdeploy::adapters::migrations::{Classified, History, classify_file};
use policy_sdk::migration::{StatementKind, hazard};

use crate::support::{corpus, repo};

const YARDSTICK: &str = "tests/data/migration-yardstick.md";

/// Squawk rule (linter-tests directory) → the finding it checks.
const SQUAWK: &[(&str, &str)] = &[
    ("adding_field_with_default", "table-rewrite"),
    ("adding_foreign_key_constraint", "constraint-validation"),
    ("adding_not_null_field", "set-not-null"),
    ("adding_required_field", "add-column-required"),
    ("ban_drop_column", "drop-column"),
    ("ban_drop_not_null", "drop-not-null"),
    ("ban_drop_table", "drop-table"),
    ("changing_column_type", "alter-column-type"),
    ("constraint_missing_not_valid", "constraint-validation"),
    ("disallow_unique_constraint", "unique-constraint"),
    ("renaming_column", "rename-column"),
    ("renaming_table", "rename-table"),
    ("require_concurrent_index_creation", "index-not-concurrent"),
];

/// Eugene hint → finding; the other hints (E3 json, E4, E9 lock timeout,
/// E10, E15, W12, W13, W14) are about something else.
const EUGENE: &[(&str, &str)] = &[
    ("E1", "constraint-validation"),
    ("E2", "set-not-null"),
    ("E5", "alter-column-type"),
    ("E6", "index-not-concurrent"),
    ("E7", "unique-constraint"),
    ("E8", "exclusion-constraint"),
    ("E11", "table-rewrite"),
];

/// Atlas analyzer → finding; PG103 (CONCURRENTLY inside atlas's own
/// transaction) is about atlas's runner.
const ATLAS: &[(&str, &str)] = &[
    ("DS102", "drop-table"),
    ("DS103", "drop-column"),
    ("BC101", "rename-table"),
    ("BC102", "rename-column"),
    ("MF103", "add-column-required"),
    ("MF104", "set-not-null"),
    ("PG101", "index-not-concurrent"),
    ("PG102", "drop-index-not-concurrent"),
];

/// What opsdeploy's classification of a statement amounts to, in the
/// linters' terms.
fn findings(c: &Classified) -> BTreeSet<&'static str> {
    let mut out = BTreeSet::new();
    for a in &c.actions {
        let op = a.operation.as_str();
        match a.kind {
            StatementKind::Breaking => {
                out.insert(match op {
                    "RENAME TABLE" => "rename-table",
                    "RENAME COLUMN" => "rename-column",
                    "ALTER COLUMN TYPE" => "alter-column-type",
                    "SET NOT NULL" => "set-not-null",
                    "ADD COLUMN" => "add-column-required",
                    _ => "breaking-other",
                });
            }
            StatementKind::Contract => {
                out.insert(match op {
                    // Tightening is a contract; the linters call it set-not-null.
                    "SET NOT NULL" => "set-not-null",
                    "DROP TABLE" => "drop-table",
                    "DROP COLUMN" => "drop-column",
                    "DROP INDEX" => "drop-index",
                    "DROP CONSTRAINT" => "drop-constraint",
                    "DROP DEFAULT" => "drop-default",
                    _ => "drop-other",
                });
            }
            StatementKind::Expand | StatementKind::Other => {}
        }
        for (code, _) in &a.hazards {
            out.insert(match (*code, op) {
                (hazard::INDEX_NOT_CONCURRENT, "DROP INDEX") => "drop-index-not-concurrent",
                // A widening that rewrites the table: the linters' type-change rule.
                (hazard::TABLE_REWRITE, "ALTER COLUMN TYPE") => "alter-column-type",
                (code, _) => code,
            });
        }
    }
    out
}

/// One compared statement.
#[derive(Debug)]
struct Case {
    tool: &'static str,
    /// Corpus file, relative to the corpus directory.
    file: String,
    /// `L3`, or `2.sql #1` for eugene's per-script statement numbers.
    at: String,
    tool_says: BTreeSet<&'static str>,
    we_say: BTreeSet<&'static str>,
}

impl Case {
    fn agrees(&self) -> bool {
        self.tool_says == self.we_say
    }
}

fn show(set: &BTreeSet<&str>) -> String {
    if set.is_empty() {
        "—".to_string()
    } else {
        set.iter().copied().collect::<Vec<_>>().join(", ")
    }
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(corpus(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Statement index whose lines contain `line`.
fn statement_at(statements: &[Classified], line: u32) -> Option<usize> {
    statements
        .iter()
        .rposition(|s| s.line <= line)
        .filter(|&i| {
            let s = &statements[i];
            line < s.line + s.sql.lines().count().max(1) as u32
        })
}

fn squawk_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for (rule, finding) in SQUAWK {
        let dir = corpus("squawk/linter-tests").join(rule);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "sql"))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{}", dir.display());
        for sql_path in files {
            let rel = format!(
                "squawk/linter-tests/{rule}/{}",
                sql_path.file_name().unwrap().to_string_lossy()
            );
            let sql = read(&rel);
            let statements = classify_file(&sql, &mut History::default());
            let mut flagged = BTreeSet::new();
            let snap = sql_path.with_extension("snap");
            if snap.exists() {
                for line in std::fs::read_to_string(&snap).unwrap().lines() {
                    if let Some((n, _)) = line.split_once(" │ ")
                        && let Ok(n) = n.trim().parse::<u32>()
                    {
                        let i = statement_at(&statements, n)
                            .unwrap_or_else(|| panic!("{rel}: no statement at line {n}"));
                        flagged.insert(i);
                    }
                }
                assert!(
                    !flagged.is_empty(),
                    "{}: no diagnostics read",
                    snap.display()
                );
            }
            let covered = BTreeSet::from([*finding]);
            for (i, s) in statements.iter().enumerate() {
                cases.push(Case {
                    tool: "squawk",
                    file: rel.clone(),
                    at: format!("L{}", s.line),
                    tool_says: if flagged.contains(&i) {
                        covered.clone()
                    } else {
                        BTreeSet::new()
                    },
                    we_say: findings(s).intersection(&covered).copied().collect(),
                });
            }
        }
    }
    cases
}

/// One script of an eugene lint report: its name and statements (SQL and
/// triggered hints).
struct EugeneScript {
    name: String,
    statements: Vec<(String, BTreeSet<String>)>,
}

fn eugene_report(text: &str) -> Vec<EugeneScript> {
    let mut scripts: Vec<EugeneScript> = Vec::new();
    let mut in_sql = false;
    for line in text.lines() {
        if in_sql {
            if line == "```" {
                in_sql = false;
            } else if let Some(script) = scripts.last_mut()
                && let Some((sql, _)) = script.statements.last_mut()
            {
                sql.push_str(line);
                sql.push('\n');
            }
            continue;
        }
        if let Some(name) = line
            .strip_prefix("Script name: `")
            .and_then(|l| l.strip_suffix('`'))
        {
            scripts.push(EugeneScript {
                name: name.rsplit('/').next().unwrap_or(name).to_string(),
                statements: Vec::new(),
            });
        } else if line.starts_with("### ") && line.contains("Statement number") {
            if let Some(s) = scripts.last_mut() {
                s.statements.push((String::new(), BTreeSet::new()));
            }
        } else if line == "```sql" {
            in_sql = true;
        } else if let Some(rest) = line.strip_prefix("##### `")
            && let Some((hint, _)) = rest.split_once('`')
            && let Some(s) = scripts.last_mut()
            && let Some((_, hints)) = s.statements.last_mut()
        {
            hints.insert(hint.to_string());
        }
    }
    scripts
}

fn eugene_cases() -> Vec<Case> {
    let hints_dir = "eugene/eugene/docs/src/hints";
    let mut reports: Vec<String> = Vec::new();
    for hint in std::fs::read_dir(corpus(hints_dir)).unwrap() {
        let hint = hint.unwrap().path();
        for f in std::fs::read_dir(&hint).unwrap() {
            let f = f.unwrap().path();
            reports.push(format!(
                "{hints_dir}/{}/{}",
                hint.file_name().unwrap().to_string_lossy(),
                f.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    reports.sort();
    let covered: BTreeSet<&str> = EUGENE.iter().map(|(_, f)| *f).collect();
    let mut cases = Vec::new();
    for rel in reports {
        let mut history = History::default();
        for script in eugene_report(&read(&rel)) {
            let joined: String = script
                .statements
                .iter()
                .map(|(sql, _)| format!("{};\n", sql.trim_end()))
                .collect();
            let ours = classify_file(&joined, &mut history);
            assert_eq!(
                ours.len(),
                script.statements.len(),
                "{rel} {}: statement count differs",
                script.name
            );
            for (n, ((sql, hints), s)) in script.statements.iter().zip(&ours).enumerate() {
                let mut triggered: BTreeSet<String> = hints.clone();
                // `-- eugene: ignore E5, E4`: the rule fires, the author accepted it.
                for line in sql.lines() {
                    if let Some(ids) = line.trim().strip_prefix("-- eugene: ignore") {
                        triggered.extend(ids.split(',').map(|i| i.trim().to_string()));
                    }
                }
                cases.push(Case {
                    tool: "eugene",
                    file: rel.clone(),
                    at: format!("{} #{}", script.name, n + 1),
                    tool_says: EUGENE
                        .iter()
                        .filter(|(hint, _)| triggered.contains(*hint))
                        .map(|(_, f)| *f)
                        .collect(),
                    we_say: findings(s).intersection(&covered).copied().collect(),
                });
            }
        }
    }
    cases
}

/// Diagnostics by version: (line, analyzer code).
type AtlasDiagnostics = BTreeMap<u32, Vec<(u32, String)>>;

/// Each `atlas migrate lint --dir file://D --latest=K` of an atlas test
/// script: its directory, K, and the diagnostics of the versions it analyzes.
fn atlas_runs(script: &str) -> Vec<(String, usize, AtlasDiagnostics)> {
    let mut runs = Vec::new();
    let mut version = 0u32;
    for line in script.lines() {
        if let Some(rest) = line.strip_prefix("atlas migrate lint ") {
            let dir = rest
                .split_whitespace()
                .find_map(|w| w.strip_prefix("file://"))
                .expect("--dir file://")
                .to_string();
            let latest = rest
                .split_whitespace()
                .find_map(|w| w.strip_prefix("--latest="))
                .and_then(|n| n.parse().ok())
                .expect("--latest=N");
            runs.push((dir, latest, AtlasDiagnostics::new()));
            continue;
        }
        let Some((_, _, diags)) = runs.last_mut() else {
            continue;
        };
        if let Some(v) = line
            .split("-- analyzing version ")
            .nth(1)
            .and_then(|v| v.trim_end_matches('\'').parse().ok())
        {
            version = v;
            diags.entry(v).or_default();
        }
        if let Some(rest) = line.split("-- L").nth(1)
            && let Some((n, _)) = rest.split_once(':')
            && let Ok(n) = n.parse::<u32>()
        {
            diags.entry(version).or_default().push((n, String::new()));
        }
        if let Some(code) = line.split("analyzers#").nth(1) {
            let code: String = code
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            if let Some(last) = diags.entry(version).or_default().last_mut()
                && last.1.is_empty()
            {
                last.1 = code;
            }
        }
    }
    runs
}

fn atlas_cases() -> Vec<Case> {
    let scripts = [
        ("postgres", "cli-migrate-lint-concurrent-idx.txt"),
        ("postgres", "cli-migrate-lint-incompatible.txt"),
        ("postgres", "cli-migrate-lint-modify-nullability.txt"),
        ("sqlite", "cli-migrate-lint-add-notnull.txtar"),
        ("sqlite", "cli-migrate-lint-destructive.txtar"),
        ("sqlite", "cli-migrate-lint-incompatible.txt"),
    ];
    let covered: BTreeSet<&str> = ATLAS.iter().map(|(_, f)| *f).collect();
    let mut analyzed: BTreeMap<String, Case> = BTreeMap::new();
    for (db, script) in scripts {
        let text = read(&format!(
            "atlas/internal/integration/testdata/{db}/{script}"
        ));
        let stem = script.split('.').next().unwrap();
        for (dir, latest, diags) in atlas_runs(&text) {
            let base = format!("atlas/exploded/{db}/{stem}/{dir}");
            let mut versions: Vec<u32> = std::fs::read_dir(corpus(&base))
                .unwrap()
                .filter_map(|e| {
                    e.unwrap()
                        .file_name()
                        .to_string_lossy()
                        .strip_suffix(".sql")?
                        .parse()
                        .ok()
                })
                .collect();
            versions.sort();
            let first_analyzed = versions.len() - latest;
            let mut history = History::default();
            for (i, v) in versions.iter().enumerate() {
                let rel = format!("{base}/{v}.sql");
                let statements = classify_file(&read(&rel), &mut history);
                if i < first_analyzed {
                    continue; // baseline: already applied
                }
                let expected = diags
                    .get(v)
                    .unwrap_or_else(|| panic!("{script}: version {v} analyzed but not reported"));
                let mut tool: BTreeMap<usize, BTreeSet<&str>> = BTreeMap::new();
                for (line, code) in expected {
                    let i = statement_at(&statements, *line)
                        .unwrap_or_else(|| panic!("{rel}: no statement at line {line}"));
                    let entry = tool.entry(i).or_default();
                    if let Some((_, f)) = ATLAS.iter().find(|(c, _)| c == code) {
                        entry.insert(f);
                    }
                }
                for (i, s) in statements.iter().enumerate() {
                    analyzed.insert(
                        format!("{rel}:{}", s.line),
                        Case {
                            tool: "atlas",
                            file: rel.clone(),
                            at: format!("L{}", s.line),
                            tool_says: tool.remove(&i).unwrap_or_default(),
                            we_say: findings(s).intersection(&covered).copied().collect(),
                        },
                    );
                }
            }
        }
    }
    analyzed.into_values().collect()
}

/// The rows of the disagreement table in the yardstick file, by (file, at):
/// (tool says, opsdeploy says, reason).
fn listed_disagreements(md: &str) -> BTreeMap<(String, String), (String, String, String)> {
    let mut rows = BTreeMap::new();
    for line in md.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | tool | file | at | tool says | opsdeploy says | reason |
        if cells.len() == 8 && cells[2].starts_with('`') {
            rows.insert(
                (cells[2].trim_matches('`').to_string(), cells[3].to_string()),
                (
                    cells[4].to_string(),
                    cells[5].to_string(),
                    cells[6].to_string(),
                ),
            );
        }
    }
    rows
}

#[test]
fn classifier_agrees_with_squawk_eugene_and_atlas_on_at_least_95_percent_of_statements() {
    let mut cases = squawk_cases();
    cases.extend(eugene_cases());
    cases.extend(atlas_cases());

    let mut summary = Vec::new();
    for tool in ["squawk", "eugene", "atlas"] {
        let of: Vec<&Case> = cases.iter().filter(|c| c.tool == tool).collect();
        let agree = of.iter().filter(|c| c.agrees()).count();
        summary.push(format!("{tool} {agree}/{}", of.len()));
    }
    let total = cases.len();
    let agree = cases.iter().filter(|c| c.agrees()).count();
    let flagged: Vec<&Case> = cases
        .iter()
        .filter(|c| !c.tool_says.is_empty() || !c.we_say.is_empty())
        .collect();
    let flagged_agree = flagged.iter().filter(|c| c.agrees()).count();
    let percent = 100.0 * agree as f64 / total as f64;
    let figure = format!(
        "Agreement: {agree}/{total} statements ({percent:.1}%); {}; on statements either side flags: {flagged_agree}/{}",
        summary.join(", "),
        flagged.len()
    );
    println!("migration yardstick: {figure}");

    let md = std::fs::read_to_string(repo().join(YARDSTICK)).expect("yardstick file");
    let listed = listed_disagreements(&md);
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for c in cases.iter().filter(|c| !c.agrees()) {
        let key = (c.file.clone(), c.at.clone());
        let (tool_says, we_say) = (show(&c.tool_says), show(&c.we_say));
        println!(
            "  differs: {} {} {}: tool {tool_says}, opsdeploy {we_say}",
            c.tool, c.file, c.at
        );
        match listed.get(&key) {
            Some((t, w, reason)) if *t == tool_says && *w == we_say && !reason.is_empty() => {}
            Some(row) => problems.push(format!("row for {key:?} is out of date: {row:?}")),
            None => problems.push(format!(
                "not listed: | {} | `{}` | {} | {tool_says} | {we_say} | REASON |",
                c.tool, c.file, c.at
            )),
        }
        seen.insert(key);
    }
    for key in listed.keys().filter(|k| !seen.contains(*k)) {
        problems.push(format!("listed but agrees now (remove it): {key:?}"));
    }
    if !md.contains(&figure) {
        problems.push(format!("{YARDSTICK} must state the figure: {figure}"));
    }
    assert!(
        problems.is_empty(),
        "{YARDSTICK} is out of date:\n{}",
        problems.join("\n")
    );
    assert!(percent >= 95.0, "{figure}");
}

#[test]
fn parser_torture_files_are_classified_without_a_crash() {
    // PostgreSQL's own ALTER TABLE regression test (psql meta-commands mixed
    // in), squawk's exhaustive ALTER TABLE grammar and its invalid twin.
    for rel in [
        "squawk/postgres/regression_suite/alter_table.sql",
        "squawk/crates/squawk_parser/tests/data/ok/alter_table.sql",
        "squawk/crates/squawk_parser/tests/data/err/alter_table.sql",
        "squawk/crates/squawk_parser/tests/data/ok/drop_index.sql",
    ] {
        let sql = read(rel);
        let statements = classify_file(&sql, &mut History::default());
        let unparsed = statements.iter().filter(|s| s.unparsed).count();
        let meta = statements
            .iter()
            .filter(|s| s.sql.starts_with('\\'))
            .count();
        println!(
            "{rel}: {} statements, {unparsed} classified from keywords ({meta} psql meta-commands)",
            statements.len()
        );
        assert!(statements.len() >= 5, "{rel}");
        assert!(statements.iter().all(|s| !s.actions.is_empty()));
        for s in statements
            .iter()
            .filter(|s| s.unparsed && !s.sql.starts_with('\\'))
        {
            assert!(
                s.actions[0].reason.starts_with("not parsed by sqlparser"),
                "{rel}:{} says why it is a guess",
                s.line
            );
        }
    }
    let dir = Path::new("squawk/crates/squawk_parser/tests/data/ok");
    let drops = classify_file(
        &read(&dir.join("drop_index.sql").to_string_lossy()),
        &mut History::default(),
    );
    let drop_index: Vec<_> = drops
        .iter()
        .filter(|s| s.sql.to_ascii_uppercase().starts_with("DROP INDEX"))
        .collect();
    assert!(!drop_index.is_empty());
    assert!(
        drop_index.iter().all(|s| s
            .actions
            .iter()
            .all(|a| a.operation == "DROP INDEX" && a.kind != StatementKind::Breaking)),
        "every DROP INDEX variant is read as one, parsed or not: {drop_index:?}"
    );
}
