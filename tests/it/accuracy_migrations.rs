//! The expand-contract yardstick: does opsdeploy tell a migration that breaks
//! the running version from one that does not? Cases the team wrote from
//! PostgreSQL's documented semantics (`tests/data/accuracy/migrations.txt`)
//! and labelled migrations of the corpus (squawk's linter tests, eugene's
//! examples; labels in `tests/data/accuracy/migrations-corpus.tsv`), each
//! with one line of reasoning. opsdeploy says "breaks" when a statement of
//! the migration is classified breaking or contract: what expand-contract
//! denies in a migration that runs before the app deploy.
//!
//! `expand_contract_yardstick_meets_its_target` holds accuracy ≥ 0.95 and
//! prints every disagreement; `bench/accuracy/peers.sh` runs squawk on the
//! same cases (exported by the ignored `export_migration_yardstick`).

use std::path::Path;

use opsdeploy::adapters::migrations::{History, classify_file};
use policy_sdk::migration::StatementKind;
use serde::Serialize;

use crate::support::{corpus, repo};

/// One labelled migration: the files that already ran, then the files that
/// run now.
#[derive(Debug, Serialize)]
pub struct Case {
    pub name: String,
    pub source: &'static str,
    pub before: Vec<String>,
    pub migration: Vec<String>,
    pub breaks: bool,
    pub why: String,
}

fn team_cases() -> Vec<Case> {
    let text = std::fs::read_to_string(repo().join("tests/data/accuracy/migrations.txt")).unwrap();
    let mut cases = Vec::new();
    for block in text.split("\n== ").skip(1) {
        let (name, body) = block.split_once('\n').expect("a case has a body");
        let field = |f: &str| {
            body.lines()
                .find_map(|l| l.strip_prefix(f))
                .unwrap_or_else(|| panic!("case `{name}` has no `{f}`"))
                .trim()
                .to_string()
        };
        let breaks = match field("breaks:").as_str() {
            "yes" => true,
            "no" => false,
            other => panic!("case `{name}`: breaks must be yes or no, not {other}"),
        };
        let (_, sql) = body.split_once("-- before\n").expect("-- before");
        let (before, migration) = sql.split_once("-- migration\n").expect("-- migration");
        cases.push(Case {
            name: name.trim().to_string(),
            source: "team",
            before: vec![before.to_string()],
            migration: vec![migration.to_string()],
            breaks,
            why: field("why:"),
        });
    }
    cases
}

/// An eugene example's steps (`-- 1.sql`, `-- 2.sql`, ...): the first ran,
/// the rest are the migration; any other file is one migration.
fn corpus_cases() -> Vec<Case> {
    let labels =
        std::fs::read_to_string(repo().join("tests/data/accuracy/migrations-corpus.tsv")).unwrap();
    let mut cases = Vec::new();
    for line in labels
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let mut cells = line.splitn(3, '\t');
        let (label, file, why) = (
            cells.next().unwrap(),
            cells.next().expect("a file"),
            cells.next().expect("a reason"),
        );
        let text = std::fs::read_to_string(corpus(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let mut steps: Vec<String> = Vec::new();
        for l in text.lines() {
            if l.starts_with("-- ")
                && l.ends_with(".sql")
                && l[3..l.len() - 4].parse::<u32>().is_ok()
            {
                steps.push(String::new());
            } else if let Some(step) = steps.last_mut() {
                step.push_str(l);
                step.push('\n');
            }
        }
        let (before, migration) = if steps.len() >= 2 {
            (vec![steps.remove(0)], steps)
        } else {
            (Vec::new(), vec![text])
        };
        cases.push(Case {
            name: file.to_string(),
            source: if file.starts_with("eugene") {
                "eugene"
            } else {
                "squawk"
            },
            before,
            migration,
            breaks: match label {
                "yes" => true,
                "no" => false,
                other => panic!("{file}: label must be yes or no, not {other}"),
            },
            why: why.to_string(),
        });
    }
    cases
}

pub fn cases() -> Vec<Case> {
    let mut all = team_cases();
    all.extend(corpus_cases());
    all
}

/// Whether opsdeploy's classification says the migration breaks the
/// running version, and the reasons it gives.
pub fn opsdeploy_verdict(case: &Case) -> (bool, Vec<String>) {
    let mut history = History::default();
    for sql in &case.before {
        classify_file(sql, &mut history);
    }
    let mut reasons = Vec::new();
    for sql in &case.migration {
        for statement in classify_file(sql, &mut history) {
            for a in statement.actions {
                if matches!(a.kind, StatementKind::Breaking | StatementKind::Contract) {
                    reasons.push(format!("{} {}: {}", a.operation, kind(a.kind), a.reason));
                }
            }
        }
    }
    (!reasons.is_empty(), reasons)
}

fn kind(k: StatementKind) -> &'static str {
    match k {
        StatementKind::Breaking => "breaking",
        StatementKind::Contract => "contract",
        StatementKind::Expand => "expand",
        StatementKind::Other => "other",
    }
}

