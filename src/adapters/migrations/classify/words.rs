//! Reads what a statement does from its keywords, as [`Change`]s: for
//! statements the parser path does not cover, and for statements `sqlparser`
//! cannot parse (psql meta-commands aside). What the words leave open is read
//! the riskier way.

use sqlparser::dialect::GenericDialect;
use sqlparser::tokenizer::{Token, Tokenizer};

use super::change::{AlterAction, Change, Column, Constraint, Dropped, Fill};

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
    Other(String),
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

    fn upper(&self) -> Option<&str> {
        match self {
            Tok::Word { upper, .. } => Some(upper),
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
        t => Some(Tok::Other(t.to_string())),
    }
}

/// Harmless statements: data changes, transactions, session settings, grants.
const DATA_KEYWORDS: &[&str] = &[
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

/// What a statement does, from its keywords.
pub(super) fn changes(text: &str) -> Vec<Change> {
    let words = words(text);
    let Some(first) = words.first().and_then(Tok::upper) else {
        return vec![Change::NoKeyword];
    };
    match first {
        "CREATE" => vec![create(&words)],
        "DROP" => vec![drop(&words)],
        "ALTER" if words.get(1).is_some_and(|w| w.is("TABLE")) => alter_table(&words),
        "ALTER" => vec![alter_other(&words)],
        "DO" => vec![Change::Do {
            ddl: words
                .iter()
                .any(|w| w.is("ALTER") || w.is("DROP") || w.is("RENAME") || w.is("TRUNCATE")),
        }],
        kw if DATA_KEYWORDS.contains(&kw) => vec![Change::Data {
            keyword: kw.to_string(),
        }],
        kw => vec![Change::Unknown {
            keyword: kw.to_string(),
        }],
    }
}

/// The identifier after the words in `skip` (e.g. `IF NOT EXISTS`), if any.
fn name_after<'w>(words: &'w [Tok], mut i: usize, skip: &[&str]) -> Option<&'w str> {
    while words.get(i).is_some_and(|w| skip.iter().any(|s| w.is(s))) {
        i += 1;
    }
    words.get(i).and_then(Tok::ident)
}

fn has_pair(words: &[Tok], a: &str, b: &str) -> bool {
    words.windows(2).any(|p| p[0].is(a) && p[1].is(b))
}

fn create(words: &[Tok]) -> Change {
    let or_replace =
        words.get(1).is_some_and(|w| w.is("OR")) && words.get(2).is_some_and(|w| w.is("REPLACE"));
    let unique = words.iter().take(3).any(|w| w.is("UNIQUE"));
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
    let object = words.get(i).and_then(Tok::upper).unwrap_or("").to_string();
    match object.as_str() {
        "INDEX" => {
            let concurrently = words.get(i + 1).is_some_and(|w| w.is("CONCURRENTLY"));
            let on = words.iter().position(|w| w.is("ON"));
            let table = on.and_then(|p| name_after(words, p + 1, &["ONLY"]).map(str::to_string));
            let name = name_after(words, i + 1, &["CONCURRENTLY", "IF", "NOT", "EXISTS"])
                .filter(|_| !words.get(i + 1).is_some_and(|w| w.is("ON")))
                .map(str::to_string);
            Change::CreateIndex {
                table,
                name,
                unique,
                concurrently,
            }
        }
        "TABLE" => Change::CreateTable {
            table: name_after(words, i + 1, &["IF", "NOT", "EXISTS"])
                .unwrap_or("")
                .to_string(),
            or_replace,
            columns: Vec::new(),
            not_null_checks: Vec::new(),
        },
        "VIEW" => Change::CreateView {
            name: name_after(words, i + 1, &["IF", "NOT", "EXISTS"]).map(str::to_string),
            materialized: words.iter().take(i).any(|w| w.is("MATERIALIZED")),
            or_replace,
        },
        _ => Change::CreateOther {
            operation: format!("CREATE {object}").trim_end().to_string(),
            name: name_after(words, i + 1, &[]).map(str::to_string),
            or_replace,
        },
    }
}

fn drop(words: &[Tok]) -> Change {
    let (object, mut i) = match words.get(1).and_then(Tok::upper) {
        Some("TABLE") => (Dropped::Table, 2),
        Some("INDEX") => (Dropped::Index, 2),
        Some("VIEW") => (Dropped::View, 2),
        Some("MATERIALIZED") => (Dropped::MaterializedView, 3),
        Some("FOREIGN") => (Dropped::ForeignTable, 3),
        Some(kind @ ("SEQUENCE" | "TYPE" | "SCHEMA")) => {
            (Dropped::Other(kind.to_ascii_lowercase()), 2)
        }
        other => {
            return Change::DropUnknown {
                operation: match other {
                    Some(kind) => format!("DROP {kind}"),
                    None => "DROP".to_string(),
                },
            };
        }
    };
    let concurrently = words.get(i).is_some_and(|w| w.is("CONCURRENTLY"));
    if concurrently {
        i += 1;
    }
    Change::Drop {
        object,
        name: name_after(words, i, &["IF", "EXISTS"])
            .unwrap_or("")
            .to_string(),
        concurrently,
    }
}

