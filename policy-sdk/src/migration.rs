//! Database migrations pending for this deployment.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Migration<'a> {
    /// File name without extension, e.g. `0003_add_email`; migrations are ordered by it.
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    /// Relative to the project.
    #[serde(borrow)]
    pub path: Cow<'a, str>,
    /// sha256 of the file as planned.
    #[serde(borrow)]
    pub sha256: Cow<'a, str>,
    #[serde(borrow)]
    pub sql: Cow<'a, str>,
    /// Declared phase from the file name or a `-- opsdeploy: phase=...` header.
    #[serde(default)]
    pub phase: Option<Phase>,
    /// Statements as the host's SQL parser classified them.
    #[serde(borrow, default)]
    pub statements: Vec<Statement<'a>>,
    /// Where this migration already ran, from the audit log.
    #[serde(borrow, default)]
    pub ran_on: Vec<Run<'a>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Runs before the new app version is deployed.
    Expand,
    /// Runs after the app no longer uses the old schema.
    Contract,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Statement<'a> {
    /// 1-based line where the statement starts.
    pub line: u32,
    #[serde(borrow)]
    pub sql: Cow<'a, str>,
    pub kind: StatementKind,
    /// e.g. `ADD COLUMN`, `DROP TABLE`, `CREATE INDEX`.
    #[serde(borrow, default)]
    pub operation: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub table: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub column: Option<Cow<'a, str>>,
    /// Why the statement got its kind, in words.
    #[serde(borrow, default)]
    pub reason: Option<Cow<'a, str>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatementKind {
    /// Backwards compatible: the running app keeps working.
    Expand,
    /// Removes what the old app version may still use.
    Contract,
    /// Changes in place what the running app uses (rename, type change, ...).
    Breaking,
    /// Data changes and statements with no schema effect.
    Other,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run<'a> {
    #[serde(borrow)]
    pub environment: Cow<'a, str>,
    /// sha256 of the file when it ran.
    #[serde(borrow)]
    pub sha256: Cow<'a, str>,
    #[serde(borrow, default)]
    pub bundle: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub at: Option<Cow<'a, str>>,
}
