//! Classifies migration statements as expand / contract / breaking / other,
//! for PostgreSQL, from the point of view of the app version that is running
//! while the migration runs.
//!
//! Statements are parsed with `sqlparser` (PostgreSQL dialect). What it
//! cannot parse (psql meta-commands, dialect gaps such as `DROP INDEX
//! CONCURRENTLY`) is classified from its keywords instead, leaning to the
//! riskier kind, and marked `unparsed`. Objects created earlier in the same
//! file are new: nothing running uses them, so changing them is safe.

use std::collections::{HashMap, HashSet};

use policy_sdk::migration::{StatementKind, hazard};
use sqlparser::ast::{
    AlterColumnOperation, AlterTableOperation, ColumnDef, ColumnOption, Expr, GeneratedAs,
    ObjectName, ObjectType, Statement as Ast, TableConstraint,
};
use sqlparser::dialect::{GenericDialect, PostgreSqlDialect};
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};

use super::split::{Piece, split};

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

/// What the classifier learnt from the files before the current one.
#[derive(Debug, Default)]
pub struct History {
    /// `CHECK (col IS NOT NULL)` constraints by name.
    not_null_checks: HashMap<String, NotNullCheck>,
}

#[derive(Debug, Clone)]
struct NotNullCheck {
    table: String,
    column: String,
    validated: bool,
}

/// Objects created by the file being classified.
#[derive(Debug, Default)]
struct FileScope {
    tables: HashSet<String>,
    indexes: HashSet<String>,
    views: HashSet<String>,
    /// Columns added to existing tables, and whether they have a default.
    columns: HashMap<(String, String), bool>,
}

impl FileScope {
    fn new_column(&self, table: &str, column: &str) -> bool {
        self.columns
            .contains_key(&(table.to_string(), column.to_string()))
    }
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
    keep_compatible_renames(&mut out);
    out
}

fn classify_piece(piece: &Piece, history: &mut History, scope: &mut FileScope) -> Classified {
    let mut c = Classified {
        ordinal: 0,
        line: piece.line,
        sql: piece.text.to_string(),
        unparsed: false,
        actions: Vec::new(),
    };
    if piece.meta_command {
        c.unparsed = true;
        c.actions.push(meta_command(piece.text));
        return c;
    }
    match Parser::parse_sql(&PostgreSqlDialect {}, piece.text) {
        Ok(statements) if !statements.is_empty() => {
            for statement in &statements {
                c.actions
                    .extend(classify_ast(statement, piece.text, history, scope));
            }
        }
        Ok(_) => c.actions.push(other("", "an empty statement")),
        Err(e) => {
            c.unparsed = true;
            let words = words(piece.text);
            for mut action in classify_words(&words, scope) {
                action.reason = format!(
                    "not parsed by sqlparser ({e}); classified from its keywords: {}",
                    action.reason
                );
                c.actions.push(action);
            }
        }
    }
    c
}

// ---------------------------------------------------------------------------
// Parsed statements

fn classify_ast(
    statement: &Ast,
    text: &str,
    history: &mut History,
    scope: &mut FileScope,
) -> Vec<Action> {
    match statement {
        Ast::CreateTable(create) => {
            let table = object(&create.name);
            scope.tables.insert(table.clone());
            let mut action = expand(
                "CREATE TABLE",
                Some(&table),
                None,
                "a new table; the running app does not use it",
            );
            for constraint in &create.constraints {
                if let TableConstraint::Check(check) = constraint
                    && let (Some(name), Some(column)) = (&check.name, not_null_column(&check.expr))
                {
                    history.not_null_checks.insert(
                        ident(name),
                        NotNullCheck {
                            table: table.clone(),
                            column,
                            validated: true,
                        },
                    );
                }
            }
            if create.or_replace {
                action.hazards.push(replaces(&table));
            }
            vec![action]
        }
        Ast::CreateIndex(index) => {
            let table = object(&index.table_name);
            if let Some(name) = &index.name {
                scope.indexes.insert(object(name));
            }
            let mut action = expand(
                "CREATE INDEX",
                Some(&table),
                None,
                "a new index; queries keep working",
            );
            if !index.concurrently && !scope.tables.contains(&table) {
                action.hazards.push((
                    hazard::INDEX_NOT_CONCURRENT,
                    format!(
                        "CREATE INDEX without CONCURRENTLY blocks writes to `{table}` until the index is built"
                    ),
                ));
            }
            vec![action]
        }
        Ast::CreateView(view) => {
            let name = object(&view.name);
            scope.views.insert(name.clone());
            let what = if view.materialized {
                "CREATE MATERIALIZED VIEW"
            } else {
                "CREATE VIEW"
            };
            let mut action = expand(what, Some(&name), None, "a new view");
            if view.or_replace {
                action.hazards.push(replaces(&name));
            }
            vec![action]
        }
        Ast::Drop {
            object_type, names, ..
        } => names
            .iter()
            .map(|n| drop_object(*object_type, &object(n), false, scope))
            .collect(),
        Ast::AlterTable(alter) => {
            let table = object(&alter.name);
            alter
                .operations
                .iter()
                .map(|op| alter_table(&table, op, history, scope))
                .collect()
        }
        _ => classify_words(&words(text), scope),
    }
}

