//! What a statement does, whichever reader understood it. The parser path
//! (`ast.rs`) and the keyword fallback (`words.rs`) both describe a statement
//! as these changes; `rules.rs` alone judges them, so the two paths cannot
//! disagree on a verdict or word a message differently.

/// How the rows the running app inserts get a value for a column it does not
/// name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Fill {
    /// NULL, or a not-null violation when the column is NOT NULL.
    Nothing,
    /// A default PostgreSQL 11+ stores once, without rewriting the table.
    Constant,
    /// A default that calls a volatile function: every row is rewritten.
    Volatile(String),
    /// `serial` and friends: a sequence default, written into every row.
    Serial(String),
    /// An identity or stored generated column.
    Generated(&'static str),
}

impl Fill {
    pub(super) fn fills(&self) -> bool {
        *self != Fill::Nothing
    }
}

/// A column as a `CREATE TABLE` or `ADD COLUMN` declares it.
#[derive(Debug, Clone)]
pub(super) struct Column {
    pub name: String,
    /// Lower-cased type as written (`varchar(100)`), when the reader saw one.
    pub type_name: Option<String>,
    pub not_null: bool,
    pub fill: Fill,
    pub unique: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Constraint {
    /// `CHECK (...)`; the column when it is `CHECK (col IS NOT NULL)`.
    Check {
        not_null_column: Option<String>,
    },
    ForeignKey,
    Unique,
    PrimaryKey,
    Exclude,
    /// `UNIQUE` / `PRIMARY KEY ... USING INDEX`: the index was built already.
    UsingIndex,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Dropped {
    Table,
    View,
    MaterializedView,
    ForeignTable,
    Index,
    /// Another object type, lower case (`sequence`, `type`, `schema`).
    Other(String),
}

#[derive(Debug, Clone)]
pub(super) enum AlterAction {
    AddColumn(Column),
    AddConstraint {
        name: Option<String>,
        constraint: Constraint,
        /// The columns it constrains, where the reader could tell.
        columns: Vec<String>,
        not_valid: bool,
    },
    ValidateConstraint {
        name: Option<String>,
    },
    DropColumn {
        columns: Vec<String>,
    },
    DropConstraint {
        name: Option<String>,
    },
    RenameColumn {
        old: String,
        new: String,
    },
    RenameTable {
        new: String,
    },
    RenameConstraint {
        old: Option<String>,
        new: Option<String>,
    },
    SetNotNull {
        column: String,
    },
    DropNotNull {
        column: String,
    },
    SetDefault {
        column: String,
    },
    DropDefault {
        column: String,
    },
    SetType {
        column: String,
        /// Lower-cased, as written.
        to: String,
        /// The `USING` expression, lower-cased.
        using: Option<String>,
    },
    AddGenerated {
        column: String,
    },
    /// Options of a foreign table's column.
    ColumnOptions,
    /// Owner, replica identity, triggers, storage parameters.
    NoSchemaChange {
        what: String,
    },
    Unknown {
        what: String,
    },
}

#[derive(Debug, Clone)]
pub(super) enum Change {
    CreateTable {
        table: String,
        or_replace: bool,
        columns: Vec<Column>,
        /// `CONSTRAINT name CHECK (col IS NOT NULL)`: (name, column).
        not_null_checks: Vec<(String, String)>,
    },
    CreateIndex {
        table: Option<String>,
        name: Option<String>,
        unique: bool,
        concurrently: bool,
    },
    CreateView {
        name: Option<String>,
        materialized: bool,
        or_replace: bool,
    },
    /// Sequences, types, functions, extensions, ...
    CreateOther {
        operation: String,
        name: Option<String>,
        or_replace: bool,
    },
    Drop {
        object: Dropped,
        name: String,
        concurrently: bool,
    },
    /// `DROP` of something the keyword reader cannot name.
    DropUnknown {
        operation: String,
    },
    AlterTable {
        table: String,
        action: AlterAction,
    },
    /// `ALTER TABLE` without a table name the reader could find.
    AlterTableUnnamed,
    /// `ALTER TYPE ... ADD VALUE`.
    AddEnumValue {
        operation: String,
    },
    /// `ALTER INDEX|SEQUENCE|ROLE|...`, or an owner change.
    AlterHarmless {
        operation: String,
        what: &'static str,
    },
    /// `ALTER` of another object in place.
    AlterOther {
        operation: String,
    },
    /// A `DO` block; whether its body holds DDL.
    Do {
        ddl: bool,
    },
    /// Data changes, transactions, session settings, grants.
    Data {
        keyword: String,
    },
    /// A psql meta-command; whether it includes another file.
    Meta {
        command: String,
        include: bool,
    },
    Unknown {
        keyword: String,
    },
    Empty,
    NoKeyword,
}
