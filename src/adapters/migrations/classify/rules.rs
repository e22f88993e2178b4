//! The rule table: every [`Change`] either reader found gets its kind, its
//! reason and its hazards here, and nowhere else. A reason for a contract or
//! breaking verdict names the running version's query that would fail.
//!
//! Constraint tightening (README, "expand-contract"), one rule: a
//! constraint that narrows what existing columns accept — SET NOT NULL,
//! CHECK, FOREIGN KEY, UNIQUE, PRIMARY KEY, EXCLUDE, a unique index — makes
//! the running version's INSERT or UPDATE that breaks it fail from the moment
//! it exists, `NOT VALID` or not (that only skips the existing rows). So it is
//! a *contract*: it ships after the app version that satisfies it is
//! deployed. On columns added in the same file the running version never
//! writes them, so it is expand, except a NOT NULL without a default, which
//! its inserts break. Every tightening carries the `constraint-tightening`
//! hazard, so the policy can make it a warning instead (`tightening =
//! "warn"`); how it locks (a scan without NOT VALID) is a hazard of its own.

use policy_sdk::migration::{StatementKind, hazard};

use super::Action;
use super::change::{AlterAction, Change, Column, Constraint, Dropped, Fill};
use super::scope::{FileScope, History, NotNullCheck, key};
use super::types::{TypeChange, compare, is_unbounded_string, keeps_values};

/// Judges one change, learning what it creates into `scope` and `history`.
pub(super) fn judge(change: Change, history: &mut History, scope: &mut FileScope) -> Action {
    match change {
        Change::CreateTable {
            table,
            or_replace,
            columns,
            not_null_checks,
        } => {
            scope.tables.insert(table.clone());
            for c in &columns {
                let facts = history.column_mut(&table, &c.name);
                facts.type_name = c.type_name.clone();
                facts.not_null = c.not_null;
            }
            for (name, column) in not_null_checks {
                history.not_null_checks.insert(
                    name,
                    NotNullCheck {
                        table: table.clone(),
                        column,
                        validated: true,
                    },
                );
            }
            let mut a = expand(
                "CREATE TABLE",
                Some(&table),
                None,
                "a new table; the running app does not use it",
            );
            if or_replace {
                a.hazards.push(replaces(&table));
            }
            a
        }
        Change::CreateIndex {
            table,
            name,
            unique,
            concurrently,
        } => create_index(table, name, unique, concurrently, history, scope),
        Change::CreateView {
            name,
            materialized,
            or_replace,
        } => {
            if let Some(n) = &name {
                scope.views.insert(n.clone());
            }
            let op = if materialized {
                "CREATE MATERIALIZED VIEW"
            } else {
                "CREATE VIEW"
            };
            let shown = name.as_deref();
            created(
                op,
                shown,
                shown,
                "a new view; the running app does not use it",
                or_replace,
            )
        }
        Change::CreateOther {
            operation,
            name,
            or_replace,
        } => created(
            &operation,
            None,
            name.as_deref(),
            "creates a new object; the running app does not use it",
            or_replace,
        ),
        Change::Drop {
            object,
            name,
            concurrently,
        } => drop_object(&object, &name, concurrently, history, scope),
        Change::DropUnknown { operation } => contract(
            &operation,
            None,
            None,
            "drops an object: the running version's queries that still use it fail",
        ),
        Change::AlterTable { table, action } => alter_table(&table, action, history, scope),
        Change::AlterTableUnnamed => breaking(
            "ALTER TABLE",
            None,
            None,
            "no table name found, so the running version's queries it may break cannot be told; treated as breaking",
        ),
        Change::AddEnumValue { operation } => expand(
            &operation,
            None,
            None,
            "adds an enum value; the values the running app reads and writes stay",
        ),
        Change::AlterHarmless { operation, what } => other(&operation, what),
        Change::AlterOther { operation } => breaking(
            &operation,
            None,
            None,
            "changes an existing object in place, which the running version's queries may use; treated as breaking",
        ),
        Change::Do { ddl: true } => breaking(
            "DO",
            None,
            None,
            "a DO block runs DDL opsdeploy cannot see into, so the running version's queries it breaks cannot be told; treated as breaking",
        ),
        Change::Do { ddl: false } => other("DO", "a DO block without ALTER, DROP or RENAME"),
        Change::Data { keyword } => {
            other(&keyword, "changes data or session state, not the schema")
        }
        Change::Meta {
            command,
            include: true,
        } => breaking(
            &command,
            None,
            None,
            "psql meta-command including another file opsdeploy cannot see; treated as breaking",
        ),
        Change::Meta { command, .. } => other(
            &command,
            "psql meta-command (not SQL): only psql runs it; no schema change",
        ),
        Change::Unknown { keyword } => breaking(
            &keyword,
            None,
            None,
            &format!("`{keyword}` is not a statement opsdeploy knows; treated as breaking"),
        ),
        Change::Empty => other("", "an empty statement"),
        Change::NoKeyword => other("", "no SQL keyword to go by; nothing to classify"),
    }
}