fn alter_table(
    table: &str,
    op: &AlterTableOperation,
    history: &mut History,
    scope: &mut FileScope,
) -> Action {
    let new_table = scope.tables.contains(table);
    let t = Some(table);
    match op {
        AlterTableOperation::AddColumn { column_def, .. } => {
            add_column(table, column_def, new_table, scope)
        }
        AlterTableOperation::AddConstraint {
            constraint,
            not_valid,
        } => add_constraint(table, constraint, *not_valid, new_table, history),
        AlterTableOperation::ValidateConstraint { name } => {
            if let Some(check) = history.not_null_checks.get_mut(&ident(name)) {
                check.validated = true;
            }
            other_on(
                "VALIDATE CONSTRAINT",
                t,
                "validating takes a lock that lets reads and writes go on",
            )
        }
        AlterTableOperation::DropColumn { column_names, .. } => {
            // One action per column would need the caller to fan out; columns
            // of one DROP share a verdict, the first names the action.
            let columns: Vec<String> = column_names.iter().map(ident).collect();
            let shown = columns.join(", ");
            let column = columns.first().map(String::as_str);
            if new_table {
                other_on("DROP COLUMN", t, "the table was created in this file")
            } else if columns.iter().all(|c| scope.new_column(table, c)) {
                let mut a = other_on("DROP COLUMN", t, "the column was added in this file");
                a.column = column.map(str::to_string);
                a
            } else {
                contract(
                    "DROP COLUMN",
                    t,
                    column,
                    &format!("drops `{shown}`, which the running app may still read or write"),
                )
            }
        }
        AlterTableOperation::DropConstraint { name, .. } => {
            let name = ident(name);
            history.not_null_checks.remove(&name);
            if new_table {
                other_on("DROP CONSTRAINT", t, "the table was created in this file")
            } else {
                contract(
                    "DROP CONSTRAINT",
                    t,
                    None,
                    &format!(
                        "drops constraint `{name}`, which the running app may rely on (ON CONFLICT, cascades, guarantees)"
                    ),
                )
            }
        }
        AlterTableOperation::RenameColumn {
            old_column_name,
            new_column_name,
        } => {
            let (old, new) = (ident(old_column_name), ident(new_column_name));
            if new_table || scope.new_column(table, &old) {
                if let Some(default) = scope.columns.remove(&(table.to_string(), old.clone())) {
                    scope
                        .columns
                        .insert((table.to_string(), new.clone()), default);
                }
                let mut a = expand(
                    "RENAME COLUMN",
                    t,
                    Some(&old),
                    "renames a column created in this file",
                );
                a.kind = StatementKind::Other;
                return a;
            }
            breaking(
                "RENAME COLUMN",
                t,
                Some(&old),
                &format!("renames `{old}` to `{new}` in place: the running app still uses `{old}`"),
            )
        }
        AlterTableOperation::RenameTable { table_name } => {
            let new = match table_name {
                sqlparser::ast::RenameTableNameKind::As(n)
                | sqlparser::ast::RenameTableNameKind::To(n) => object(n),
            };
            if new_table {
                scope.tables.insert(new);
                return other_on("RENAME TABLE", t, "the table was created in this file");
            }
            breaking(
                "RENAME TABLE",
                t,
                None,
                &format!(
                    "renames `{table}` to `{new}` in place: the running app still uses `{table}`"
                ),
            )
        }
        AlterTableOperation::RenameConstraint { old_name, new_name } => {
            if new_table {
                return other_on("RENAME CONSTRAINT", t, "the table was created in this file");
            }
            breaking(
                "RENAME CONSTRAINT",
                t,
                None,
                &format!(
                    "renames constraint `{}` to `{}`: `ON CONFLICT ON CONSTRAINT` of the running app uses the old name",
                    ident(old_name),
                    ident(new_name)
                ),
            )
        }
        AlterTableOperation::AlterColumn { column_name, op } => {
            alter_column(table, &ident(column_name), op, new_table, history, scope)
        }
        AlterTableOperation::OwnerTo { .. }
        | AlterTableOperation::ReplicaIdentity { .. }
        | AlterTableOperation::SetTblProperties { .. }
        | AlterTableOperation::EnableTrigger { .. }
        | AlterTableOperation::EnableAlwaysTrigger { .. }
        | AlterTableOperation::EnableReplicaTrigger { .. } => other_on(
            "ALTER TABLE",
            t,
            &format!("`{op}` does not change the schema"),
        ),
        _ if new_table => other_on("ALTER TABLE", t, "the table was created in this file"),
        _ => breaking(
            "ALTER TABLE",
            t,
            None,
            &format!(
                "`{op}` is an ALTER TABLE action opsdeploy does not know; treated as breaking"
            ),
        ),
    }
}

