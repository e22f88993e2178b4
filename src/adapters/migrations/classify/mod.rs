//! Classifies migration statements as expand / contract / breaking / other,
//! for PostgreSQL, from the point of view of the app version that is running
//! while the migration runs.
//!
//! Two readers describe what a statement does as [`change::Change`]s:
//! `ast.rs` from `sqlparser`'s parse (PostgreSQL dialect), `words.rs` from
//! the keywords of what the parser cannot read (psql meta-commands, dialect
//! gaps), marked `unparsed`. One rule table, `rules.rs`, judges both, so a
//! verdict or a message never depends on which reader understood the
//! statement. Objects created earlier in the same file are new: nothing
//! running uses them, so changing them is safe; `compat.rs` looks across a
//! file for renames kept compatible.

mod ast;
mod change;
mod compat;
mod rules;
mod scope;
mod types;
mod words;

use policy_sdk::migration::StatementKind;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use super::split::{Piece, split};
use change::Change;
use scope::FileScope;

pub use scope::History;

/// One action of a statement (an `ALTER TABLE` may have several).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub kind: StatementKind,
    /// e.g. `ADD COLUMN`, `DROP TABLE`, `CREATE INDEX`.
    pub operation: String,
    pub table: Option<String>,
    pub column: Option<String>,
    pub reason: String,
    /// `(code, message)`, codes from [`policy_sdk::migration::hazard`].
    pub hazards: Vec<(&'static str, String)>,
}

/// One statement of a file and its actions.
#[derive(Debug, Clone)]
pub struct Classified {
    /// 1-based position in the file.
    pub ordinal: u32,
    pub line: u32,
    pub sql: String,
    pub unparsed: bool,
    pub actions: Vec<Action>,
}

/// Classifies every statement of one file, in order.
pub fn classify_file(sql: &str, history: &mut History) -> Vec<Classified> {
    let mut scope = FileScope::default();
    let mut out: Vec<Classified> = split(sql)
        .pieces
        .iter()
        .enumerate()
        .map(|(i, piece)| {
            let mut c = classify_piece(piece, history, &mut scope);
            c.ordinal = i as u32 + 1;
            c
        })
        .collect();
    compat::keep_compatible_renames(&mut out);
    out
}

fn classify_piece(piece: &Piece, history: &mut History, scope: &mut FileScope) -> Classified {
    let (changes, unparsed) = read(piece);
    let actions = changes
        .into_iter()
        .map(|change| {
            let mut action = rules::judge(change, history, scope);
            if let Some(e) = &unparsed {
                action.reason = format!(
                    "not parsed by sqlparser ({e}); classified from its keywords: {}",
                    action.reason
                );
            }
            action
        })
        .collect();
    Classified {
        ordinal: 0,
        line: piece.line,
        sql: piece.text.to_string(),
        unparsed: piece.meta_command || unparsed.is_some(),
        actions,
    }
}

/// What a piece does, and the parser's error when it was read from its
/// keywords instead.
fn read(piece: &Piece) -> (Vec<Change>, Option<String>) {
    if piece.meta_command {
        return (vec![words::meta_command(piece.text)], None);
    }
    match Parser::parse_sql(&PostgreSqlDialect {}, piece.text) {
        Ok(statements) if statements.is_empty() => (vec![Change::Empty], None),
        Ok(statements) => (
            statements
                .iter()
                .flat_map(|s| ast::changes(s, piece.text))
                .collect(),
            None,
        ),
        Err(e) => {
            // sqlparser has no `DROP INDEX CONCURRENTLY`: parse the rest and
            // put it back.
            if let Some(text) = without_concurrently(piece.text)
                && let Ok(statements) = Parser::parse_sql(&PostgreSqlDialect {}, &text)
            {
                let changes = statements
                    .iter()
                    .flat_map(|s| ast::changes(s, &text))
                    .map(|mut c| {
                        if let Change::Drop { concurrently, .. } = &mut c {
                            *concurrently = true;
                        }
                        c
                    })
                    .collect();
                return (changes, None);
            }
            (words::changes(piece.text), Some(e.to_string()))
        }
    }
}