fn create_index(
    table: Option<String>,
    name: Option<String>,
    unique: bool,
    concurrently: bool,
    history: &mut History,
    scope: &mut FileScope,
) -> Action {
    if let Some(n) = &name {
        scope.indexes.insert(n.clone());
        history.indexes.insert(n.clone(), unique);
    }
    let t = table.as_deref();
    let existing = t.is_some_and(|t| !scope.tables.contains(t));
    let shown = t.unwrap_or("its table");
    if unique && existing {
        let mut a = contract(
            "CREATE INDEX",
            t,
            None,
            &format!(
                "builds a unique index on `{shown}`: the running version's INSERT or UPDATE that writes a duplicate fails from now on; ship it after the app that keeps them unique is deployed"
            ),
        );
        a.hazards.push(tightening(shown));
        if !concurrently {
            a.hazards.push(index_not_concurrent("CREATE INDEX", shown));
        }
        return a;
    }
    let mut a = expand("CREATE INDEX", t, None, "a new index; queries keep working");
    if existing && !concurrently {
        a.hazards.push(index_not_concurrent("CREATE INDEX", shown));
    }
    a
}

/// Names PostgreSQL and frameworks give unique indexes (`users_email_key`,
/// `uniq_email`, `..._uidx`), for indexes no migration read declared.
fn looks_unique(index: &str) -> bool {
    let i = index.to_ascii_lowercase();
    i.contains("uniq")
        || ["_key", "_pkey", "_uk", "_ukey", "_uidx", "_ux"]
            .iter()
            .any(|s| i.ends_with(s))
}

fn drop_object(
    object: &Dropped,
    name: &str,
    concurrently: bool,
    history: &mut History,
    scope: &FileScope,
) -> Action {
    let what = match object {
        Dropped::Table => "DROP TABLE".to_string(),
        Dropped::View => "DROP VIEW".to_string(),
        Dropped::MaterializedView => "DROP MATERIALIZED VIEW".to_string(),
        Dropped::ForeignTable => "DROP FOREIGN TABLE".to_string(),
        Dropped::Index => "DROP INDEX".to_string(),
        Dropped::Other(kind) => format!("DROP {}", kind.to_ascii_uppercase()),
    };
    let created_here = match object {
        Dropped::Table => scope.tables.contains(name),
        Dropped::Index => scope.indexes.contains(name),
        Dropped::View | Dropped::MaterializedView => scope.views.contains(name),
        _ => false,
    };
    if created_here {
        let table = matches!(object, Dropped::Table).then_some(name);
        return other_on(&what, table, "it was created in this file");
    }
    match object {
        Dropped::Index => {
            let unique = history
                .indexes
                .remove(name)
                .unwrap_or_else(|| looks_unique(name));
            let mut a = if unique {
                contract(
                    &what,
                    None,
                    None,
                    &format!(
                        "drops unique index `{name}`: the running version's `INSERT ... ON CONFLICT` that it backs fails, and duplicates it kept out can be written"
                    ),
                )
            } else {
                other(
                    &what,
                    &format!(
                        "drops index `{name}`, which is not unique and so backs no ON CONFLICT: the running version's queries keep working, only without it"
                    ),
                )
            };
            if !concurrently {
                a.hazards.push((
                    hazard::INDEX_NOT_CONCURRENT,
                    format!("DROP INDEX `{name}` without CONCURRENTLY blocks reads and writes of its table"),
                ));
            }
            a
        }
        Dropped::Table | Dropped::View | Dropped::MaterializedView | Dropped::ForeignTable => {
            contract(
                &what,
                Some(name),
                None,
                &format!(
                    "drops `{name}`: the running version's queries on it (`SELECT ... FROM {name}`) fail because it no longer exists"
                ),
            )
        }
        Dropped::Other(kind) => contract(
            &what,
            None,
            None,
            &format!(
                "drops {kind} `{name}`: the running version's queries that use it fail because it no longer exists"
            ),
        ),
    }
}

