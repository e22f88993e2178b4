//! Reads what a statement parsed by `sqlparser` does, as [`Change`]s.
//! Statements this reader does not cover go to the keyword reader.

use sqlparser::ast::{
    AlterColumnOperation, AlterTableOperation, ColumnDef, ColumnOption, Expr, GeneratedAs,
    ObjectName, ObjectType, RenameTableNameKind, Statement as Ast, TableConstraint,
};

use super::change::{AlterAction, Change, Column, Constraint, Dropped, Fill};
use super::words;

pub(super) fn changes(statement: &Ast, text: &str) -> Vec<Change> {
    match statement {
        Ast::CreateTable(create) => {
            let mut not_null_checks = Vec::new();
            for constraint in &create.constraints {
                if let TableConstraint::Check(check) = constraint
                    && let (Some(name), Some(column)) = (&check.name, not_null_column(&check.expr))
                {
                    not_null_checks.push((ident(name), column));
                }
            }
            vec![Change::CreateTable {
                table: object(&create.name),
                or_replace: create.or_replace,
                columns: create.columns.iter().map(column).collect(),
                not_null_checks,
            }]
        }
        Ast::CreateIndex(index) => vec![Change::CreateIndex {
            table: Some(object(&index.table_name)),
            name: index.name.as_ref().map(object),
            unique: index.unique,
            concurrently: index.concurrently,
        }],
        Ast::CreateView(view) => vec![Change::CreateView {
            name: Some(object(&view.name)),
            materialized: view.materialized,
            or_replace: view.or_replace,
        }],
        Ast::Drop {
            object_type, names, ..
        } => names
            .iter()
            .map(|n| Change::Drop {
                object: dropped(*object_type),
                name: object(n),
                concurrently: false,
            })
            .collect(),
        Ast::AlterTable(alter) => {
            let table = object(&alter.name);
            alter
                .operations
                .iter()
                .map(|op| Change::AlterTable {
                    table: table.clone(),
                    action: alter_action(op),
                })
                .collect()
        }
        _ => words::changes(text),
    }
}

fn dropped(object_type: ObjectType) -> Dropped {
    match object_type {
        ObjectType::Table => Dropped::Table,
        ObjectType::View => Dropped::View,
        ObjectType::MaterializedView => Dropped::MaterializedView,
        ObjectType::ForeignTable => Dropped::ForeignTable,
        ObjectType::Index => Dropped::Index,
        other => Dropped::Other(other.to_string().to_lowercase()),
    }
}

fn alter_action(op: &AlterTableOperation) -> AlterAction {
    match op {
        AlterTableOperation::AddColumn { column_def, .. } => {
            AlterAction::AddColumn(column(column_def))
        }
        AlterTableOperation::AddConstraint {
            constraint,
            not_valid,
        } => AlterAction::AddConstraint {
            name: constraint_name(constraint),
            constraint: constraint_kind(constraint),
            columns: constraint_columns(constraint),
            not_valid: *not_valid,
        },
        AlterTableOperation::ValidateConstraint { name } => AlterAction::ValidateConstraint {
            name: Some(ident(name)),
        },
        AlterTableOperation::DropColumn { column_names, .. } => AlterAction::DropColumn {
            columns: column_names.iter().map(ident).collect(),
        },
        AlterTableOperation::DropConstraint { name, .. } => AlterAction::DropConstraint {
            name: Some(ident(name)),
        },
        AlterTableOperation::RenameColumn {
            old_column_name,
            new_column_name,
        } => AlterAction::RenameColumn {
            old: ident(old_column_name),
            new: ident(new_column_name),
        },
        AlterTableOperation::RenameTable { table_name } => AlterAction::RenameTable {
            new: match table_name {
                RenameTableNameKind::As(n) | RenameTableNameKind::To(n) => object(n),
            },
        },
        AlterTableOperation::RenameConstraint { old_name, new_name } => {
            AlterAction::RenameConstraint {
                old: Some(ident(old_name)),
                new: Some(ident(new_name)),
            }
        }
        AlterTableOperation::AlterColumn { column_name, op } => {
            let column = ident(column_name);
            match op {
                AlterColumnOperation::SetNotNull => AlterAction::SetNotNull { column },
                AlterColumnOperation::DropNotNull => AlterAction::DropNotNull { column },
                AlterColumnOperation::SetDefault { .. } => AlterAction::SetDefault { column },
                AlterColumnOperation::DropDefault => AlterAction::DropDefault { column },
                AlterColumnOperation::SetDataType {
                    data_type, using, ..
                } => AlterAction::SetType {
                    column,
                    to: data_type.to_string().to_ascii_lowercase(),
                    using: using.as_ref().map(|u| u.to_string().to_ascii_lowercase()),
                },
                AlterColumnOperation::AddGenerated { .. } => AlterAction::AddGenerated { column },
                AlterColumnOperation::GenericOptions { .. } => AlterAction::ColumnOptions,
            }
        }
        AlterTableOperation::OwnerTo { .. }
        | AlterTableOperation::ReplicaIdentity { .. }
        | AlterTableOperation::SetTblProperties { .. }
        | AlterTableOperation::EnableTrigger { .. }
        | AlterTableOperation::EnableAlwaysTrigger { .. }
        | AlterTableOperation::EnableReplicaTrigger { .. }
        | AlterTableOperation::SetOptionsParens { .. }
        | AlterTableOperation::ResetOptions { .. } => AlterAction::NoSchemaChange {
            what: op.to_string(),
        },
        _ => AlterAction::Unknown {
            what: op.to_string(),
        },
    }
}

