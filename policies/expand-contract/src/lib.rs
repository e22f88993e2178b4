//! expand-contract: database migrations never break the running app.
//!
//! A schema change ships in steps: *expand* (additive, before the new app
//! version is deployed), deploy the app, *contract* (removals, in a later
//! release, once no running app or rollback target uses the old shape). The
//! host classifies every statement with a PostgreSQL parser; this policy checks
//! the schedule:
//!
//! - `contract-before-deploy`: a contract statement in a migration that runs
//!   before the app deploy (expand phase, or no phase declared);
//! - `breaking-change`: a statement that changes in place what a running app
//!   uses (rename, type change, SET NOT NULL, NOT NULL column without default);
//! - `contract-same-release`: a contract statement on a table this same
//!   release expands — it must wait for the next release;
//! - `not-run-on-source`: a migration not yet run on the environment this one
//!   is promoted from;
//! - `changed-after-run`: a migration file edited after it ran anywhere;
//! - warnings for lock hazards (`index-not-concurrent`, ...), statements the
//!   parser could not read (`unparsed-statement`) and `out-of-order` files.

use std::collections::BTreeMap;

use policy_sdk::migration::{Migration, Phase, Statement, StatementKind, hazard};
use policy_sdk::prelude::*;
use policy_sdk::text::short_digest;
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HazardLevel {
    Ignore,
    Warn,
    Deny,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// The phase of a migration that declares none (it runs before the app
    /// deploy unless the workflow is told otherwise).
    default_phase: Phase,
    /// What a lock or rewrite hazard is.
    hazards: HazardLevel,
    /// What a constraint tightening is (README: one rule for NOT NULL,
    /// CHECK, FOREIGN KEY, UNIQUE, PRIMARY KEY, EXCLUDE and unique indexes):
    /// a contract (`deny`, the default: after the app deploy, never in the
    /// release that expands the table) or only a warning.
    tightening: TighteningLevel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TighteningLevel {
    Warn,
    Deny,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            default_phase: Phase::Expand,
            hazards: HazardLevel::Warn,
            tightening: TighteningLevel::Deny,
        }
    }
}

/// Hazards that do not matter on a table created earlier in the same release
/// (it is new and nothing running uses it).
const TABLE_HAZARDS: &[&str] = &[
    hazard::INDEX_NOT_CONCURRENT,
    hazard::CONSTRAINT_VALIDATION,
    hazard::UNIQUE_CONSTRAINT,
    hazard::EXCLUSION_CONSTRAINT,
    hazard::TABLE_REWRITE,
];

/// `DROP COLUMN prices.price`.
fn what(s: &Statement) -> String {
    let op = s.operation.as_deref().unwrap_or("statement");
    match (&s.table, &s.column) {
        (Some(t), Some(c)) => format!("{op} {t}.{c}"),
        (Some(t), None) => format!("{op} on {t}"),
        _ => op.to_string(),
    }
}

fn at(m: &Migration, s: &Statement) -> String {
    format!("{}:{}", m.path, s.line)
}

fn located(v: Violation, m: &Migration, s: Option<&Statement>) -> Violation {
    let v = v.at_path(m.path.as_ref());
    match s {
        Some(s) => v.at_line(s.line),
        None => v,
    }
}