fn add_column(table: &str, def: &ColumnDef, new_table: bool, scope: &mut FileScope) -> Action {
    let column = ident(&def.name);
    let type_name = def.data_type.to_string().to_ascii_lowercase();
    let serial = matches!(
        type_name.as_str(),
        "serial" | "bigserial" | "smallserial" | "serial2" | "serial4" | "serial8"
    );
    let mut not_null = false;
    let mut default: Option<&Expr> = None;
    let mut generated: Option<&'static str> = None;
    let mut unique = false;
    for option in &def.options {
        match &option.option {
            ColumnOption::NotNull => not_null = true,
            ColumnOption::PrimaryKey(_) => {
                not_null = true;
                unique = true;
            }
            ColumnOption::Unique(_) => unique = true,
            ColumnOption::Default(e) => default = Some(e),
            ColumnOption::Identity(_) => generated = Some("an identity column"),
            ColumnOption::Generated {
                generated_as,
                generation_expr,
                ..
            } => {
                generated = Some(match (generated_as, generation_expr) {
                    (GeneratedAs::ExpStored, _) | (_, Some(_)) => "a stored generated column",
                    _ => "an identity column",
                })
            }
            _ => {}
        }
    }
    scope.columns.insert(
        (table.to_string(), column.clone()),
        default.is_some() || serial || generated.is_some(),
    );
    let (t, c) = (Some(table), Some(column.as_str()));
    if new_table {
        return expand(
            "ADD COLUMN",
            t,
            c,
            "adds a column to a table created in this file",
        );
    }
    if not_null && default.is_none() && !serial && generated.is_none() {
        return breaking(
            "ADD COLUMN",
            t,
            c,
            &format!(
                "adds `{column}` NOT NULL without a default: the running app's inserts, which do not set it, fail (and it fails outright if the table has rows)"
            ),
        );
    }
    let mut action = expand(
        "ADD COLUMN",
        t,
        c,
        if not_null {
            "adds a NOT NULL column with a default; the running app keeps working"
        } else {
            "adds a nullable column; the running app keeps working"
        },
    );
    let rewrite = if serial {
        Some(format!("`{type_name}`"))
    } else if let Some(what) = generated {
        Some(what.to_string())
    } else {
        default
            .and_then(volatile_function)
            .map(|f| format!("a volatile default (`{f}()`)"))
    };
    if let Some(why) = rewrite {
        action.hazards.push((
            hazard::TABLE_REWRITE,
            format!(
                "adding `{column}` with {why} rewrites `{table}` while reads and writes are blocked"
            ),
        ));
    }
    if unique {
        action.hazards.push((
            hazard::UNIQUE_CONSTRAINT,
            format!(
                "the unique index for `{column}` is built while writes to `{table}` are blocked"
            ),
        ));
    }
    action
}

fn add_constraint(
    table: &str,
    constraint: &TableConstraint,
    not_valid: bool,
    new_table: bool,
    history: &mut History,
) -> Action {
    let name = constraint_name(constraint);
    let shown = name.as_deref().unwrap_or("(unnamed)");
    if let TableConstraint::Check(check) = constraint
        && let (Some(n), Some(column)) = (&name, not_null_column(&check.expr))
    {
        history.not_null_checks.insert(
            n.clone(),
            NotNullCheck {
                table: table.to_string(),
                column,
                validated: !not_valid,
            },
        );
    }
    let t = Some(table);
    let mut action = expand(
        "ADD CONSTRAINT",
        t,
        None,
        &format!(
            "adds constraint `{shown}`{}",
            if not_valid {
                " NOT VALID: existing rows are not checked"
            } else {
                ""
            }
        ),
    );
    if new_table {
        action.reason = format!("adds constraint `{shown}` to a table created in this file");
        return action;
    }
    match constraint {
        TableConstraint::Check(_) | TableConstraint::ForeignKey(_) if !not_valid => {
            action.hazards.push((
                hazard::CONSTRAINT_VALIDATION,
                format!(
                    "constraint `{shown}` without NOT VALID scans all of `{table}` while writes are blocked; add it NOT VALID, then VALIDATE CONSTRAINT"
                ),
            ))
        }
        TableConstraint::Unique(_) | TableConstraint::PrimaryKey(_) => action.hazards.push((
            hazard::UNIQUE_CONSTRAINT,
            format!(
                "constraint `{shown}` builds its index while writes to `{table}` are blocked; CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... USING INDEX"
            ),
        )),
        TableConstraint::Exclude(_) => action.hazards.push((
            hazard::EXCLUSION_CONSTRAINT,
            format!("exclusion constraint `{shown}` is built while writes to `{table}` are blocked"),
        )),
        _ => {}
    }
    action
}