fn alter_table(
    table: &str,
    action: AlterAction,
    history: &mut History,
    scope: &mut FileScope,
) -> Action {
    let new_table = scope.tables.contains(table);
    let t = Some(table);
    let fresh = |scope: &FileScope, column: &str| {
        if new_table {
            Some("the table was created in this file")
        } else if scope.added_column(table, column).is_some() {
            Some("the column was added in this file")
        } else {
            None
        }
    };
    match action {
        AlterAction::AddColumn(column) => add_column(table, column, new_table, history, scope),
        AlterAction::AddConstraint {
            name,
            constraint,
            columns,
            not_valid,
        } => add_constraint(table, name, constraint, columns, not_valid, history, scope),
        AlterAction::ValidateConstraint { name } => {
            if let Some(name) = name {
                match history.not_null_checks.get_mut(&name) {
                    Some(check) => check.validated = true,
                    None => {
                        history.validated.insert(name);
                    }
                }
            }
            other_on(
                "VALIDATE CONSTRAINT",
                t,
                "validating takes a lock that lets reads and writes go on",
            )
        }
        AlterAction::DropColumn { columns } => {
            let shown = columns.join(", ");
            let column = columns.first().map(String::as_str);
            if new_table {
                return other_on("DROP COLUMN", t, "the table was created in this file");
            }
            if columns
                .iter()
                .all(|c| scope.added_column(table, c).is_some())
            {
                let mut a = other_on("DROP COLUMN", t, "the column was added in this file");
                a.column = column.map(str::to_string);
                return a;
            }
            for c in &columns {
                history.columns.remove(&key(table, c));
            }
            contract(
                "DROP COLUMN",
                t,
                column,
                &format!(
                    "drops `{shown}`: the running version's queries that read or write it (`SELECT {shown} FROM {table}`, `INSERT INTO {table} ({shown}) ...`) fail because it no longer exists"
                ),
            )
        }
        AlterAction::DropConstraint { name } => {
            let shown = name.as_deref().unwrap_or("(unnamed)").to_string();
            let relaxes = name.as_deref().is_some_and(|n| {
                history.not_null_checks.remove(n).is_some()
                    || matches!(
                        history.constraints.get(n),
                        Some(Constraint::Check { .. } | Constraint::ForeignKey)
                    )
                    || names_check_or_key(n)
            });
            if new_table {
                return other_on("DROP CONSTRAINT", t, "the table was created in this file");
            }
            if relaxes {
                return expand(
                    "DROP CONSTRAINT",
                    t,
                    None,
                    &format!(
                        "drops check or foreign key `{shown}`: it relaxes what `{table}` accepts, so everything the running version writes stays valid"
                    ),
                );
            }
            contract(
                "DROP CONSTRAINT",
                t,
                None,
                &format!(
                    "drops constraint `{shown}`: the running version's `INSERT ... ON CONFLICT` that names it fails, and what it relies on the constraint for (uniqueness, cascades) stops holding"
                ),
            )
        }
        AlterAction::RenameColumn { old, new } => {
            if let Some(fill) = scope.columns.remove(&key(table, &old)) {
                scope.columns.insert(key(table, &new), fill);
            }
            history.rename_column(table, &old, &new);
            if let Some(why) = fresh(scope, &new) {
                let mut a = other_on("RENAME COLUMN", t, why);
                a.column = Some(old);
                return a;
            }
            breaking(
                "RENAME COLUMN",
                t,
                Some(&old),
                &format!(
                    "renames `{old}` to `{new}` in place: the running version's queries that name `{old}` (`SELECT {old} FROM {table}`, `UPDATE {table} SET {old} = ...`) fail because it no longer exists"
                ),
            )
        }
        AlterAction::RenameTable { new } => {
            if new_table {
                scope.tables.insert(new);
                return other_on("RENAME TABLE", t, "the table was created in this file");
            }
            breaking(
                "RENAME TABLE",
                t,
                None,
                &format!(
                    "renames `{table}` to `{new}` in place: the running version's queries on `{table}` (`SELECT ... FROM {table}`, `INSERT INTO {table} ...`) fail because it no longer exists"
                ),
            )
        }
        AlterAction::RenameConstraint { old, new } => {
            if new_table {
                return other_on("RENAME CONSTRAINT", t, "the table was created in this file");
            }
            let (old, new) = (
                old.as_deref().unwrap_or("(unnamed)"),
                new.as_deref().unwrap_or("?"),
            );
            breaking(
                "RENAME CONSTRAINT",
                t,
                None,
                &format!(
                    "renames constraint `{old}` to `{new}`: the running version's `INSERT ... ON CONFLICT ON CONSTRAINT {old}` fails because the name no longer exists"
                ),
            )
        }
        AlterAction::SetNotNull { column } => {
            set_not_null(table, &column, new_table, history, scope)
        }
        AlterAction::DropNotNull { column } => {
            history.column_mut(table, &column).not_null = false;
            expand(
                "DROP NOT NULL",
                t,
                Some(&column),
                "relaxes a constraint; what the running app writes stays valid",
            )
        }
        AlterAction::SetDefault { column } => expand(
            "SET DEFAULT",
            t,
            Some(&column),
            "a default only applies to rows inserted without the column",
        ),
        AlterAction::DropDefault { column } => {
            let not_null = history.column(table, &column).is_some_and(|c| c.not_null);
            let fails = format!(
                "removes the default of NOT NULL `{column}`: the running version's `INSERT INTO {table}`, which does not name `{column}`, fails with a not-null violation once the default is gone"
            );
            match fresh(scope, &column) {
                // Added here, so the running version never names it.
                Some(_) if not_null && !new_table => {
                    breaking("DROP DEFAULT", t, Some(&column), &fails)
                }
                Some(why) => other_on("DROP DEFAULT", t, why),
                None if not_null => contract("DROP DEFAULT", t, Some(&column), &fails),
                // Declared nullable: inserts without it store NULL, which it allows.
                None if history
                    .column(table, &column)
                    .is_some_and(|c| c.type_name.is_some()) =>
                {
                    expand(
                        "DROP DEFAULT",
                        t,
                        Some(&column),
                        &format!(
                            "removes the default of nullable `{column}`: the running version's INSERTs without it store NULL, which the column allows"
                        ),
                    )
                }
                None => contract(
                    "DROP DEFAULT",
                    t,
                    Some(&column),
                    &format!(
                        "removes the default of `{column}`: the running version's `INSERT INTO {table}` without `{column}` no longer gets the value it relies on"
                    ),
                ),
            }
        }
        AlterAction::SetType { column, to, using } => set_type(
            table,
            &column,
            &to,
            using.as_deref(),
            fresh(scope, &column),
            history,
        ),
        AlterAction::AddGenerated { column } => expand(
            "ADD GENERATED",
            t,
            Some(&column),
            "turns the column into an identity column; existing values stay",
        ),
        AlterAction::ColumnOptions => {
            other_on("ALTER COLUMN", t, "changes foreign-table options only")
        }
        AlterAction::NoSchemaChange { what } => other_on(
            "ALTER TABLE",
            t,
            &format!("`{what}` does not change the schema"),
        ),
        AlterAction::Unknown { .. } if new_table => {
            other_on("ALTER TABLE", t, "the table was created in this file")
        }
        AlterAction::Unknown { what } => breaking(
            "ALTER TABLE",
            t,
            None,
            &format!(
                "`{what}` is an ALTER TABLE action opsdeploy does not know, so the running version's queries on `{table}` may break; treated as breaking"
            ),
        ),
    }
}

