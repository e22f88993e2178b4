//! Third-party material stays out of the repository: tests and fixtures read
//! it from the corpus (`support::corpus_dir`, `$OPSDEPLOY_CORPUS/...` in a
//! fixture), so no file under policies/ or tests/ repeats a long line of a
//! corpus file. Lines are compared with their whitespace collapsed, so a
//! re-indented copy still counts, and the strings inside JSON documents are
//! split into lines too, so SQL or a report pasted into a fixture's input is
//! found as well.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{corpus_dir, repo};

/// Shorter lines, and lines of one or two words (identifiers, digests,
/// `"key": value` pairs), are shared by chance or on purpose: a fixture names
/// the address or the CVE a corpus file holds to say what it expects.
const MIN_CHARS: usize = 30;
const MIN_WORDS: usize = 3;

/// What the repository's directories may not repeat from the corpus.
const CHECKED: &[&str] = &["policies", "tests"];

/// The line as compared: whitespace collapsed, a list's trailing comma
/// dropped; `None` when it is too short to say it was copied.
fn significant(line: &str) -> Option<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    if words.len() < MIN_WORDS {
        return None;
    }
    let joined = words.join(" ");
    let joined = joined.trim_end_matches(',');
    (joined.chars().count() >= MIN_CHARS).then(|| joined.to_string())
}

/// A file's significant lines: those of its text (lossily decoded, so a
/// binary or UTF-16 file is still read, never skipped) and, when it is a
/// JSON document, those of every string in it.
fn lines(bytes: &[u8]) -> Vec<String> {
    let mut out: Vec<String> = String::from_utf8_lossy(bytes)
        .lines()
        .filter_map(significant)
        .collect();
    let starts_json = bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| matches!(b, b'{' | b'['));
    if starts_json && let Ok(value) = serde_json::from_slice::<Value>(bytes) {
        let mut texts = Vec::new();
        strings(&value, &mut texts);
        out.extend(texts.iter().flat_map(|t| t.lines()).filter_map(significant));
    }
    out
}

fn strings<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::String(s) => out.push(s),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => map.iter().for_each(|(k, v)| {
            out.push(k);
            strings(v, out);
        }),
        _ => {}
    }
}

/// Every file under `dir`, recursively, in a stable order.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            // Build output of a policy crate, not a file anyone wrote.
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Each significant line of the corpus, with one corpus file that holds it.
fn corpus_lines(dir: &Path) -> HashMap<String, String> {
    let mut all = Vec::new();
    files(dir, &mut all);
    let mut index = HashMap::new();
    for path in all {
        let rel = path.strip_prefix(dir).unwrap().display().to_string();
        // The corpus's own description (written with it, mirrored by
        // tests/corpus.lock.json), not third-party material.
        if rel == "PROVENANCE.md" || rel == "manifest.json" {
            continue;
        }
        for line in lines(&std::fs::read(&path).unwrap()) {
            index.entry(line).or_insert_with(|| rel.clone());
        }
    }
    index
}

/// Repository file -> (copied line, corpus file it comes from).
fn copies(
    repo: &Path,
    roots: &[&str],
    corpus: &HashMap<String, String>,
) -> BTreeMap<String, Vec<(String, String)>> {
    let mut found: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for root in roots {
        let mut all = Vec::new();
        files(&repo.join(root), &mut all);
        for path in all {
            let rel = path.strip_prefix(repo).unwrap().display().to_string();
            let mut lines = lines(&std::fs::read(&path).unwrap());
            lines.sort();
            lines.dedup();
            for line in lines {
                if let Some(source) = corpus.get(&line) {
                    found
                        .entry(rel.clone())
                        .or_default()
                        .push((line, source.clone()));
                }
            }
        }
    }
    found
}

#[test]
fn no_file_under_policies_or_tests_repeats_a_long_line_of_a_corpus_file() {
    let corpus = corpus_lines(corpus_dir());
    // An empty or misplaced corpus would make every check below pass.
    assert!(
        corpus.len() > 1_000,
        "only {} significant lines in the corpus at {}",
        corpus.len(),
        corpus_dir().display()
    );
    let found = copies(&repo(), CHECKED, &corpus);
    let report: Vec<String> = found
        .iter()
        .map(|(file, lines)| {
            let shown: Vec<String> = lines
                .iter()
                .take(3)
                .map(|(line, source)| format!("    {line:?} (corpus: {source})"))
                .collect();
            format!("{file}: {} lines, e.g.\n{}", lines.len(), shown.join("\n"))
        })
        .collect();
    assert!(
        report.is_empty(),
        "third-party text copied into the repository:\n{}\n\
         hint: read it from the corpus instead (a fixture names it as \
         $OPSDEPLOY_CORPUS/PATH), or write a case of your own",
        report.join("\n")
    );
}

#[test]
fn a_copied_line_is_found_reindented_and_inside_a_json_string() {
    let corpus: HashMap<String, String> =
        lines(b"ALTER TABLE books\n    ALTER COLUMN title SET NOT NULL;\n")
            .into_iter()
            .map(|l| (l, "upstream/V1.sql".to_string()))
            .collect();
    let tmp = tempfile::tempdir().unwrap();
    let fixtures = tmp.path().join("policies/p/fixtures");
    std::fs::create_dir_all(&fixtures).unwrap();
    std::fs::write(
        fixtures.join("case.json"),
        r#"{"sql": "ALTER TABLE books\n  ALTER   COLUMN title SET NOT NULL;\n"}"#,
    )
    .unwrap();
    std::fs::write(
        fixtures.join("own.json"),
        r#"{"sql": "ALTER TABLE products ALTER COLUMN name SET NOT NULL;"}"#,
    )
    .unwrap();
    // Build output is not checked; everything else is.
    std::fs::create_dir_all(tmp.path().join("policies/p/target")).unwrap();
    std::fs::write(
        tmp.path().join("policies/p/target/copy.sql"),
        "ALTER COLUMN title SET NOT NULL;",
    )
    .unwrap();
    let found = copies(tmp.path(), &["policies"], &corpus);
    assert_eq!(
        found.keys().collect::<Vec<_>>(),
        vec!["policies/p/fixtures/case.json"]
    );
    assert_eq!(
        found["policies/p/fixtures/case.json"],
        vec![(
            "ALTER COLUMN title SET NOT NULL;".to_string(),
            "upstream/V1.sql".to_string()
        )]
    );
}

#[test]
fn short_lines_and_identifiers_shared_with_the_corpus_are_not_copies() {
    for line in [
        "\"address\": \"aws_db_instance.default\",",
        "aws_cloudwatch_event_rule.Metricos_custom_alert_schedule_frequent[0]",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "CREATE INDEX i1 ON t(c);",
    ] {
        assert_eq!(significant(line), None, "{line}");
    }
    assert_eq!(
        significant("  ADD CONSTRAINT x CHECK (length(name) <= 100),").as_deref(),
        Some("ADD CONSTRAINT x CHECK (length(name) <= 100)")
    );
}
