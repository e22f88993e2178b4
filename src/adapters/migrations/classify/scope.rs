//! What the classifier knows while it reads: objects the current file created
//! (new, so nothing running uses them) and what earlier files declared.

use std::collections::{HashMap, HashSet};

/// What the classifier learnt from the files before the current one (and
/// from the current one, for the files after it).
#[derive(Debug, Default)]
pub struct History {
    /// `CHECK (col IS NOT NULL)` constraints by name.
    pub(super) not_null_checks: HashMap<String, NotNullCheck>,
    /// Declared columns by (table, column).
    pub(super) columns: HashMap<(String, String), ColumnFacts>,
    /// Indexes by name: whether each is unique.
    pub(super) indexes: HashMap<String, bool>,
    /// Constraints by name, as added.
    pub(super) constraints: HashMap<String, super::change::Constraint>,
    /// Constraints validated whose definition was not read.
    pub(super) validated: HashSet<String>,
}

#[derive(Debug, Clone)]
pub(super) struct NotNullCheck {
    pub table: String,
    pub column: String,
    pub validated: bool,
}

#[derive(Debug, Clone, Default)]
pub(super) struct ColumnFacts {
    /// Lower-cased type as declared, when known.
    pub type_name: Option<String>,
    pub not_null: bool,
}

impl History {
    pub(super) fn validated_not_null(&self, table: &str, column: &str) -> Option<&str> {
        self.not_null_checks
            .iter()
            .find(|(_, c)| c.validated && c.table == table && c.column == column)
            .map(|(name, _)| name.as_str())
    }

    pub(super) fn column(&self, table: &str, column: &str) -> Option<&ColumnFacts> {
        self.columns.get(&key(table, column))
    }

    pub(super) fn column_mut(&mut self, table: &str, column: &str) -> &mut ColumnFacts {
        self.columns.entry(key(table, column)).or_default()
    }

    pub(super) fn rename_column(&mut self, table: &str, old: &str, new: &str) {
        if let Some(facts) = self.columns.remove(&key(table, old)) {
            self.columns.insert(key(table, new), facts);
        }
    }
}

/// Objects created by the file being classified.
#[derive(Debug, Default)]
pub(super) struct FileScope {
    pub tables: HashSet<String>,
    pub indexes: HashSet<String>,
    pub views: HashSet<String>,
    /// Columns added to existing tables, and whether rows get a value
    /// without the app naming them (a default, a sequence, a generator).
    pub columns: HashMap<(String, String), bool>,
}

impl FileScope {
    pub(super) fn added_column(&self, table: &str, column: &str) -> Option<bool> {
        self.columns.get(&key(table, column)).copied()
    }
}

pub(super) fn key(table: &str, column: &str) -> (String, String) {
    (table.to_string(), column.to_string())
}