fn alter_column(
    table: &str,
    column: &str,
    op: &AlterColumnOperation,
    new_table: bool,
    history: &History,
    scope: &FileScope,
) -> Action {
    let (t, c) = (Some(table), Some(column));
    let added_here = scope
        .columns
        .get(&(table.to_string(), column.to_string()))
        .copied();
    let fresh = if new_table {
        Some("the table was created in this file")
    } else if added_here.is_some() {
        Some("the column was added in this file")
    } else {
        None
    };
    match op {
        AlterColumnOperation::SetNotNull => {
            if new_table || added_here == Some(true) {
                return expand(
                    "SET NOT NULL",
                    t,
                    c,
                    if new_table {
                        "the table was created in this file"
                    } else {
                        "the column was added in this file with a default"
                    },
                );
            }
            if added_here.is_none()
                && let Some(name) = history.validated_not_null(table, column)
            {
                return expand(
                    "SET NOT NULL",
                    t,
                    c,
                    &format!(
                        "validated constraint `{name}` already keeps NULLs out of `{column}`, so no scan and no change for the running app"
                    ),
                );
            }
            breaking(
                "SET NOT NULL",
                t,
                c,
                &format!(
                    "makes `{column}` NOT NULL in place: the running app's writes of NULL fail, and the table is scanned under an exclusive lock; add CHECK ({column} IS NOT NULL) NOT VALID, VALIDATE it, then SET NOT NULL"
                ),
            )
        }
        AlterColumnOperation::DropNotNull => expand(
            "DROP NOT NULL",
            t,
            c,
            "relaxes a constraint; what the running app writes stays valid",
        ),
        AlterColumnOperation::SetDefault { .. } => expand(
            "SET DEFAULT",
            t,
            c,
            "a default only applies to rows inserted without the column",
        ),
        AlterColumnOperation::DropDefault => match fresh {
            Some(why) => other_on("DROP DEFAULT", t, why),
            None => contract(
                "DROP DEFAULT",
                t,
                c,
                &format!(
                    "removes the default the running app may rely on when it inserts without `{column}`"
                ),
            ),
        },
        AlterColumnOperation::SetDataType { data_type, .. } => match fresh {
            Some(why) => {
                let mut a = other_on("ALTER COLUMN TYPE", t, why);
                a.column = Some(column.to_string());
                a
            }
            None => breaking(
                "ALTER COLUMN TYPE",
                t,
                c,
                &format!(
                    "changes the type of `{column}` to {data_type} in place: the running app may read or write the old type, and most changes rewrite the table under an exclusive lock"
                ),
            ),
        },
        AlterColumnOperation::AddGenerated { .. } => expand(
            "ADD GENERATED",
            t,
            c,
            "turns the column into an identity column; existing values stay",
        ),
        AlterColumnOperation::GenericOptions { .. } => {
            other_on("ALTER COLUMN", t, "changes foreign-table options only")
        }
    }
}

impl History {
    fn validated_not_null(&self, table: &str, column: &str) -> Option<&str> {
        self.not_null_checks
            .iter()
            .find(|(_, c)| c.validated && c.table == table && c.column == column)
            .map(|(name, _)| name.as_str())
    }
}

fn drop_object(
    object_type: ObjectType,
    name: &str,
    concurrently: bool,
    scope: &FileScope,
) -> Action {
    let what = format!("DROP {object_type}");
    let created_here = match object_type {
        ObjectType::Table => scope.tables.contains(name),
        ObjectType::Index => scope.indexes.contains(name),
        ObjectType::View | ObjectType::MaterializedView => scope.views.contains(name),
        _ => false,
    };
    if created_here {
        let table = matches!(object_type, ObjectType::Table).then_some(name);
        return other_on(&what, table, "it was created in this file");
    }
    match object_type {
        ObjectType::Index => {
            let mut action = contract(
                &what,
                None,
                None,
                &format!(
                    "drops index `{name}`, which the running app's queries or ON CONFLICT may use"
                ),
            );
            if !concurrently {
                action.hazards.push((
                    hazard::INDEX_NOT_CONCURRENT,
                    format!("DROP INDEX `{name}` without CONCURRENTLY blocks reads and writes of its table"),
                ));
            }
            action
        }
        ObjectType::Table
        | ObjectType::View
        | ObjectType::MaterializedView
        | ObjectType::ForeignTable => contract(
            &what,
            Some(name),
            None,
            &format!("drops `{name}`, which the running app may still use"),
        ),
        _ => contract(
            &what,
            None,
            None,
            &format!(
                "drops {} `{name}`, which the running app may still use",
                object_type.to_string().to_lowercase()
            ),
        ),
    }
}

/// `CHECK (col IS NOT NULL)`: the column.
fn not_null_column(expr: &Expr) -> Option<String> {
    match expr {
        Expr::IsNotNull(inner) => match &**inner {
            Expr::Identifier(i) => Some(ident(i)),
            Expr::CompoundIdentifier(parts) => parts.last().map(ident),
            _ => None,
        },
        Expr::Nested(inner) => not_null_column(inner),
        _ => None,
    }
}

fn constraint_name(constraint: &TableConstraint) -> Option<String> {
    let name = match constraint {
        TableConstraint::Check(c) => c.name.as_ref(),
        TableConstraint::ForeignKey(c) => c.name.as_ref(),
        TableConstraint::Unique(c) => c.name.as_ref(),
        TableConstraint::PrimaryKey(c) => c.name.as_ref(),
        TableConstraint::PrimaryKeyUsingIndex(c) | TableConstraint::UniqueUsingIndex(c) => {
            c.name.as_ref()
        }
        TableConstraint::Exclude(c) => c.name.as_ref(),
        _ => None,
    };
    name.map(ident)
}

/// Functions a column default may call without forcing a table rewrite
/// (PostgreSQL 11+ stores a non-volatile default once).
const NON_VOLATILE: &[&str] = &[
    "now",
    "current_timestamp",
    "current_date",
    "current_time",
    "localtimestamp",
    "localtime",
    "transaction_timestamp",
    "statement_timestamp",
    "current_user",
    "session_user",
    "current_schema",
    "lower",
    "upper",
    "coalesce",
    "to_jsonb",
    "jsonb_build_object",
    "json_build_object",
    "array",
];