/// `DROP INDEX CONCURRENTLY rest` as `DROP INDEX rest`.
fn without_concurrently(text: &str) -> Option<String> {
    let mut rest = text.trim_start();
    for word in ["DROP", "INDEX", "CONCURRENTLY"] {
        let (head, tail) = rest.split_at_checked(word.len())?;
        if !head.eq_ignore_ascii_case(word) || !tail.starts_with(char::is_whitespace) {
            return None;
        }
        rest = tail.trim_start();
    }
    Some(format!("DROP INDEX {rest}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use policy_sdk::migration::hazard;

    fn kinds(sql: &str) -> Vec<(StatementKind, String, Vec<&'static str>)> {
        let mut history = History::default();
        classify_file(sql, &mut history)
            .into_iter()
            .flat_map(|c| c.actions)
            .map(|a| (a.kind, a.operation, a.hazards.iter().map(|h| h.0).collect()))
            .collect()
    }

    fn kind(sql: &str) -> StatementKind {
        let k = kinds(sql);
        assert_eq!(k.len(), 1, "{k:?}");
        k[0].0
    }

    use StatementKind::{Breaking, Contract, Expand, Other};

    #[test]
    fn additive_changes_are_expand() {
        assert_eq!(kind("CREATE TABLE t (id int)"), Expand);
        assert_eq!(kind("ALTER TABLE t ADD COLUMN c int"), Expand);
        assert_eq!(
            kind("ALTER TABLE t ADD COLUMN c int NOT NULL DEFAULT 0"),
            Expand
        );
        assert_eq!(kind("CREATE INDEX CONCURRENTLY i ON t (c)"), Expand);
        assert_eq!(kind("ALTER TABLE t ALTER COLUMN c DROP NOT NULL"), Expand);
    }

    #[test]
    fn removals_are_contract_and_in_place_changes_are_breaking() {
        assert_eq!(kind("DROP TABLE t"), Contract);
        assert_eq!(kind("ALTER TABLE t DROP COLUMN c"), Contract);
        assert_eq!(kind("ALTER TABLE t DROP CONSTRAINT k"), Contract);
        assert_eq!(kind("ALTER TABLE t RENAME COLUMN a TO b"), Breaking);
        assert_eq!(kind("ALTER TABLE t RENAME TO u"), Breaking);
        assert_eq!(kind("ALTER TABLE t ALTER COLUMN c TYPE bigint"), Breaking);
        assert_eq!(kind("ALTER TABLE t ALTER COLUMN c SET NOT NULL"), Contract);
        assert_eq!(kind("ALTER TABLE t ADD COLUMN c int NOT NULL"), Breaking);
    }

    #[test]
    fn data_and_session_statements_are_other() {
        assert_eq!(kind("UPDATE t SET c = 1"), Other);
        assert_eq!(kind("SET LOCAL lock_timeout = '2s'"), Other);
        assert_eq!(kind("BEGIN"), Other);
        assert_eq!(kind("TRUNCATE a, b CASCADE"), Other);
    }

    #[test]
    fn objects_created_in_the_same_file_are_new() {
        let k = kinds(
            "CREATE TABLE t (id int); CREATE INDEX i ON t (id); ALTER TABLE t ADD COLUMN c int NOT NULL;\
             ALTER TABLE t RENAME COLUMN c TO d; DROP TABLE t",
        );
        assert!(
            k.iter()
                .all(|(kind, _, hazards)| matches!(kind, Expand | Other) && hazards.is_empty()),
            "{k:?}"
        );
    }

    #[test]
    fn index_without_concurrently_on_an_existing_table_is_a_hazard() {
        let k = kinds("CREATE INDEX i ON t (c)");
        assert_eq!(k[0].2, vec![hazard::INDEX_NOT_CONCURRENT]);
    }

    #[test]
    fn drop_index_concurrently_if_exists_parses_and_only_a_unique_index_is_a_contract() {
        let mut history = History::default();
        classify_file(
            "CREATE INDEX i1 ON t (c); CREATE UNIQUE INDEX CONCURRENTLY u1 ON t (d)",
            &mut history,
        );
        let c = classify_file(
            "DROP INDEX CONCURRENTLY IF EXISTS i1; DROP INDEX CONCURRENTLY u1; DROP INDEX users_email_key; DROP INDEX idx_orders_created",
            &mut history,
        );
        assert!(c.iter().all(|s| !s.unparsed), "{c:?}");
        let got: Vec<_> = c
            .iter()
            .map(|s| (s.actions[0].kind, s.actions[0].hazards.len()))
            .collect();
        assert_eq!(
            got,
            vec![(Other, 0), (Contract, 0), (Contract, 1), (Other, 1)]
        );
        assert!(c[1].actions[0].reason.contains("ON CONFLICT"));
    }

    #[test]
    fn dropping_the_default_of_a_not_null_column_breaks_the_running_inserts() {
        let k = kinds(
            "ALTER TABLE t ADD COLUMN c int DEFAULT 0 NOT NULL; ALTER TABLE t ALTER COLUMN c DROP DEFAULT",
        );
        assert_eq!(k[1].0, Breaking, "{k:?}");
        let k = kinds(
            "ALTER TABLE t ADD COLUMN c int DEFAULT 0; ALTER TABLE t ALTER COLUMN c DROP DEFAULT",
        );
        assert_eq!(k[1].0, Other, "a nullable column gets NULL: {k:?}");
        let mut history = History::default();
        classify_file(
            "ALTER TABLE t ADD COLUMN c int NOT NULL DEFAULT 0",
            &mut history,
        );
        let later = classify_file("ALTER TABLE t ALTER COLUMN c DROP DEFAULT", &mut history);
        assert_eq!(later[0].actions[0].kind, Contract);
        assert!(later[0].actions[0].reason.contains("not-null violation"));
    }

    #[test]
    fn widening_a_known_column_type_is_expand_and_narrowing_is_breaking() {
        let k = kinds(
            "CREATE TABLE t (a varchar(100), b varchar, n numeric(10,2), i int, s text);\
             SELECT 1",
        );
        assert_eq!(k[0].0, Expand);
        let mut history = History::default();
        classify_file(
            "CREATE TABLE t (a varchar(100), b varchar, n numeric(10,2), i int, s text)",
            &mut history,
        );
        let c = classify_file(
            "ALTER TABLE t ALTER COLUMN a TYPE varchar(200);\
             ALTER TABLE t ALTER COLUMN b TYPE text;\
             ALTER TABLE t ALTER COLUMN n TYPE numeric(12,2);\
             ALTER TABLE t ALTER COLUMN i TYPE bigint;\
             ALTER TABLE t ALTER COLUMN s TYPE varchar(10);\
             ALTER TABLE t ALTER COLUMN a TYPE int USING length(a)",
            &mut history,
        );
        let got: Vec<_> = c
            .iter()
            .map(|s| {
                (
                    s.actions[0].kind,
                    s.actions[0].hazards.iter().map(|h| h.0).collect::<Vec<_>>(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (Expand, vec![]),
                (Expand, vec![]),
                (Expand, vec![]),
                (Expand, vec![hazard::TABLE_REWRITE]),
                (Breaking, vec![]),
                (Breaking, vec![]),
            ]
        );
    }

    #[test]
    fn every_tightening_follows_one_rule() {
        // On existing columns, NOT VALID or not: a contract, marked as tightening.
        for sql in [
            "ALTER TABLE t ALTER COLUMN c SET NOT NULL",
            "ALTER TABLE t ADD CONSTRAINT k CHECK (c > 0)",
            "ALTER TABLE t ADD CONSTRAINT k CHECK (c > 0) NOT VALID",
            "ALTER TABLE t ADD CONSTRAINT k FOREIGN KEY (c) REFERENCES u (id)",
            "ALTER TABLE t ADD CONSTRAINT k FOREIGN KEY (c) REFERENCES u (id) NOT VALID",
            "ALTER TABLE t ADD CONSTRAINT k UNIQUE (c)",
            "ALTER TABLE t ADD PRIMARY KEY (c)",
            "CREATE UNIQUE INDEX k ON t (c)",
            "CREATE UNIQUE INDEX CONCURRENTLY k ON t (c)",
        ] {
            let k = kinds(sql);
            assert_eq!(k[0].0, Contract, "{sql}");
            assert!(
                k[0].2.contains(&hazard::CONSTRAINT_TIGHTENING),
                "{sql}: {k:?}"
            );
        }
        // On a table or on columns this file created, or over an index that
        // already enforces it: expand.
        for sql in [
            "ALTER TABLE t ADD CONSTRAINT k UNIQUE USING INDEX k_idx",
            "CREATE TABLE n (c int); ALTER TABLE n ADD CONSTRAINT k UNIQUE (c)",
            "ALTER TABLE t ADD COLUMN u int; ALTER TABLE t ADD CONSTRAINT k FOREIGN KEY (u) REFERENCES u (id)",
            "ALTER TABLE t ADD COLUMN u int DEFAULT 0; ALTER TABLE t ALTER COLUMN u SET NOT NULL",
        ] {
            assert!(
                kinds(sql)
                    .iter()
                    .all(|k| k.0 == Expand && !k.2.contains(&hazard::CONSTRAINT_TIGHTENING)),
                "{sql}: {:?}",
                kinds(sql)
            );
        }
        // NOT NULL on a column the running version never writes breaks its inserts.
        for sql in [
            "ALTER TABLE t ADD COLUMN u int; ALTER TABLE t ALTER COLUMN u SET NOT NULL",
            "ALTER TABLE t ADD COLUMN u int; ALTER TABLE t ADD CONSTRAINT u_nn CHECK (u IS NOT NULL) NOT VALID",
        ] {
            assert_eq!(kinds(sql)[1].0, Breaking, "{sql}");
        }
    }

    #[test]
    fn the_keyword_reader_and_the_parser_share_verdicts_and_messages() {
        for sql in [
            "ALTER TABLE t RENAME COLUMN a TO b",
            "ALTER TABLE t RENAME TO u",
            "ALTER TABLE t ALTER COLUMN c SET NOT NULL",
            "ALTER TABLE t ALTER COLUMN c TYPE bigint",
            "ALTER TABLE t ALTER COLUMN c TYPE text",
            "ALTER TABLE t ALTER COLUMN c DROP DEFAULT",
            "ALTER TABLE t DROP COLUMN c",
            "ALTER TABLE t ADD COLUMN c int NOT NULL",
            "ALTER TABLE t ADD COLUMN c int DEFAULT 0",
            "ALTER TABLE t ADD CONSTRAINT k CHECK (c > 0) NOT VALID",
            "ALTER TABLE t ADD CONSTRAINT k UNIQUE (c)",
            "ALTER TABLE t ADD CONSTRAINT k FOREIGN KEY (c) REFERENCES u (id)",
            "ALTER TABLE t DROP CONSTRAINT orders_user_id_fkey",
            "DROP TABLE t",
            "DROP INDEX i",
            "CREATE INDEX i ON t (c)",
        ] {
            let judge_all = |changes: Vec<Change>| -> Vec<Action> {
                let (mut history, mut scope) = (History::default(), FileScope::default());
                changes
                    .into_iter()
                    .map(|c| rules::judge(c, &mut history, &mut scope))
                    .collect()
            };
            let parsed = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap();
            let from_ast = judge_all(parsed.iter().flat_map(|s| ast::changes(s, sql)).collect());
            let from_words = judge_all(words::changes(sql));
            assert_eq!(from_ast, from_words, "{sql}");
        }
    }

    #[test]
    fn a_breaking_or_contract_verdict_names_the_running_version_query() {
        let k = classify_file(
            "ALTER TABLE t RENAME COLUMN a TO b; ALTER TABLE t RENAME TO u; ALTER TABLE x ALTER COLUMN c SET NOT NULL;\
             ALTER TABLE x ALTER COLUMN c TYPE int; ALTER TABLE x DROP COLUMN d; ALTER TABLE x ADD COLUMN e int NOT NULL;\
             DROP TABLE y; DROP INDEX y_uniq; ALTER TABLE x DROP CONSTRAINT k; ALTER TABLE x ADD CONSTRAINT f FOREIGN KEY (c) REFERENCES u (id)",
            &mut History::default(),
        );
        for a in k.iter().flat_map(|s| &s.actions) {
            assert!(matches!(a.kind, Breaking | Contract), "{a:?}");
            assert!(a.reason.contains("the running version's"), "{a:?}");
            let sentences = a.reason.replace("...", "…").matches(". ").count();
            assert_eq!(sentences, 0, "one sentence: {}", a.reason);
        }
    }

    #[test]
    fn each_alter_table_action_is_classified() {
        let k = kinds("ALTER TABLE t ADD COLUMN a int, DROP COLUMN b, ALTER COLUMN c SET NOT NULL");
        let got: Vec<_> = k.iter().map(|(kind, op, _)| (*kind, op.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (Expand, "ADD COLUMN"),
                (Contract, "DROP COLUMN"),
                (Contract, "SET NOT NULL")
            ]
        );
    }

    #[test]
    fn set_not_null_behind_a_validated_check_is_expand() {
        let mut history = History::default();
        classify_file(
            "ALTER TABLE t ADD CONSTRAINT t_c_nn CHECK (c IS NOT NULL) NOT VALID",
            &mut history,
        );
        let before = classify_file("ALTER TABLE t ALTER COLUMN c SET NOT NULL", &mut history);
        assert_eq!(before[0].actions[0].kind, Contract, "not validated yet");
        classify_file("ALTER TABLE t VALIDATE CONSTRAINT t_c_nn", &mut history);
        let after = classify_file("ALTER TABLE t ALTER COLUMN c SET NOT NULL", &mut history);
        assert_eq!(after[0].actions[0].kind, Expand);
    }

    #[test]
    fn volatile_defaults_serial_and_stored_columns_rewrite_the_table() {
        for sql in [
            "ALTER TABLE t ADD COLUMN c uuid DEFAULT gen_random_uuid()",
            "ALTER TABLE t ADD COLUMN id serial",
            "ALTER TABLE t ADD COLUMN c numeric GENERATED ALWAYS AS (a + b) STORED",
        ] {
            assert_eq!(kinds(sql)[0].2, vec![hazard::TABLE_REWRITE], "{sql}");
        }
        assert!(
            kinds("ALTER TABLE t ADD COLUMN c timestamptz DEFAULT now()")[0]
                .2
                .is_empty()
        );
    }

    #[test]
    fn a_rename_kept_compatible_later_in_the_file_is_expand() {
        let k = kinds(
            "ALTER TABLE users RENAME TO people; CREATE VIEW users AS SELECT * FROM people;\
             ALTER TABLE posts RENAME COLUMN id TO uid; ALTER TABLE posts ADD COLUMN id int DEFAULT 0;\
             ALTER TABLE cards RENAME COLUMN id TO cid",
        );
        let kinds: Vec<StatementKind> = k.iter().map(|x| x.0).collect();
        assert_eq!(kinds, vec![Expand, Expand, Expand, Expand, Breaking]);
    }

    #[test]
    fn unknown_and_unparsable_ddl_leans_to_breaking() {
        assert_eq!(kind("ALTER TABLE `users` RENAME TO `people`"), Breaking);
        assert_eq!(
            kind("DO $$ BEGIN ALTER TABLE t DROP COLUMN c; END $$"),
            Breaking
        );
        assert_eq!(kind("\\i more.sql"), Breaking);
        assert_eq!(kind("\\set VERBOSITY terse"), Other);
    }
}
