//! Glue used by [`export_policy!`](crate::export_policy); not a public API.

#[cfg(target_arch = "wasm32")]
use crate::input::Input;
#[cfg(target_arch = "wasm32")]
use crate::violation::{Output, Violation};

/// Input section names accepted in `reads: [...]`; a typo is a compile error.
#[allow(non_upper_case_globals)]
pub mod sections {
    pub const terraform: () = ();
    pub const helm: () = ();
    pub const scans: () = ();
    pub const migrations: () = ();
    pub const gates: () = ();
    pub const approvals: () = ();
    pub const git: () = ();
    pub const deployments: () = ();
    pub const files: () = ();
}

/// Plan keys accepted in `terraform_plan: [...]` ([`crate::terraform::PLAN_KEYS`]).
#[allow(non_upper_case_globals)]
pub mod plan_keys {
    pub const format_version: () = ();
    pub const terraform_version: () = ();
    pub const variables: () = ();
    pub const resource_changes: () = ();
    pub const resource_drift: () = ();
    pub const output_changes: () = ();
    pub const planned_values: () = ();
    pub const prior_state: () = ();
    pub const configuration: () = ();
    pub const relevant_attributes: () = ();
    pub const checks: () = ();
    pub const applyable: () = ();
    pub const complete: () = ();
    pub const errored: () = ();
    pub const timestamp: () = ();
}

/// Change values accepted in `change_values: [...]` ([`crate::terraform::CHANGE_VALUES`]).
#[allow(non_upper_case_globals)]
pub mod change_values {
    pub const before: () = ();
    pub const after: () = ();
    pub const after_unknown: () = ();
    pub const before_sensitive: () = ();
    pub const after_sensitive: () = ();
}

pub const fn is_plain_json_text(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'"' || b[i] == b'\\' || b[i] < 0x20 {
            return false;
        }
        i += 1;
    }
    true
}

pub const fn to_array<const N: usize>(s: &str) -> [u8; N] {
    let b = s.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = b[i];
        i += 1;
    }
    out
}

#[cfg(target_arch = "wasm32")]
mod host {
    #[link(wasm_import_module = "opsdeploy")]
    unsafe extern "C" {
        #[link_name = "set_output"]
        pub fn set_output(ptr: i32, len: i32);
        #[link_name = "log"]
        pub fn log(level: i32, ptr: i32, len: i32);
        #[link_name = "fail"]
        pub fn fail(ptr: i32, len: i32);
    }
}

/// Sends a log line to the host (shown with `-v`); stderr when run natively.
pub fn log(level: i32, message: &str) {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: the host copies `len` bytes from `ptr` within this module's memory.
    unsafe {
        host::log(level, message.as_ptr() as i32, message.len() as i32)
    };
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("policy log [{level}]: {message}");
}

#[cfg(target_arch = "wasm32")]
fn fail(message: &str) {
    // SAFETY: as in `log`.
    unsafe { host::fail(message.as_ptr() as i32, message.len() as i32) }
}

/// `opsdeploy_alloc`: a buffer the host writes the input into. Never freed: the
/// host runs each instance once and drops it.
pub fn alloc(len: i32) -> i32 {
    let mut buf = Vec::<u8>::with_capacity(len.max(0) as usize);
    let ptr = buf.as_mut_ptr();
    std::mem::forget(buf);
    ptr as i32
}

/// `opsdeploy_evaluate`: parse the input, run the policy, hand back its output.
#[cfg(target_arch = "wasm32")]
pub fn evaluate(ptr: i32, len: i32, policy: impl FnOnce(&Input<'_>) -> Vec<Violation>) -> i32 {
    std::panic::set_hook(Box::new(|info| fail(&info.to_string())));
    // SAFETY: the host wrote `len` bytes at `ptr`, a buffer it got from `alloc`.
    let bytes = unsafe { std::slice::from_raw_parts(ptr as *const u8, len.max(0) as usize) };
    let input = match Input::from_slice(bytes) {
        Ok(input) => input,
        Err(e) => {
            fail(&format!(
                "the policy could not read its input document: {e}"
            ));
            return 1;
        }
    };
    let output = Output {
        violations: policy(&input),
    };
    let json = match serde_json::to_vec(&output) {
        Ok(json) => json,
        Err(e) => {
            fail(&format!("the policy could not encode its result: {e}"));
            return 1;
        }
    };
    // SAFETY: as in `log`.
    unsafe { host::set_output(json.as_ptr() as i32, json.len() as i32) };
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_json_text_rejects_quotes_backslashes_and_controls() {
        assert!(is_plain_json_text(
            "Deny deletes of databases (and buckets)"
        ));
        assert!(!is_plain_json_text("say \"hi\""));
        assert!(!is_plain_json_text("a\\b"));
        assert!(!is_plain_json_text("line\nbreak"));
    }

    #[test]
    fn to_array_copies_every_byte() {
        const S: &str = "{\"abi_version\":1}";
        const A: [u8; S.len()] = to_array::<{ S.len() }>(S);
        assert_eq!(&A, S.as_bytes());
    }
}