/// The first function in a default expression that may be volatile.
fn volatile_function(expr: &Expr) -> Option<String> {
    let text = expr.to_string().to_ascii_lowercase();
    let bytes = text.as_bytes();
    let mut start = None;
    for (i, &b) in bytes.iter().enumerate() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'.' {
            start.get_or_insert(i);
            continue;
        }
        if let Some(s) = start.take()
            && b == b'('
        {
            let name = text[s..i].rsplit('.').next().unwrap_or("");
            if !name.is_empty()
                && !name.as_bytes()[0].is_ascii_digit()
                && !NON_VOLATILE.contains(&name)
            {
                return Some(name.to_string());
            }
        }
    }
    None
}

// ---------------------------------------------------------------------------
// Keyword classification: statements the parser path does not cover, and
// statements it cannot parse.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// A word: upper-cased keyword form and normalized identifier form.
    Word {
        upper: String,
        ident: String,
    },
    Comma,
    Open,
    Close,
    Other,
}

impl Tok {
    fn is(&self, kw: &str) -> bool {
        matches!(self, Tok::Word { upper, .. } if upper == kw)
    }

    fn ident(&self) -> Option<&str> {
        match self {
            Tok::Word { ident, .. } => Some(ident),
            _ => None,
        }
    }
}

fn words(text: &str) -> Vec<Tok> {
    match Tokenizer::new(&GenericDialect {}, text).tokenize() {
        Ok(tokens) => tokens
            .into_iter()
            .flat_map(|t| match t {
                // Bodies of DO blocks and functions: their words count too.
                Token::DollarQuotedString(s) => words(&s.value),
                t => Vec::from_iter(word(t)),
            })
            .collect(),
        // Unterminated quotes and the like: whitespace-separated words.
        Err(_) => text
            .split(|c: char| c.is_whitespace() || "(),;".contains(c))
            .filter(|w| !w.is_empty())
            .map(|w| {
                let bare = w.trim_matches(|c| c == '"' || c == '`' || c == '\'');
                Tok::Word {
                    upper: bare.to_ascii_uppercase(),
                    ident: bare.to_lowercase(),
                }
            })
            .collect(),
    }
}

fn word(t: Token) -> Option<Tok> {
    match t {
        Token::Word(w) => Some(Tok::Word {
            upper: w.value.to_ascii_uppercase(),
            ident: if w.quote_style.is_some() {
                w.value
            } else {
                w.value.to_lowercase()
            },
        }),
        Token::Comma => Some(Tok::Comma),
        Token::LParen => Some(Tok::Open),
        Token::RParen => Some(Tok::Close),
        Token::Whitespace(_) => None,
        Token::Period => None,
        _ => Some(Tok::Other),
    }
}

/// Harmless statements: data changes, transactions, session settings, grants.
const OTHER_KEYWORDS: &[&str] = &[
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "WITH",
    "VALUES",
    "TABLE",
    "MERGE",
    "COPY",
    "TRUNCATE",
    "SET",
    "RESET",
    "SHOW",
    "BEGIN",
    "START",
    "COMMIT",
    "END",
    "ROLLBACK",
    "ABORT",
    "SAVEPOINT",
    "RELEASE",
    "PREPARE",
    "EXECUTE",
    "DEALLOCATE",
    "EXPLAIN",
    "ANALYZE",
    "ANALYSE",
    "VACUUM",
    "LOCK",
    "COMMENT",
    "GRANT",
    "REVOKE",
    "NOTIFY",
    "LISTEN",
    "UNLISTEN",
    "DISCARD",
    "CHECKPOINT",
    "REFRESH",
    "CLUSTER",
    "REINDEX",
    "CALL",
    "LOAD",
    "SECURITY",
    "DECLARE",
    "FETCH",
    "CLOSE",
    "MOVE",
];

fn classify_words(words: &[Tok], scope: &mut FileScope) -> Vec<Action> {
    let Some(Tok::Word { upper: first, .. }) = words.first() else {
        return vec![other("", "no SQL keyword to go by; nothing to classify")];
    };
    match first.as_str() {
        "CREATE" => vec![create_words(words, scope)],
        "DROP" => vec![drop_words(words, scope)],
        "ALTER" if words.get(1).is_some_and(|w| w.is("TABLE")) => alter_table_words(words, scope),
        "ALTER" => vec![alter_other_words(words)],
        "DO" => {
            let ddl = words
                .iter()
                .any(|w| w.is("ALTER") || w.is("DROP") || w.is("RENAME") || w.is("TRUNCATE"));
            if ddl {
                vec![breaking(
                    "DO",
                    None,
                    None,
                    "a DO block runs DDL opsdeploy cannot see into; treated as breaking",
                )]
            } else {
                vec![other("DO", "a DO block without ALTER, DROP or RENAME")]
            }
        }
        kw if OTHER_KEYWORDS.contains(&kw) => {
            vec![other(kw, "changes data or session state, not the schema")]
        }
        kw => vec![breaking(
            kw,
            None,
            None,
            &format!("`{kw}` is not a statement opsdeploy knows; treated as breaking"),
        )],
    }
}

/// The identifier after the words in `skip` (e.g. `IF NOT EXISTS`), if any.
fn name_after<'w>(words: &'w [Tok], mut i: usize, skip: &[&str]) -> Option<&'w str> {
    while words.get(i).is_some_and(|w| skip.iter().any(|s| w.is(s))) {
        i += 1;
    }
    words.get(i).and_then(Tok::ident)
}