fn add_column(
    table: &str,
    column: Column,
    new_table: bool,
    history: &mut History,
    scope: &mut FileScope,
) -> Action {
    let name = column.name.clone();
    scope.columns.insert(key(table, &name), column.fill.fills());
    let facts = history.column_mut(table, &name);
    facts.type_name = column.type_name.clone();
    facts.not_null = column.not_null;
    let (t, c) = (Some(table), Some(name.as_str()));
    if new_table {
        return expand(
            "ADD COLUMN",
            t,
            c,
            "adds a column to a table created in this file",
        );
    }
    if column.not_null && !column.fill.fills() {
        return breaking(
            "ADD COLUMN",
            t,
            c,
            &format!(
                "adds `{name}` NOT NULL without a default: the running version's `INSERT INTO {table}`, which does not name `{name}`, fails with a not-null violation (and the ALTER fails outright if `{table}` has rows)"
            ),
        );
    }
    let mut a = expand(
        "ADD COLUMN",
        t,
        c,
        if column.not_null {
            "adds a NOT NULL column with a default; the running app keeps working"
        } else {
            "adds a nullable column; the running app keeps working"
        },
    );
    let rewrite = match &column.fill {
        Fill::Serial(type_name) => Some(format!("`{type_name}`")),
        Fill::Generated(what) => Some(what.to_string()),
        Fill::Volatile(f) => Some(format!("a volatile default (`{f}()`)")),
        Fill::Nothing | Fill::Constant => None,
    };
    if let Some(why) = rewrite {
        a.hazards.push((
            hazard::TABLE_REWRITE,
            format!(
                "adding `{name}` with {why} rewrites `{table}` while reads and writes are blocked"
            ),
        ));
    }
    if column.unique {
        a.hazards.push((
            hazard::UNIQUE_CONSTRAINT,
            format!("the unique index for `{name}` is built while writes to `{table}` are blocked"),
        ));
    }
    a
}

