//! Database migrations: every migration file of the environment's migrations
//! directory, in order, with where each already ran. The ones pending for this
//! deployment are those with no [`Run`] for `environment.name`.
//!
//! opsdeploy classifies each statement on the host with a PostgreSQL parser
//! (README, "expand-contract"), so policies read `kind`, `operation`, `table`
//! and `column` instead of parsing SQL themselves.

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

/// One action of one SQL statement. A statement with several actions
/// (`ALTER TABLE t ADD COLUMN a int, DROP COLUMN b`) gives one entry per
/// action; they share `ordinal`, `line` and `sql`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Statement<'a> {
    /// 1-based line where the statement starts (its first token, not a comment).
    pub line: u32,
    /// 1-based position of the SQL statement in the file.
    #[serde(default)]
    pub ordinal: u32,
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
    /// Locking or rewrite hazards that do not change the kind (e.g. `CREATE
    /// INDEX` without `CONCURRENTLY` on an existing table); see [`hazard`].
    #[serde(borrow, default, skip_serializing_if = "Vec::is_empty")]
    pub hazards: Vec<Hazard<'a>>,
    /// The SQL parser could not parse the statement (a psql meta-command or a
    /// dialect gap): `kind` was guessed from its keywords, leaning to the
    /// riskier kind, and `reason` says so.
    #[serde(default, skip_serializing_if = "is_false")]
    pub unparsed: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A hazard of a statement: what it locks or rewrites while it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hazard<'a> {
    /// One of the [`hazard`] codes.
    #[serde(borrow)]
    pub code: Cow<'a, str>,
    #[serde(borrow)]
    pub message: Cow<'a, str>,
}

/// Hazard codes opsdeploy's classifier reports.
pub mod hazard {
    /// `CREATE INDEX` / `DROP INDEX` without `CONCURRENTLY` on an existing
    /// table: writes block until the index is built or dropped.
    pub const INDEX_NOT_CONCURRENT: &str = "index-not-concurrent";
    /// `ADD CONSTRAINT` (CHECK, FOREIGN KEY) without `NOT VALID` on an existing
    /// table: the whole table is scanned under a lock.
    pub const CONSTRAINT_VALIDATION: &str = "constraint-validation";
    /// `ADD CONSTRAINT ... UNIQUE` / `PRIMARY KEY` built in place: an index is
    /// built while writes are blocked (build it `CONCURRENTLY`, then `USING INDEX`).
    pub const UNIQUE_CONSTRAINT: &str = "unique-constraint";
    /// `ADD CONSTRAINT ... EXCLUDE`: built while writes are blocked.
    pub const EXCLUSION_CONSTRAINT: &str = "exclusion-constraint";
    /// The table is rewritten under an exclusive lock (volatile default,
    /// `SERIAL`, identity or stored generated column).
    pub const TABLE_REWRITE: &str = "table-rewrite";
    /// `CREATE OR REPLACE` of a view or function the running app may use.
    pub const REPLACES_IN_PLACE: &str = "replaces-in-place";
    /// A constraint that narrows what an existing table accepts (NOT NULL,
    /// CHECK, FOREIGN KEY, UNIQUE, PRIMARY KEY, EXCLUDE, a unique index),
    /// enforced and checked against every row in one step. It marks a
    /// `breaking` statement whose only fault is that tightening, so a policy
    /// may treat it as a warning instead (expand-contract's `tightening`).
    pub const CONSTRAINT_TIGHTENING: &str = "constraint-tightening";
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
