//! Write opsdeploy policies in Rust.
//!
//! A policy is a function from the deployment's input document to a list of
//! violations:
//!
//! ```
//! use policy_sdk::prelude::*;
//!
//! pub fn evaluate(input: &Input) -> Vec<Violation> {
//!     let Some(plan) = input.plan() else { return Vec::new() };
//!     plan.resource_changes
//!         .iter()
//!         .filter(|rc| rc.change.actions.is_delete())
//!         .map(|rc| Violation::deny("no-deletes", format!("{} would be destroyed", rc.address))
//!             .at_address(&*rc.address))
//!         .collect()
//! }
//!
//! policy_sdk::export_policy! {
//!     name: "no-deletes",
//!     description: "Refuse every destroy",
//!     reads: [terraform],
//!     evaluate: evaluate,
//! }
//! ```
//!
//! Compiled for `wasm32-unknown-unknown`, [`export_policy!`] emits the ABI v1
//! exports described in `ABI.md` and an `opsdeploy.metadata` custom section. On
//! every other target it emits nothing, so the same crate is unit-tested natively
//! with `cargo test` by calling `evaluate` on an [`Input`] built with
//! [`Input::from_json`].

pub mod helm;
pub mod input;
pub mod migration;
pub mod scan;
pub mod terraform;
pub mod text;
mod violation;

#[doc(hidden)]
pub mod __private;

pub use input::{Input, Section};
pub use violation::{Output, Severity, Violation};

/// The ABI version this SDK implements; see `ABI.md`.
pub const ABI_VERSION: u32 = 1;

/// Everything a policy usually needs.
pub mod prelude {
    pub use crate::input::{Approval, Environment, Input, ProjectFile};
    pub use crate::terraform::{Action, Actions, ResourceChange};
    pub use crate::violation::{Severity, Violation};
}

/// Exports a policy function as an opsdeploy ABI v1 module.
///
/// `name`, `description` and the optional `settings_schema` (a JSON Schema, as a
/// string literal) end up in the module's `opsdeploy.metadata` custom section,
/// which opsdeploy reads without running the module. `reads` lists the input
/// sections the policy looks at; only those are passed to it (see
/// [`Section`]). `environment` and `settings` are always passed. The optional
/// `terraform_plan` lists the top-level keys of the terraform plan it reads
/// ([`terraform::PLAN_KEYS`]): the plan it gets holds only those (and the
/// format and terraform versions), which spares it copying and skipping the
/// rest of a large plan. The optional `change_values` lists which values of
/// each resource change it reads ([`terraform::CHANGE_VALUES`]: `before`,
/// `after`, `after_unknown`, `before_sensitive`, `after_sensitive`): every
/// entry of `resource_changes` and `resource_drift` comes without the others,
/// so a policy that looks at addresses and actions does not copy or skip the
/// attributes of every resource.
///
/// Name and description may not contain `"`, `\` or control characters: the
/// metadata is assembled at compile time and this keeps it valid JSON without
/// an escaper (a violation is a compile error).
#[macro_export]
macro_rules! export_policy {
    (
        name: $name:literal,
        description: $description:literal,
        reads: [$($read:ident),* $(,)?],
        $(terraform_plan: [$($key:ident),* $(,)?],)?
        $(change_values: [$($value:ident),* $(,)?],)?
        $(settings_schema: $schema:literal,)?
        evaluate: $evaluate:path $(,)?
    ) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            const METADATA_JSON: &str = concat!(
                "{\"abi_version\":1,\"name\":\"", $name,
                "\",\"version\":\"", env!("CARGO_PKG_VERSION"),
                "\",\"description\":\"", $description,
                "\",\"reads\":[",
                $crate::__reads_json!($($read),*),
                "]",
                $(",\"terraform_plan\":[", $crate::__reads_json!($($key),*), "]",)?
                $(",\"terraform_change_values\":[", $crate::__reads_json!($($value),*), "]",)?
                $(",\"settings_schema\":", $schema,)?
                "}"
            );
            const _: () = assert!(
                $crate::__private::is_plain_json_text($name)
                    && $crate::__private::is_plain_json_text($description),
                "policy name and description may not contain '\"', '\\\\' or control characters"
            );
            $(const _: () = $crate::__private::sections::$read;)*
            $($(const _: () = $crate::__private::plan_keys::$key;)*)?
            $($(const _: () = $crate::__private::change_values::$value;)*)?

            #[unsafe(link_section = "opsdeploy.metadata")]
            #[used]
            static METADATA: [u8; METADATA_JSON.len()] =
                $crate::__private::to_array::<{ METADATA_JSON.len() }>(METADATA_JSON);

            #[unsafe(no_mangle)]
            pub extern "C" fn opsdeploy_abi_version() -> i32 {
                $crate::ABI_VERSION as i32
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn opsdeploy_alloc(len: i32) -> i32 {
                $crate::__private::alloc(len)
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn opsdeploy_evaluate(ptr: i32, len: i32) -> i32 {
                $crate::__private::evaluate(ptr, len, $evaluate)
            }
        };
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __reads_json {
    () => { "" };
    ($first:ident $(, $rest:ident)*) => {
        concat!("\"", stringify!($first), "\"" $(, ",\"", stringify!($rest), "\"")*)
    };
}