fn add_constraint(
    table: &str,
    name: Option<String>,
    constraint: Constraint,
    columns: Vec<String>,
    not_valid: bool,
    history: &mut History,
    scope: &FileScope,
) -> Action {
    let new_table = scope.tables.contains(table);
    let shown = name.as_deref().unwrap_or("(unnamed)").to_string();
    if let Some(n) = &name {
        history.constraints.insert(n.clone(), constraint.clone());
    }
    if let (
        Constraint::Check {
            not_null_column: Some(column),
        },
        Some(n),
    ) = (&constraint, &name)
    {
        history.not_null_checks.insert(
            n.clone(),
            NotNullCheck {
                table: table.to_string(),
                column: column.clone(),
                validated: !not_valid,
            },
        );
    }
    let t = Some(table);
    if new_table {
        return expand(
            "ADD CONSTRAINT",
            t,
            None,
            &format!("adds constraint `{shown}` to a table created in this file"),
        );
    }
    let lock = match &constraint {
        Constraint::Check { .. } | Constraint::ForeignKey if !not_valid => Some((
            hazard::CONSTRAINT_VALIDATION,
            format!(
                "constraint `{shown}` without NOT VALID scans all of `{table}` while writes are blocked; add it NOT VALID, then VALIDATE CONSTRAINT"
            ),
        )),
        Constraint::Unique | Constraint::PrimaryKey => Some((
            hazard::UNIQUE_CONSTRAINT,
            format!(
                "constraint `{shown}` builds its index while writes to `{table}` are blocked; CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... USING INDEX"
            ),
        )),
        Constraint::Exclude => Some((
            hazard::EXCLUSION_CONSTRAINT,
            format!(
                "exclusion constraint `{shown}` is built while writes to `{table}` are blocked"
            ),
        )),
        _ => None,
    };
    // Columns the running version never writes hold NULL, which CHECK,
    // FOREIGN KEY and UNIQUE let through; NOT NULL does not.
    let fresh: Vec<Option<bool>> = columns
        .iter()
        .map(|c| scope.added_column(table, c))
        .collect();
    let all_fresh = !fresh.is_empty() && fresh.iter().all(Option::is_some);
    let mut a = match &constraint {
        Constraint::UsingIndex => expand(
            "ADD CONSTRAINT",
            t,
            None,
            &format!("adds constraint `{shown}` over a unique index that already enforces it"),
        ),
        Constraint::Other => expand(
            "ADD CONSTRAINT",
            t,
            None,
            &format!("adds constraint `{shown}`"),
        ),
        Constraint::Check {
            not_null_column: Some(c),
        } if fresh == [Some(false)] => breaking(
            "ADD CONSTRAINT",
            t,
            Some(c),
            &format!(
                "adds `{shown}`, a NOT NULL check on `{c}`, which this file added without a default: the running version's `INSERT INTO {table}`, which does not name `{c}`, fails the check"
            ),
        ),
        _ if all_fresh => expand(
            "ADD CONSTRAINT",
            t,
            None,
            &format!(
                "adds constraint `{shown}` on columns added in this file, which the running version leaves NULL and the constraint lets through"
            ),
        ),
        _ => {
            let mut a = contract(
                "ADD CONSTRAINT",
                t,
                None,
                &format!(
                    "adds constraint `{shown}`: the running version's INSERT and UPDATE on `{table}` that break it fail from now on (NOT VALID only skips the rows already there); ship it after the app that satisfies it is deployed"
                ),
            );
            a.hazards.push(tightening(table));
            a
        }
    };
    a.hazards.extend(lock);
    a
}

