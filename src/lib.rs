//! opsdeploy: a deployment gate. Modules follow the data flow:
//! config → adapters → input document → policy engine → workflow → store → report,
//! and import only down it (docs/architecture.md draws it and says where each
//! command's behaviour lives).

pub mod adapters;
pub mod authoring;
pub mod builtins;
pub mod config;
pub mod engine;
pub mod error;
pub mod escape;
pub mod fsutil;
pub mod generated;
pub mod input;
pub mod redact;
pub mod report;
pub mod store;
pub mod templates;
pub mod trust;
pub mod units;
pub mod workflow;

/// Keeps serde_json's many small allocations fast (see BENCHMARKS.md).
pub type GlobalAllocator = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in the mimalloc the pinned libmimalloc-sys builds
/// (its Rust bindings do not name it; a test below pins the meaning).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Has the allocator give memory freed back to the system at once instead of
/// after mimalloc's default second. Reading a plan frees what its typed pass
/// built just before a policy's instance takes its copy of the plan; held
/// on, that is another 20-25 MB at the peak of a 10,000-resource plan.
/// Called first thing in `main`.
pub fn return_freed_memory_promptly() {
    // SAFETY: sets one of mimalloc's process-wide options, an integer it
    // reads atomically; valid at any time.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_purge_delay_option_is_the_one_set() {
        // SAFETY: reads and sets mimalloc options (integers).
        let default = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        // mimalloc's documented default purge delay; no other option has it.
        assert_eq!(
            default, 1000,
            "option 15 is not purge_delay in this mimalloc"
        );
        super::return_freed_memory_promptly();
        assert_eq!(
            unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) },
            0
        );
    }
}
