//! Built-in policies, compiled from `policies/` by build.rs and embedded, so a
//! project uses them with `builtin = true` and nothing to compile.

include!(concat!(env!("OUT_DIR"), "/builtin_policies.rs"));

/// A name no built-in policy has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("there is no built-in policy \"{name}\"")]
pub struct UnknownBuiltin {
    pub name: String,
}

/// The names of the built-in policies, in order.
pub fn names() -> impl Iterator<Item = &'static str> {
    BUILTIN_POLICIES.iter().map(|(n, _)| *n)
}

/// The module bytes of a built-in policy.
pub fn builtin(name: &str) -> Result<&'static [u8], UnknownBuiltin> {
    BUILTIN_POLICIES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, bytes)| *bytes)
        .ok_or_else(|| UnknownBuiltin {
            name: name.to_string(),
        })
}