/// Names people give checks and foreign keys (`price_positive_check`,
/// `orders_user_id_fkey`, `foo_bar_not_null`), for constraints no migration
/// read declared.
fn names_check_or_key(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "_check", "_chk", "check_", "_fkey", "_fk", "fk_", "not_null", "notnull", "_nn",
    ]
    .iter()
    .any(|s| n.contains(s))
}

fn set_not_null(
    table: &str,
    column: &str,
    new_table: bool,
    history: &mut History,
    scope: &FileScope,
) -> Action {
    let (t, c) = (Some(table), Some(column));
    let added_here = scope.added_column(table, column);
    // A validated CHECK (col IS NOT NULL), read or named for the column.
    let validated = history
        .validated_not_null(table, column)
        .map(str::to_string)
        .or_else(|| {
            history
                .validated
                .iter()
                .find(|n| n.contains(column) && names_check_or_key(n))
                .cloned()
        });
    history.column_mut(table, column).not_null = true;
    if new_table {
        return expand("SET NOT NULL", t, c, "the table was created in this file");
    }
    match added_here {
        Some(true) => {
            return expand(
                "SET NOT NULL",
                t,
                c,
                "the column was added in this file with a default, so the running version's inserts, which do not name it, still get a value",
            );
        }
        Some(false) => {
            return breaking(
                "SET NOT NULL",
                t,
                c,
                &format!(
                    "makes `{column}`, added in this file without a default, NOT NULL: the running version's `INSERT INTO {table}`, which does not name `{column}`, fails with a not-null violation"
                ),
            );
        }
        None => {}
    }
    if let Some(name) = validated {
        return expand(
            "SET NOT NULL",
            t,
            c,
            &format!(
                "validated constraint `{name}` already keeps NULLs out of `{column}`, so no scan and no change for the running app"
            ),
        );
    }
    let mut a = contract(
        "SET NOT NULL",
        t,
        c,
        &format!(
            "makes `{column}` NOT NULL: the running version's `INSERT INTO {table}` or UPDATE that leaves `{column}` NULL fails from now on; ship it after the app that always sets `{column}` is deployed"
        ),
    );
    a.hazards.push(tightening(table));
    a
}