fn alter_table(words: &[Tok]) -> Vec<Change> {
    let mut i = 2;
    while words
        .get(i)
        .is_some_and(|w| w.is("IF") || w.is("EXISTS") || w.is("ONLY"))
    {
        i += 1;
    }
    let Some(table) = words.get(i).and_then(Tok::ident).map(str::to_string) else {
        return vec![Change::AlterTableUnnamed];
    };
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
        .map(|a| Change::AlterTable {
            table: table.clone(),
            action: alter_action(a),
        })
        .collect()
}

fn shown(a: &[Tok]) -> String {
    a.iter()
        .map(|w| match w {
            Tok::Word { upper, .. } => upper.as_str(),
            Tok::Comma => ",",
            Tok::Open => "(",
            Tok::Close => ")",
            Tok::Other(s) => s.as_str(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn alter_action(a: &[Tok]) -> AlterAction {
    let has = |kw: &str| a.iter().any(|w| w.is(kw));
    let first = a.first().and_then(Tok::upper).unwrap_or("");
    match first {
        "RENAME" if a.get(1).is_some_and(|w| w.is("TO")) => AlterAction::RenameTable {
            new: a.get(2).and_then(Tok::ident).unwrap_or("?").to_string(),
        },
        "RENAME" if a.get(1).is_some_and(|w| w.is("CONSTRAINT")) => {
            let to = a.iter().position(|w| w.is("TO"));
            AlterAction::RenameConstraint {
                old: a.get(2).and_then(Tok::ident).map(str::to_string),
                new: to
                    .and_then(|p| a.get(p + 1))
                    .and_then(Tok::ident)
                    .map(str::to_string),
            }
        }
        "RENAME" => {
            let to = a.iter().position(|w| w.is("TO"));
            AlterAction::RenameColumn {
                old: name_after(a, 1, &["COLUMN"]).unwrap_or("?").to_string(),
                new: to
                    .and_then(|p| a.get(p + 1))
                    .and_then(Tok::ident)
                    .unwrap_or("?")
                    .to_string(),
            }
        }
        "ADD" => {
            let constraint_words = [
                "CONSTRAINT",
                "CHECK",
                "FOREIGN",
                "UNIQUE",
                "PRIMARY",
                "EXCLUDE",
            ];
            if a.get(1)
                .is_some_and(|w| constraint_words.iter().any(|k| w.is(k)))
            {
                let name = a
                    .get(1)
                    .is_some_and(|w| w.is("CONSTRAINT"))
                    .then(|| a.get(2).and_then(Tok::ident).map(str::to_string))
                    .flatten();
                let constraint = if has_pair(a, "USING", "INDEX") {
                    Constraint::UsingIndex
                } else if has("UNIQUE") {
                    Constraint::Unique
                } else if has("PRIMARY") {
                    Constraint::PrimaryKey
                } else if has("EXCLUDE") {
                    Constraint::Exclude
                } else if has("FOREIGN") || has("REFERENCES") {
                    Constraint::ForeignKey
                } else if has("CHECK") {
                    Constraint::Check {
                        not_null_column: check_not_null(a),
                    }
                } else {
                    Constraint::Other
                };
                let columns = match &constraint {
                    Constraint::Check { not_null_column } => {
                        not_null_column.iter().cloned().collect()
                    }
                    Constraint::ForeignKey | Constraint::Unique | Constraint::PrimaryKey => {
                        first_group(a)
                    }
                    _ => Vec::new(),
                };
                return AlterAction::AddConstraint {
                    name,
                    constraint,
                    columns,
                    not_valid: has_pair(a, "NOT", "VALID"),
                };
            }
            AlterAction::AddColumn(add_column(a))
        }
        "DROP" if a.get(1).is_some_and(|w| w.is("CONSTRAINT")) => AlterAction::DropConstraint {
            name: name_after(a, 2, &["IF", "EXISTS"]).map(str::to_string),
        },
        "DROP" => AlterAction::DropColumn {
            columns: vec![
                name_after(a, 1, &["COLUMN", "IF", "EXISTS"])
                    .unwrap_or("?")
                    .to_string(),
            ],
        },
        "ALTER" => {
            let column = name_after(a, 1, &["COLUMN"]).unwrap_or("?").to_string();
            if has("TYPE") {
                let at = a.iter().position(|w| w.is("TYPE")).unwrap_or(0) + 1;
                let using = a.iter().position(|w| w.is("USING"));
                let to = shown(&a[at.min(a.len())..using.unwrap_or(a.len())]);
                let using = using.map(|u| shown(&a[u + 1..]));
                return AlterAction::SetType {
                    column,
                    to: type_text(&to),
                    using: using.map(|u| u.to_ascii_lowercase()),
                };
            }
            if a.windows(3)
                .any(|p| p[0].is("SET") && p[1].is("NOT") && p[2].is("NULL"))
            {
                return AlterAction::SetNotNull { column };
            }
            if a.windows(3)
                .any(|p| p[0].is("DROP") && p[1].is("NOT") && p[2].is("NULL"))
            {
                return AlterAction::DropNotNull { column };
            }
            if has_pair(a, "SET", "DEFAULT") {
                return AlterAction::SetDefault { column };
            }
            if has_pair(a, "DROP", "DEFAULT") {
                return AlterAction::DropDefault { column };
            }
            AlterAction::Unknown { what: shown(a) }
        }
        "VALIDATE" => AlterAction::ValidateConstraint {
            name: name_after(a, 1, &["CONSTRAINT"]).map(str::to_string),
        },
        "OWNER" => AlterAction::NoSchemaChange { what: shown(a) },
        _ => AlterAction::Unknown { what: shown(a) },
    }
}

/// `VARCHAR ( 255 )` as the parser path writes it: `varchar(255)`.
fn type_text(words: &str) -> String {
    words
        .to_ascii_lowercase()
        .replace(" (", "(")
        .replace("( ", "(")
        .replace(" )", ")")
        .replace(" ,", ",")
}

/// `ADD [COLUMN] [IF NOT EXISTS] name type ...`.
fn add_column(a: &[Tok]) -> Column {
    let mut i = 1;
    while a
        .get(i)
        .is_some_and(|w| ["COLUMN", "IF", "NOT", "EXISTS"].iter().any(|k| w.is(k)))
    {
        i += 1;
    }
    let name = a.get(i).and_then(Tok::ident).unwrap_or("?").to_string();
    let type_name = a.get(i + 1).and_then(Tok::ident).map(str::to_string);
    let serial = type_name.as_deref().is_some_and(|t| {
        matches!(
            t,
            "serial" | "bigserial" | "smallserial" | "serial2" | "serial4" | "serial8"
        )
    });
    let has = |kw: &str| a.iter().any(|w| w.is(kw));
    let fill = if serial {
        Fill::Serial(type_name.clone().unwrap_or_default())
    } else if has("GENERATED") || has("AS") {
        Fill::Generated("a generated column")
    } else if has("DEFAULT") {
        Fill::Constant
    } else {
        Fill::Nothing
    };
    Column {
        name,
        type_name,
        not_null: has_pair(a, "NOT", "NULL") || has_pair(a, "PRIMARY", "KEY"),
        fill,
        unique: has("UNIQUE") || has_pair(a, "PRIMARY", "KEY"),
    }
}

/// The names in the first parenthesised list: a constraint's columns.
fn first_group(a: &[Tok]) -> Vec<String> {
    let Some(open) = a.iter().position(|w| *w == Tok::Open) else {
        return Vec::new();
    };
    a[open + 1..]
        .iter()
        .take_while(|w| **w != Tok::Close)
        .filter_map(Tok::ident)
        .map(str::to_string)
        .collect()
}

/// `CHECK (col IS NOT NULL)`: the column.
fn check_not_null(a: &[Tok]) -> Option<String> {
    let at = a.iter().position(|w| w.is("CHECK"))?;
    match &a[at + 1..] {
        [Tok::Open, col, is, not, null, Tok::Close, ..]
            if is.is("IS") && not.is("NOT") && null.is("NULL") =>
        {
            col.ident().map(str::to_string)
        }
        _ => None,
    }
}

fn alter_other(words: &[Tok]) -> Change {
    let object = words.get(1).and_then(Tok::upper).unwrap_or("").to_string();
    let operation = format!("ALTER {object}");
    let has = |kw: &str| words.iter().any(|w| w.is(kw));
    match object.as_str() {
        "TYPE" if has("ADD") && has("VALUE") => Change::AddEnumValue { operation },
        "INDEX" | "SEQUENCE" | "ROLE" | "USER" | "DEFAULT" | "DATABASE" | "SYSTEM" => {
            Change::AlterHarmless {
                operation,
                what: "does not change what the running app reads or writes",
            }
        }
        _ if has("OWNER") && !has("RENAME") => Change::AlterHarmless {
            operation,
            what: "changes the owner only",
        },
        _ => Change::AlterOther { operation },
    }
}

/// A psql meta-command (`\set`, `\i file`).
pub(super) fn meta_command(text: &str) -> Change {
    let command = text.split_whitespace().next().unwrap_or("\\").to_string();
    let include = matches!(
        command.as_str(),
        "\\i" | "\\ir" | "\\include" | "\\include_relative"
    );
    Change::Meta { command, include }
}