fn column(def: &ColumnDef) -> Column {
    let type_name = def.data_type.to_string().to_ascii_lowercase();
    let serial = matches!(
        type_name.as_str(),
        "serial" | "bigserial" | "smallserial" | "serial2" | "serial4" | "serial8"
    );
    let mut not_null = false;
    let mut unique = false;
    let mut fill = if serial {
        Fill::Serial(type_name.clone())
    } else {
        Fill::Nothing
    };
    for option in &def.options {
        match &option.option {
            ColumnOption::NotNull => not_null = true,
            ColumnOption::PrimaryKey(_) => {
                not_null = true;
                unique = true;
            }
            ColumnOption::Unique(_) => unique = true,
            ColumnOption::Default(e) if fill == Fill::Nothing => {
                fill = match volatile_function(e) {
                    Some(f) => Fill::Volatile(f),
                    None => Fill::Constant,
                };
            }
            ColumnOption::Identity(_) => fill = Fill::Generated("an identity column"),
            ColumnOption::Generated {
                generated_as,
                generation_expr,
                ..
            } => {
                fill = Fill::Generated(match (generated_as, generation_expr) {
                    (GeneratedAs::ExpStored, _) | (_, Some(_)) => "a stored generated column",
                    _ => "an identity column",
                })
            }
            _ => {}
        }
    }
    Column {
        name: ident(&def.name),
        type_name: Some(type_name),
        not_null,
        fill,
        unique,
    }
}

fn constraint_kind(constraint: &TableConstraint) -> Constraint {
    match constraint {
        TableConstraint::Check(c) => Constraint::Check {
            not_null_column: not_null_column(&c.expr),
        },
        TableConstraint::ForeignKey(_) => Constraint::ForeignKey,
        TableConstraint::Unique(_) => Constraint::Unique,
        TableConstraint::PrimaryKey(_) => Constraint::PrimaryKey,
        TableConstraint::PrimaryKeyUsingIndex(_) | TableConstraint::UniqueUsingIndex(_) => {
            Constraint::UsingIndex
        }
        TableConstraint::Exclude(_) => Constraint::Exclude,
        _ => Constraint::Other,
    }
}

fn constraint_columns(constraint: &TableConstraint) -> Vec<String> {
    let index = |columns: &[sqlparser::ast::IndexColumn]| -> Vec<String> {
        columns
            .iter()
            .filter_map(|c| match &c.column.expr {
                Expr::Identifier(i) => Some(ident(i)),
                _ => None,
            })
            .collect()
    };
    match constraint {
        TableConstraint::ForeignKey(c) => c.columns.iter().map(ident).collect(),
        TableConstraint::Unique(c) => index(&c.columns),
        TableConstraint::PrimaryKey(c) => index(&c.columns),
        TableConstraint::Check(c) => not_null_column(&c.expr).into_iter().collect(),
        _ => Vec::new(),
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
