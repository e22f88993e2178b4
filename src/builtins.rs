//! Built-in policies, compiled from `policies/` by build.rs and embedded, so a
//! project uses them with `builtin = true` and nothing to compile.

include!(concat!(env!("OUT_DIR"), "/builtin_policies.rs"));

/// The module bytes of a built-in policy.
pub fn builtin(name: &str) -> Option<&'static [u8]> {
    BUILTIN_POLICIES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, bytes)| *bytes)
}