#[test]
fn expand_contract_yardstick_meets_its_target() {
    let cases = cases();
    let mut by_source: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
    let mut wrong = Vec::new();
    for case in &cases {
        let (says, reasons) = opsdeploy_verdict(case);
        let row = by_source.entry(case.source).or_default();
        row.0 += 1;
        if says == case.breaks {
            row.1 += 1;
        } else {
            wrong.push(format!(
                "{} ({}): labelled breaks={}, because {}; opsdeploy says {}",
                case.name,
                case.source,
                case.breaks,
                case.why,
                if says {
                    reasons.join(" | ")
                } else {
                    "it does not break".into()
                }
            ));
        }
    }
    let total = cases.len();
    let right: usize = by_source.values().map(|r| r.1).sum();
    let accuracy = right as f64 / total as f64;
    for (source, (n, ok)) in &by_source {
        println!("{source:<8} {ok}/{n}");
    }
    println!("expand-contract yardstick: accuracy {accuracy:.3} ({right}/{total})");
    for w in &wrong {
        println!("  {w}");
    }
    assert!(total >= 100, "the yardstick shrank: {total} cases");
    let breaking = cases.iter().filter(|c| c.breaks).count();
    assert!(
        breaking * 3 >= total && breaking * 3 <= total * 2,
        "the yardstick should hold breaking and safe migrations alike: {breaking} of {total} break"
    );
    assert!(accuracy >= 0.95, "accuracy {accuracy:.3} < 0.95");
}

#[test]
fn every_breaking_verdict_names_the_running_version_query() {
    for case in cases().iter().filter(|c| c.source == "team") {
        for reason in opsdeploy_verdict(case).1 {
            assert!(
                reason.contains("the running version's") || reason.contains("treated as breaking"),
                "{}: {reason}",
                case.name
            );
        }
    }
}

/// Writes each case's files, labels and opsdeploy's verdicts to
/// `$OPSDEPLOY_YARDSTICK_DIR/migrations` for `bench/accuracy/peers.sh`.
#[test]
#[ignore = "run by bench/accuracy/peers.sh"]
fn export_migration_yardstick() {
    let out = std::env::var_os("OPSDEPLOY_YARDSTICK_DIR")
        .expect("set OPSDEPLOY_YARDSTICK_DIR to the directory to write the yardstick into");
    let dir = Path::new(&out).join("migrations");
    #[derive(Serialize)]
    struct Labelled<'a> {
        dir: String,
        #[serde(flatten)]
        case: &'a Case,
        opsdeploy: bool,
    }
    let cases = cases();
    let mut labels = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let d = dir.join(format!("case-{i:03}"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("before.sql"), case.before.join("\n")).unwrap();
        std::fs::write(d.join("migration.sql"), case.migration.join("\n")).unwrap();
        labels.push(Labelled {
            dir: format!("case-{i:03}"),
            case,
            opsdeploy: opsdeploy_verdict(case).0,
        });
    }
    std::fs::write(
        dir.join("labels.json"),
        serde_json::to_string_pretty(&labels).unwrap(),
    )
    .unwrap();
    println!("wrote {} cases to {}", labels.len(), dir.display());
}
