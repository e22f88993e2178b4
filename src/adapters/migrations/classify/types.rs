//! Column type changes the running app does not notice: widenings within one
//! family (PostgreSQL, ALTER TABLE: binary-coercible changes such as a longer
//! `varchar` or `varchar` → `text` skip the table rewrite; numeric precision
//! grows without a rewrite when the scale stays).

/// How a column type change looks to the running app and to the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TypeChange {
    /// Every value the running app reads or writes still fits, and the table
    /// is not rewritten.
    Widening,
    /// Every value still fits, but the table is rewritten under an exclusive
    /// lock (`int` → `bigint`, `real` → `double precision`).
    WideningRewrite,
    /// Anything else: narrowing, another family, a converting `USING`.
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    /// `varchar(n)` / `varchar` / `text` (`None`: no limit).
    String(Option<u64>),
    /// `numeric(p, s)` / `numeric` (`None`: no limit).
    Numeric(Option<(u64, u64)>),
    /// `bit varying(n)` / `varbit`.
    VarBit(Option<u64>),
    /// `smallint`, `integer`, `bigint` by byte width.
    Integer(u8),
    /// `real`, `double precision` by byte width.
    Float(u8),
}

fn parse(type_name: &str) -> Option<Type> {
    let t: String = type_name
        .to_ascii_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let (base, args) = match t.split_once('(') {
        Some((b, rest)) => (b.trim(), Some(rest.trim_end_matches(')').trim())),
        None => (t.as_str(), None),
    };
    let numbers: Vec<u64> = args
        .map(|a| a.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_default();
    Some(match (base, numbers.as_slice()) {
        ("text" | "citext", []) => Type::String(None),
        ("varchar" | "character varying", []) => Type::String(None),
        ("varchar" | "character varying", [n]) => Type::String(Some(*n)),
        ("numeric" | "decimal", []) => Type::Numeric(None),
        ("numeric" | "decimal", [p]) => Type::Numeric(Some((*p, 0))),
        ("numeric" | "decimal", [p, s]) => Type::Numeric(Some((*p, *s))),
        ("varbit" | "bit varying", []) => Type::VarBit(None),
        ("varbit" | "bit varying", [n]) => Type::VarBit(Some(*n)),
        ("smallint" | "int2", []) => Type::Integer(2),
        ("integer" | "int" | "int4", []) => Type::Integer(4),
        ("bigint" | "int8", []) => Type::Integer(8),
        ("real" | "float4", []) => Type::Float(4),
        ("double precision" | "float8" | "float", []) => Type::Float(8),
        _ => return None,
    })
}

fn fits(limit: Option<u64>, within: Option<u64>) -> bool {
    match (limit, within) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some(a), Some(b)) => a <= b,
    }
}

/// `old` → `new` of column `column`; `using` is the `USING` expression, which
/// keeps the values only when it is the column itself cast to a type.
pub(super) fn compare(old: &str, new: &str, column: &str, using: Option<&str>) -> TypeChange {
    if using.is_some_and(|u| !is_plain_cast(u, column)) {
        return TypeChange::Other;
    }
    let (Some(old), Some(new)) = (parse(old), parse(new)) else {
        return TypeChange::Other;
    };
    match (old, new) {
        (Type::String(a), Type::String(b)) | (Type::VarBit(a), Type::VarBit(b)) if fits(a, b) => {
            TypeChange::Widening
        }
        (Type::Numeric(_), Type::Numeric(None)) => TypeChange::Widening,
        (Type::Numeric(Some((p, s))), Type::Numeric(Some((q, t)))) if t == s && q >= p => {
            TypeChange::Widening
        }
        // More digits after the point, as many before it: every value fits,
        // but each one is rewritten with the new scale.
        (Type::Numeric(Some((p, s))), Type::Numeric(Some((q, t)))) if t > s && q - t >= p - s => {
            TypeChange::WideningRewrite
        }
        (Type::Integer(a), Type::Integer(b)) | (Type::Float(a), Type::Float(b)) if a < b => {
            TypeChange::WideningRewrite
        }
        (a, b) if a == b => TypeChange::Widening,
        _ => TypeChange::Other,
    }
}

/// Whether a target type takes any string without a limit (`text`,
/// `varchar`): the one widening that needs no knowledge of the old type when
/// the column already holds strings.
pub(super) fn is_unbounded_string(type_name: &str) -> bool {
    parse(type_name) == Some(Type::String(None))
}

/// Whether a `USING` expression only casts the column: the values stay.
pub(super) fn keeps_values(using: &str, column: &str) -> bool {
    is_plain_cast(using, column)
}

/// `col::type`, `CAST(col AS type)`, `"col"::type`.
fn is_plain_cast(using: &str, column: &str) -> bool {
    let u: String = using
        .to_ascii_lowercase()
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '"')
        .collect();
    let col = column.to_ascii_lowercase();
    u == col
        || u.strip_prefix(&col).is_some_and(|r| r.starts_with("::"))
        || u.strip_prefix("cast(")
            .and_then(|r| r.strip_prefix(col.as_str()))
            .is_some_and(|r| r.starts_with("as"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widenings_within_a_family_fit_and_the_rest_do_not() {
        use TypeChange::*;
        for (old, new, want) in [
            ("varchar(100)", "varchar(200)", Widening),
            ("character varying(100)", "text", Widening),
            ("varchar", "text", Widening),
            ("numeric(10,2)", "numeric(12, 2)", Widening),
            ("numeric(10,2)", "numeric", Widening),
            ("int", "bigint", WideningRewrite),
            ("numeric(10,2)", "numeric(12,4)", WideningRewrite),
            ("varchar(200)", "varchar(100)", Other),
            ("text", "varchar(100)", Other),
            ("numeric(10,2)", "numeric(10,1)", Other),
            ("bigint", "int", Other),
            ("int", "text", Other),
            ("uuid", "text", Other),
        ] {
            assert_eq!(compare(old, new, "c", None), want, "{old} -> {new}");
        }
        assert_eq!(
            compare("varchar(10)", "text", "c", Some("c::text")),
            Widening
        );
        assert_eq!(compare("varchar(10)", "text", "c", Some("lower(c)")), Other);
    }
}