fn set_type(
    table: &str,
    column: &str,
    to: &str,
    using: Option<&str>,
    fresh: Option<&str>,
    history: &mut History,
) -> Action {
    let (t, c) = (Some(table), Some(column));
    let old = history
        .column(table, column)
        .and_then(|f| f.type_name.clone());
    history.column_mut(table, column).type_name = Some(to.to_string());
    if let Some(why) = fresh {
        let mut a = other_on("ALTER COLUMN TYPE", t, why);
        a.column = Some(column.to_string());
        return a;
    }
    let rewrite = |what: String| {
        (
            hazard::TABLE_REWRITE,
            format!("{what} rewrites `{table}` while reads and writes are blocked"),
        )
    };
    match old.as_deref().map(|o| (o, compare(o, to, column, using))) {
        Some((old, TypeChange::Widening)) => expand(
            "ALTER COLUMN TYPE",
            t,
            c,
            &format!(
                "widens `{column}` from {old} to {to}: every value the running app reads and writes still fits, and the table is not rewritten"
            ),
        ),
        Some((old, TypeChange::WideningRewrite)) => {
            let mut a = expand(
                "ALTER COLUMN TYPE",
                t,
                c,
                &format!(
                    "widens `{column}` from {old} to {to}: every value the running app reads and writes still fits"
                ),
            );
            a.hazards
                .push(rewrite(format!("changing `{column}` from {old} to {to}")));
            a
        }
        None if using.is_none_or(|u| keeps_values(u, column)) && is_unbounded_string(to) => {
            let mut a = expand(
                "ALTER COLUMN TYPE",
                t,
                c,
                &format!(
                    "makes `{column}` {to}, which takes any string: the running app's string reads and writes keep working"
                ),
            );
            a.hazards.push(rewrite(format!(
                "unless `{column}` already is a varchar, changing it to {to}"
            )));
            a
        }
        _ => {
            let from = old.map(|o| format!(" from {o}")).unwrap_or_default();
            breaking(
                "ALTER COLUMN TYPE",
                t,
                c,
                &format!(
                    "changes the type of `{column}`{from} to {to} in place: the running version's queries that read or write `{column}` (`SELECT {column} FROM {table}`, `INSERT INTO {table} ({column}) ...`) may fail or read values of a type they do not expect, and the table is rewritten under an exclusive lock"
                ),
            )
        }
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

/// A new object; `CREATE OR REPLACE` may change an existing one in place.
fn created(
    op: &str,
    table: Option<&str>,
    name: Option<&str>,
    reason: &str,
    or_replace: bool,
) -> Action {
    let mut a = expand(op, table, None, reason);
    if or_replace {
        a.hazards.push(replaces(name.unwrap_or("it")));
    }
    a
}

fn replaces(name: &str) -> (&'static str, String) {
    (
        hazard::REPLACES_IN_PLACE,
        format!("CREATE OR REPLACE changes `{name}` in place for the running app"),
    )
}

fn tightening(table: &str) -> (&'static str, String) {
    (
        hazard::CONSTRAINT_TIGHTENING,
        format!("narrows what `{table}` accepts from the running version's writes"),
    )
}

fn index_not_concurrent(op: &str, table: &str) -> (&'static str, String) {
    (
        hazard::INDEX_NOT_CONCURRENT,
        format!("{op} without CONCURRENTLY blocks writes to `{table}` until the index is built"),
    )
}