fn create_words(words: &[Tok], scope: &mut FileScope) -> Action {
    let or_replace =
        words.get(1).is_some_and(|w| w.is("OR")) && words.get(2).is_some_and(|w| w.is("REPLACE"));
    let kinds = &[
        "UNIQUE",
        "TEMP",
        "TEMPORARY",
        "UNLOGGED",
        "MATERIALIZED",
        "RECURSIVE",
        "OR",
        "REPLACE",
        "GLOBAL",
        "LOCAL",
    ];
    let mut i = 1;
    while words.get(i).is_some_and(|w| kinds.iter().any(|k| w.is(k))) {
        i += 1;
    }
    let object = match words.get(i) {
        Some(Tok::Word { upper, .. }) => upper.clone(),
        _ => String::new(),
    };
    let operation = format!("CREATE {object}").trim_end().to_string();
    match object.as_str() {
        "INDEX" => {
            let concurrently = words.get(i + 1).is_some_and(|w| w.is("CONCURRENTLY"));
            let on = words.iter().position(|w| w.is("ON"));
            let table = on.and_then(|p| name_after(words, p + 1, &["ONLY"]).map(str::to_string));
            if let Some(name) = name_after(words, i + 1, &["CONCURRENTLY", "IF", "NOT", "EXISTS"])
                && !words.get(i + 1).is_some_and(|w| w.is("ON"))
            {
                scope.indexes.insert(name.to_string());
            }
            let mut action = expand(
                "CREATE INDEX",
                table.as_deref(),
                None,
                "a new index; queries keep working",
            );
            if let Some(table) = &table
                && !concurrently
                && !scope.tables.contains(table)
            {
                action.hazards.push((
                    hazard::INDEX_NOT_CONCURRENT,
                    format!("CREATE INDEX without CONCURRENTLY blocks writes to `{table}` until the index is built"),
                ));
            }
            action
        }
        "TABLE" | "VIEW" => {
            let name = name_after(words, i + 1, &["IF", "NOT", "EXISTS"]).map(str::to_string);
            if let Some(n) = &name {
                if object == "TABLE" {
                    scope.tables.insert(n.clone());
                } else {
                    scope.views.insert(n.clone());
                }
            }
            let mut action = expand(
                &operation,
                name.as_deref(),
                None,
                "a new object; the running app does not use it",
            );
            if or_replace && let Some(n) = &name {
                action.hazards.push(replaces(n));
            }
            action
        }
        _ => {
            let mut action = expand(
                &operation,
                None,
                None,
                "creates a new object; the running app does not use it",
            );
            if or_replace {
                let name = name_after(words, i + 1, &[]).unwrap_or("it");
                action.hazards.push(replaces(name));
            }
            action
        }
    }
}

fn drop_words(words: &[Tok], scope: &FileScope) -> Action {
    let (object_type, mut i) = match words.get(1) {
        Some(w) if w.is("TABLE") => (Some(ObjectType::Table), 2),
        Some(w) if w.is("INDEX") => (Some(ObjectType::Index), 2),
        Some(w) if w.is("VIEW") => (Some(ObjectType::View), 2),
        Some(w) if w.is("MATERIALIZED") => (Some(ObjectType::MaterializedView), 3),
        Some(w) if w.is("SEQUENCE") => (Some(ObjectType::Sequence), 2),
        Some(w) if w.is("TYPE") => (Some(ObjectType::Type), 2),
        Some(w) if w.is("SCHEMA") => (Some(ObjectType::Schema), 2),
        _ => (None, 2),
    };
    let concurrently = words.get(i).is_some_and(|w| w.is("CONCURRENTLY"));
    if concurrently {
        i += 1;
    }
    let name = name_after(words, i, &["IF", "EXISTS"])
        .unwrap_or("")
        .to_string();
    match object_type {
        Some(t) => drop_object(t, &name, concurrently, scope),
        None => {
            let what = match words.get(1) {
                Some(Tok::Word { upper, .. }) => format!("DROP {upper}"),
                _ => "DROP".to_string(),
            };
            contract(
                &what,
                None,
                None,
                "drops an object the running app may still use",
            )
        }
    }
}

fn alter_table_words(words: &[Tok], scope: &mut FileScope) -> Vec<Action> {
    let mut i = 2;
    while words
        .get(i)
        .is_some_and(|w| w.is("IF") || w.is("EXISTS") || w.is("ONLY"))
    {
        i += 1;
    }
    let Some(table) = words.get(i).and_then(Tok::ident).map(str::to_string) else {
        return vec![breaking(
            "ALTER TABLE",
            None,
            None,
            "no table name found; treated as breaking",
        )];
    };
    let new_table = scope.tables.contains(&table);
    // Actions are separated by commas outside parentheses.
    let mut actions: Vec<&[Tok]> = Vec::new();
    let (mut depth, mut start) = (0usize, i + 1);
    for (j, w) in words.iter().enumerate().skip(i + 1) {
        match w {
            Tok::Open => depth += 1,
            Tok::Close => depth = depth.saturating_sub(1),
            Tok::Comma if depth == 0 => {
                actions.push(&words[start..j]);
                start = j + 1;
            }
            _ => {}
        }
    }
    actions.push(&words[start..]);
    actions
        .into_iter()
        .map(|a| alter_action_words(&table, a, new_table, scope))
        .collect()
}