pub fn evaluate(input: &Input) -> Vec<Violation> {
    let settings: Settings = match input.settings_or_denial("expand-contract") {
        Ok(s) => s,
        Err(denial) => return vec![denial],
    };
    let env = input.environment.name.as_ref();
    let migrations = &input.migrations;
    let mut out = Vec::new();

    for m in migrations {
        for run in m.ran_on.iter().filter(|r| r.sha256 != m.sha256) {
            let when = run
                .at
                .as_deref()
                .map(|t| format!(" at {t}"))
                .unwrap_or_default();
            out.push(located(
                Violation::deny(
                    "changed-after-run",
                    format!(
                        "{} changed after it ran on {}{when}: it ran as sha256 {}…, the file is now {}…; restore it and put the change in a new migration",
                        m.path,
                        run.environment,
                        short_digest(&run.sha256),
                        short_digest(&m.sha256)
                    ),
                ),
                m,
                None,
            ));
        }
    }

    let ran_here = |m: &Migration| m.ran_on.iter().any(|r| r.environment == env);
    let release = Release::new(migrations.iter().filter(|m| !ran_here(m)).collect());
    let last_ran = migrations.iter().rposition(ran_here);

    for (i, m) in migrations.iter().enumerate() {
        if ran_here(m) {
            continue;
        }
        if let Some(last) = last_ran.filter(|&l| l > i) {
            out.push(located(
                Violation::warn(
                    "out-of-order",
                    format!(
                        "{} has not run on {env} but sorts before {}, which already ran there; migration tools may skip or refuse it",
                        m.path, migrations[last].path
                    ),
                ),
                m,
                None,
            ));
        }
        if let Some(source) = input.environment.promote_from.as_deref()
            && !m.ran_on.iter().any(|r| r.environment == source)
        {
            out.push(located(
                Violation::deny(
                    "not-run-on-source",
                    format!(
                        "{} has not run on {source}, which {env} is promoted from; apply it to {source} first",
                        m.path
                    ),
                ),
                m,
                None,
            ));
        }
        if m.statements.is_empty() && !m.sql.trim().is_empty() {
            out.push(located(
                Violation::deny(
                    "unclassified-migration",
                    format!(
                        "{} carries SQL but no classified statements, so it cannot be checked (the input must come from opsdeploy's migrations reader)",
                        m.path
                    ),
                ),
                m,
                None,
            ));
        }
        let phase = m.phase.unwrap_or(settings.default_phase);
        let when = match (m.phase, phase) {
            (None, Phase::Expand) => "declares no phase, so it runs before the app deploy",
            (Some(_), Phase::Expand) => "is an expand migration, run before the app deploy",
            (None, Phase::Contract) => "declares no phase, so it runs after the app deploy",
            (Some(_), Phase::Contract) => "is a contract migration, run after the app deploy",
        };
        for s in &m.statements {
            check_statement(&settings, &release, m, s, phase, when, &mut out);
        }
    }
    out
}

fn check_statement(
    settings: &Settings,
    release: &Release,
    m: &Migration,
    s: &Statement,
    phase: Phase,
    when: &str,
    out: &mut Vec<Violation>,
) {
    let reason = s.reason.as_deref().unwrap_or("");
    let tightens = s
        .hazards
        .iter()
        .any(|h| h.code == hazard::CONSTRAINT_TIGHTENING);
    let on_new_table = || {
        s.table
            .as_deref()
            .is_some_and(|t| release.created_before(m, s, t))
    };
    match (s.kind, phase) {
        // Nothing running uses a table this release created.
        (StatementKind::Contract, _) if tightens && on_new_table() => {}
        (StatementKind::Contract, _) if tightens && settings.tightening == TighteningLevel::Warn => {
            out.push(located(
                Violation::warn(
                    hazard::CONSTRAINT_TIGHTENING,
                    format!(
                        "{} at {} tightens a constraint ({} {when}): {reason}",
                        what(s),
                        at(m, s),
                        m.path
                    ),
                ),
                m,
                Some(s),
            ))
        }
        (StatementKind::Contract, Phase::Expand) => out.push(located(
            Violation::deny(
                "contract-before-deploy",
                format!(
                    "{} at {} would run while the current app is still live ({} {when}): {reason}; move it to a contract migration (`NAME.contract.sql` or `-- opsdeploy: phase=contract`) in a release after the app stops using it",
                    what(s),
                    at(m, s),
                    m.path
                ),
            ),
            m,
            Some(s),
        )),
        (StatementKind::Breaking, _) => out.push(located(
            Violation::deny(
                "breaking-change",
                format!(
                    "{} at {} breaks the running app ({} {when}): {reason}; instead expand (add the new shape), deploy the app using it, then contract in a later release",
                    what(s),
                    at(m, s),
                    m.path
                ),
            ),
            m,
            Some(s),
        )),
        (StatementKind::Contract, Phase::Contract) => {
            if let Some((em, es)) = release.expand_before(m, s) {
                out.push(located(
                    Violation::deny(
                        "contract-same-release",
                        format!(
                            "{} at {} contracts `{}`, which this release expands ({} at {}): the app version this release replaces, and any rollback to it, still uses the old shape; ship the contract in a later release",
                            what(s),
                            at(m, s),
                            s.table.as_deref().unwrap_or(""),
                            what(es),
                            at(em, es)
                        ),
                    ),
                    m,
                    Some(s),
                ));
            }
        }
        _ => {}
    }
    if s.unparsed && s.kind != StatementKind::Other {
        out.push(located(
            Violation::warn(
                "unparsed-statement",
                format!(
                    "{} could not be parsed; it was classified {} from its keywords: check it by hand",
                    at(m, s),
                    kind_name(s.kind)
                ),
            ),
            m,
            Some(s),
        ));
    }
    if settings.hazards == HazardLevel::Ignore {
        return;
    }
    for h in s
        .hazards
        .iter()
        .filter(|h| h.code != hazard::CONSTRAINT_TIGHTENING)
    {
        let new_table = TABLE_HAZARDS.contains(&h.code.as_ref())
            && s.table
                .as_deref()
                .is_some_and(|t| release.created_before(m, s, t));
        if new_table {
            continue;
        }
        let message = format!("{} at {}: {}", what(s), at(m, s), h.message);
        let v = match settings.hazards {
            HazardLevel::Deny => Violation::deny(h.code.as_ref(), message),
            _ => Violation::warn(h.code.as_ref(), message),
        };
        out.push(located(v, m, Some(s)));
    }
}