fn alter_action_words(table: &str, a: &[Tok], new_table: bool, scope: &mut FileScope) -> Action {
    let t = Some(table);
    let has = |kw: &str| a.iter().any(|w| w.is(kw));
    let first = a.first();
    let is_first = |kw: &str| first.is_some_and(|w| w.is(kw));
    if new_table {
        return other_on("ALTER TABLE", t, "the table was created in this file");
    }
    if is_first("RENAME") {
        if a.get(1).is_some_and(|w| w.is("TO")) {
            let new = a.get(2).and_then(Tok::ident).unwrap_or("?");
            return breaking(
                "RENAME TABLE",
                t,
                None,
                &format!(
                    "renames `{table}` to `{new}` in place: the running app still uses `{table}`"
                ),
            );
        }
        if a.get(1).is_some_and(|w| w.is("CONSTRAINT")) {
            return breaking(
                "RENAME CONSTRAINT",
                t,
                None,
                "renames a constraint the running app may name",
            );
        }
        let old = name_after(a, 1, &["COLUMN"]).unwrap_or("?").to_string();
        if scope.new_column(table, &old) {
            let mut a = other_on("RENAME COLUMN", t, "the column was added in this file");
            a.column = Some(old);
            return a;
        }
        let to = a.iter().position(|w| w.is("TO"));
        let new = to
            .and_then(|p| a.get(p + 1))
            .and_then(Tok::ident)
            .unwrap_or("?");
        return breaking(
            "RENAME COLUMN",
            t,
            Some(&old),
            &format!("renames `{old}` to `{new}` in place: the running app still uses `{old}`"),
        );
    }
    if is_first("ADD") {
        let second = a.get(1);
        let constraint = second.is_some_and(|w| {
            [
                "CONSTRAINT",
                "CHECK",
                "FOREIGN",
                "UNIQUE",
                "PRIMARY",
                "EXCLUDE",
            ]
            .iter()
            .any(|k| w.is(k))
        });
        if constraint {
            let mut action = expand("ADD CONSTRAINT", t, None, "adds a constraint");
            let not_valid = a.windows(2).any(|p| p[0].is("NOT") && p[1].is("VALID"));
            let using_index = a.windows(2).any(|p| p[0].is("USING") && p[1].is("INDEX"));
            if has("UNIQUE") || has("PRIMARY") {
                if !using_index {
                    action.hazards.push((
                        hazard::UNIQUE_CONSTRAINT,
                        format!(
                            "the constraint builds its index while writes to `{table}` are blocked"
                        ),
                    ));
                }
            } else if has("EXCLUDE") {
                action.hazards.push((
                    hazard::EXCLUSION_CONSTRAINT,
                    format!(
                        "the exclusion constraint is built while writes to `{table}` are blocked"
                    ),
                ));
            } else if !not_valid {
                action.hazards.push((
                    hazard::CONSTRAINT_VALIDATION,
                    format!("without NOT VALID the constraint scans all of `{table}` while writes are blocked"),
                ));
            }
            return action;
        }
        let column = name_after(a, 1, &["COLUMN", "IF", "NOT", "EXISTS"])
            .unwrap_or("?")
            .to_string();
        let not_null = a.windows(2).any(|p| p[0].is("NOT") && p[1].is("NULL"));
        let defaulted = has("DEFAULT") || has("GENERATED") || has("AS");
        scope
            .columns
            .insert((table.to_string(), column.clone()), defaulted);
        if not_null && !defaulted {
            return breaking(
                "ADD COLUMN",
                t,
                Some(&column),
                &format!(
                    "adds `{column}` NOT NULL without a default: the running app's inserts, which do not set it, fail"
                ),
            );
        }
        return expand(
            "ADD COLUMN",
            t,
            Some(&column),
            "adds a column; the running app keeps working",
        );
    }
    if is_first("DROP") {
        if a.get(1).is_some_and(|w| w.is("CONSTRAINT")) {
            return contract(
                "DROP CONSTRAINT",
                t,
                None,
                "drops a constraint the running app may rely on",
            );
        }
        let column = name_after(a, 1, &["COLUMN", "IF", "EXISTS"])
            .unwrap_or("?")
            .to_string();
        if scope.new_column(table, &column) {
            let mut a = other_on("DROP COLUMN", t, "the column was added in this file");
            a.column = Some(column);
            return a;
        }
        return contract(
            "DROP COLUMN",
            t,
            Some(&column),
            &format!("drops `{column}`, which the running app may still read or write"),
        );
    }
    if is_first("ALTER") {
        let column = name_after(a, 1, &["COLUMN"]).unwrap_or("?").to_string();
        let c = Some(column.as_str());
        if has("TYPE") {
            return breaking("ALTER COLUMN TYPE", t, c, "changes a column type in place");
        }
        if a.windows(3)
            .any(|p| p[0].is("SET") && p[1].is("NOT") && p[2].is("NULL"))
        {
            return breaking("SET NOT NULL", t, c, "makes a column NOT NULL in place");
        }
        if a.windows(3)
            .any(|p| p[0].is("DROP") && p[1].is("NOT") && p[2].is("NULL"))
        {
            return expand("DROP NOT NULL", t, c, "relaxes a constraint");
        }
        if a.windows(2).any(|p| p[0].is("SET") && p[1].is("DEFAULT")) {
            return expand("SET DEFAULT", t, c, "sets a default");
        }
        if a.windows(2).any(|p| p[0].is("DROP") && p[1].is("DEFAULT")) {
            return contract(
                "DROP DEFAULT",
                t,
                c,
                "removes a default the running app may rely on",
            );
        }
    }
    if is_first("VALIDATE") {
        return other_on(
            "VALIDATE CONSTRAINT",
            t,
            "validating lets reads and writes go on",
        );
    }
    if is_first("OWNER") {
        return other_on("ALTER TABLE", t, "changes the owner only");
    }
    breaking(
        "ALTER TABLE",
        t,
        None,
        "an ALTER TABLE action opsdeploy does not know; treated as breaking",
    )
}

fn alter_other_words(words: &[Tok]) -> Action {
    let object = match words.get(1) {
        Some(Tok::Word { upper, .. }) => upper.clone(),
        _ => String::new(),
    };
    let operation = format!("ALTER {object}");
    let has = |kw: &str| words.iter().any(|w| w.is(kw));
    match object.as_str() {
        "TYPE" if has("ADD") && has("VALUE") => expand(
            &operation,
            None,
            None,
            "adds an enum value; existing values stay",
        ),
        "INDEX" | "SEQUENCE" | "ROLE" | "USER" | "DEFAULT" | "DATABASE" | "SYSTEM" => other(
            &operation,
            "does not change what the running app reads or writes",
        ),
        _ if has("OWNER") && !has("RENAME") => other(&operation, "changes the owner only"),
        _ => breaking(
            &operation,
            None,
            None,
            "changes an existing object in place; treated as breaking",
        ),
    }
}

fn meta_command(text: &str) -> Action {
    let command = text.split_whitespace().next().unwrap_or("\\");
    if matches!(command, "\\i" | "\\ir" | "\\include" | "\\include_relative") {
        breaking(
            command,
            None,
            None,
            "psql meta-command including another file opsdeploy cannot see; treated as breaking",
        )
    } else {
        other(
            command,
            "psql meta-command (not SQL): only psql runs it; no schema change",
        )
    }
}

// ---------------------------------------------------------------------------

fn action(
    kind: StatementKind,
    operation: &str,
    table: Option<&str>,
    column: Option<&str>,
    reason: &str,
) -> Action {
    Action {
        kind,
        operation: operation.to_string(),
        table: table.map(str::to_string),
        column: column.map(str::to_string),
        reason: reason.to_string(),
        hazards: Vec::new(),
    }
}

fn expand(op: &str, table: Option<&str>, column: Option<&str>, reason: &str) -> Action {
    action(StatementKind::Expand, op, table, column, reason)
}

fn contract(op: &str, table: Option<&str>, column: Option<&str>, reason: &str) -> Action {
    action(StatementKind::Contract, op, table, column, reason)
}

fn breaking(op: &str, table: Option<&str>, column: Option<&str>, reason: &str) -> Action {
    action(StatementKind::Breaking, op, table, column, reason)
}

fn other(op: &str, reason: &str) -> Action {
    action(StatementKind::Other, op, None, None, reason)
}

fn other_on(op: &str, table: Option<&str>, reason: &str) -> Action {
    action(StatementKind::Other, op, table, None, reason)
}

fn replaces(name: &str) -> (&'static str, String) {
    (
        hazard::REPLACES_IN_PLACE,
        format!("CREATE OR REPLACE changes `{name}` in place for the running app"),
    )
}

/// PostgreSQL folds unquoted identifiers to lower case.
fn ident(i: &sqlparser::ast::Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_lowercase()
    }
}

/// The object's own name, without its schema.
fn object(name: &ObjectName) -> String {
    name.0
        .last()
        .and_then(|p| p.as_ident())
        .map(ident)
        .unwrap_or_else(|| name.to_string())
}

/// A rename stays compatible when the old name comes back later in the same
/// file: a view with the table's old name (`ALTER TABLE a RENAME TO b; CREATE
/// VIEW a AS SELECT * FROM b`) or a column re-added under its old name.
fn keep_compatible_renames(statements: &mut [Classified]) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            kind("ALTER TABLE t ADD CONSTRAINT k CHECK (c > 0) NOT VALID"),
            Expand
        );
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
        assert_eq!(kind("ALTER TABLE t ALTER COLUMN c SET NOT NULL"), Breaking);
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
    fn drop_index_concurrently_is_understood_although_sqlparser_rejects_it() {
        let mut history = History::default();
        let c = classify_file("DROP INDEX CONCURRENTLY i1", &mut history);
        assert!(c[0].unparsed);
        assert_eq!(c[0].actions[0].kind, Contract);
        assert!(c[0].actions[0].hazards.is_empty());
        assert!(
            c[0].actions[0]
                .reason
                .starts_with("not parsed by sqlparser")
        );
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
                (Breaking, "SET NOT NULL")
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
        assert_eq!(before[0].actions[0].kind, Breaking, "not validated yet");
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