fn kind_name(k: StatementKind) -> &'static str {
    match k {
        StatementKind::Expand => "expand",
        StatementKind::Contract => "contract",
        StatementKind::Breaking => "breaking",
        StatementKind::Other => "other",
    }
}

/// Where a statement runs in this release: (pending migration, ordinal).
type Position = (usize, u32);

/// The first expand statement and the first `CREATE TABLE` of this release on
/// each table, so each contract or hazard is checked with one lookup.
#[derive(Default)]
struct Release<'p, 'a> {
    pending: Vec<&'p Migration<'a>>,
    first_expand: BTreeMap<&'p str, (Position, &'p Migration<'a>, &'p Statement<'a>)>,
    first_create: BTreeMap<&'p str, Position>,
}

impl<'p, 'a> Release<'p, 'a> {
    fn new(pending: Vec<&'p Migration<'a>>) -> Self {
        let mut release = Release {
            pending,
            ..Release::default()
        };
        for (i, m) in release.pending.iter().enumerate() {
            for s in &m.statements {
                let (Some(table), StatementKind::Expand) = (s.table.as_deref(), s.kind) else {
                    continue;
                };
                let pos = (i, s.ordinal);
                release.first_expand.entry(table).or_insert((pos, *m, s));
                if s.operation.as_deref() == Some("CREATE TABLE") {
                    release.first_create.entry(table).or_insert(pos);
                }
            }
        }
        release
    }

    fn position(&self, m: &Migration, s: &Statement) -> Position {
        let i = self
            .pending
            .iter()
            .position(|p| std::ptr::eq(*p, m))
            .unwrap_or(usize::MAX);
        (i, s.ordinal)
    }

    /// The first expand statement of this release, before `s`, on the table
    /// `s` contracts.
    fn expand_before(
        &self,
        m: &Migration,
        s: &Statement,
    ) -> Option<(&'p Migration<'a>, &'p Statement<'a>)> {
        let (pos, em, es) = self.first_expand.get(s.table.as_deref()?)?;
        (*pos < self.position(m, s)).then_some((*em, *es))
    }

    /// Whether this release creates `table` before `s`.
    fn created_before(&self, m: &Migration, s: &Statement, table: &str) -> bool {
        self.first_create
            .get(table)
            .is_some_and(|pos| *pos < self.position(m, s))
    }
}

policy_sdk::export_policy! {
    name: "expand-contract",
    description: "Database migrations follow expand, deploy app, contract: no contract or breaking change before the app deploy, no contract in the release that expands, run on the promote_from environment first, never edited after running",
    reads: [migrations],
    settings_schema: r#"{"type":"object","additionalProperties":false,"properties":{"default_phase":{"enum":["expand","contract"]},"hazards":{"enum":["ignore","warn","deny"]},"tightening":{"enum":["warn","deny"]}}}"#,
    evaluate: evaluate,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A migration: id, phase (or null), statements as (kind, operation, table), runs as (env, sha).
    fn mig(
        id: &str,
        phase: &str,
        statements: &[(&str, &str, &str)],
        runs: &[(&str, &str)],
    ) -> String {
        let st: Vec<String> = statements
            .iter()
            .enumerate()
            .map(|(i, (k, op, t))| {
                format!(
                    r#"{{"line":{},"ordinal":{},"sql":"x","kind":"{k}","operation":"{op}","table":"{t}","reason":"r"}}"#,
                    i + 1,
                    i + 1
                )
            })
            .collect();
        let runs: Vec<String> = runs
            .iter()
            .map(|(e, sha)| format!(r#"{{"environment":"{e}","sha256":"{sha}"}}"#))
            .collect();
        format!(
            r#"{{"id":"{id}","path":"db/{id}.sql","sha256":"sha-{id}","sql":"x","phase":{phase},"statements":[{}],"ran_on":[{}]}}"#,
            st.join(","),
            runs.join(",")
        )
    }

    fn run(
        env: &str,
        promote_from: Option<&str>,
        migrations: &[String],
        settings: &str,
    ) -> Vec<Violation> {
        let pf = promote_from
            .map(|p| format!(r#","promote_from":"{p}""#))
            .unwrap_or_default();
        let json = format!(
            r#"{{"schema_version":1,"environment":{{"name":"{env}","project":"p"{pf}}},"settings":{settings},"migrations":[{}]}}"#,
            migrations.join(",")
        );
        evaluate(&Input::from_json(&json).unwrap())
    }

    fn rules(v: &[Violation]) -> Vec<&str> {
        v.iter().map(|v| v.rule.as_str()).collect()
    }

    /// An expand migration adding a column to `added`, then a contract one
    /// dropping a column of `dropped`; `ran` lists where the first ran.
    fn add_then_drop(added: &str, dropped: &str, ran: &[(&str, &str)]) -> [String; 2] {
        [
            mig(
                "1_add",
                r#""expand""#,
                &[("expand", "ADD COLUMN", added)],
                ran,
            ),
            mig(
                "2_drop",
                r#""contract""#,
                &[("contract", "DROP COLUMN", dropped)],
                &[],
            ),
        ]
    }

    #[test]
    fn expand_then_contract_in_separate_releases_passes() {
        let ms = add_then_drop("t", "t", &[("staging", "sha-1_add")]);
        assert!(run("staging", None, &ms, "null").is_empty());
    }

    #[test]
    fn contract_before_the_deploy_is_denied_and_an_undeclared_phase_means_before() {
        let ms = [mig("1", "null", &[("contract", "DROP TABLE", "t")], &[])];
        let v = run("staging", None, &ms, "null");
        assert_eq!(rules(&v), vec!["contract-before-deploy"]);
        assert!(
            v[0].message.contains("declares no phase"),
            "{}",
            v[0].message
        );
        assert_eq!(
            (v[0].path.as_deref(), v[0].line),
            (Some("db/1.sql"), Some(1))
        );
        assert!(run("staging", None, &ms, r#"{"default_phase":"contract"}"#).is_empty());
    }

    #[test]
    fn breaking_changes_are_denied_in_either_phase() {
        for phase in [r#""expand""#, r#""contract""#] {
            let ms = [mig("1", phase, &[("breaking", "RENAME COLUMN", "t")], &[])];
            assert_eq!(
                rules(&run("staging", None, &ms, "null")),
                vec!["breaking-change"]
            );
        }
    }

    #[test]
    fn a_contract_in_the_release_that_expands_the_table_is_denied() {
        let v = run(
            "staging",
            None,
            &add_then_drop("prices", "prices", &[]),
            "null",
        );
        assert_eq!(rules(&v), vec!["contract-same-release"]);
        assert!(v[0].message.contains("db/1_add.sql:1"), "{}", v[0].message);
        let other_table = add_then_drop("users", "prices", &[]);
        assert!(run("staging", None, &other_table, "null").is_empty());
    }

    #[test]
    fn production_needs_staging_to_have_run_it_and_edits_after_a_run_are_denied() {
        let ms = [
            mig(
                "1",
                r#""expand""#,
                &[("expand", "CREATE TABLE", "t")],
                &[("staging", "sha-1")],
            ),
            mig("2", r#""expand""#, &[("expand", "ADD COLUMN", "t")], &[]),
            mig(
                "3",
                r#""expand""#,
                &[("other", "UPDATE", "t")],
                &[("staging", "edited")],
            ),
        ];
        let v = run("production", Some("staging"), &ms, "null");
        assert_eq!(rules(&v), vec!["changed-after-run", "not-run-on-source"]);
        assert_eq!(v[1].path.as_deref(), Some("db/2.sql"));
    }

    #[test]
    fn hazards_warn_unless_the_table_is_new_in_this_release() {
        let with_hazard = |create: bool| {
            let mut st = Vec::new();
            if create {
                st.push(r#"{"line":1,"ordinal":1,"sql":"x","kind":"expand","operation":"CREATE TABLE","table":"t"}"#);
            }
            st.push(r#"{"line":2,"ordinal":2,"sql":"x","kind":"expand","operation":"CREATE INDEX","table":"t","hazards":[{"code":"index-not-concurrent","message":"blocks writes"}]}"#);
            format!(
                r#"{{"id":"1","path":"db/1.sql","sha256":"s","sql":"x","statements":[{}]}}"#,
                st.join(",")
            )
        };
        let v = run("staging", None, &[with_hazard(false)], "null");
        assert_eq!(rules(&v), vec!["index-not-concurrent"]);
        assert_eq!(v[0].severity, Severity::Warn);
        assert!(run("staging", None, &[with_hazard(true)], "null").is_empty());
        let v = run(
            "staging",
            None,
            &[with_hazard(false)],
            r#"{"hazards":"deny"}"#,
        );
        assert_eq!(v[0].severity, Severity::Deny);
        assert!(
            run(
                "staging",
                None,
                &[with_hazard(false)],
                r#"{"hazards":"ignore"}"#
            )
            .is_empty()
        );
    }

    #[test]
    fn a_tightening_is_a_contract_unless_settings_make_it_a_warning_or_the_table_is_new() {
        let tightening = |create: bool| {
            let mut st = Vec::new();
            if create {
                st.push(r#"{"line":1,"ordinal":1,"sql":"x","kind":"expand","operation":"CREATE TABLE","table":"t"}"#);
            }
            st.push(r#"{"line":2,"ordinal":2,"sql":"x","kind":"contract","operation":"SET NOT NULL","table":"t","reason":"r","hazards":[{"code":"constraint-tightening","message":"narrows"}]}"#);
            format!(
                r#"{{"id":"1","path":"db/1.sql","sha256":"s","sql":"x","statements":[{}]}}"#,
                st.join(",")
            )
        };
        let v = run("staging", None, &[tightening(false)], "null");
        assert_eq!(rules(&v), vec!["contract-before-deploy"]);
        let v = run(
            "staging",
            None,
            &[tightening(false)],
            r#"{"tightening":"warn"}"#,
        );
        assert_eq!(rules(&v), vec!["constraint-tightening"]);
        assert_eq!(v[0].severity, Severity::Warn);
        assert!(run("staging", None, &[tightening(true)], "null").is_empty());
    }

    #[test]
    fn migrations_that_ran_here_are_not_pending_but_out_of_order_ones_warn() {
        let ms = [
            mig(
                "1",
                "null",
                &[("contract", "DROP TABLE", "t")],
                &[("staging", "sha-1")],
            ),
            mig("2", r#""expand""#, &[("expand", "ADD COLUMN", "t")], &[]),
            mig(
                "3",
                r#""expand""#,
                &[("expand", "ADD COLUMN", "u")],
                &[("staging", "sha-3")],
            ),
        ];
        let v = run("staging", None, &ms, "null");
        assert_eq!(rules(&v), vec!["out-of-order"]);
        assert_eq!(v[0].path.as_deref(), Some("db/2.sql"));
    }

    #[test]
    fn sql_without_classification_fails_closed() {
        let m = r#"{"id":"1","path":"db/1.sql","sha256":"s","sql":"DROP TABLE t;"}"#.to_string();
        assert_eq!(
            rules(&run("staging", None, &[m], "null")),
            vec!["unclassified-migration"]
        );
    }
}
