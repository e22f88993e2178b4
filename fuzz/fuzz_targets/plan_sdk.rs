//! Terraform plan JSON as the policy SDK reads it (`policy_sdk::terraform::Plan`):
//! no panic on any input, and a parsed plan serializes to JSON that parses
//! back, since the host re-serializes SDK models into input documents.
#![no_main]

use libfuzzer_sys::fuzz_target;
use policy_sdk::terraform::Plan;

fuzz_target!(|data: &[u8]| {
    let Ok(plan) = serde_json::from_slice::<Plan>(data) else {
        return;
    };
    // What policies call on every change; the raw values parse lazily here.
    for rc in plan.resource_changes.iter().chain(&plan.resource_drift) {
        let _ = rc.change.actions.summary();
        let _ = rc.change.actions.is_replace();
        let _ = rc.change.before_value();
        let _ = rc.change.after_value();
        let _ = rc.is_managed();
    }
    let json = serde_json::to_string(&plan).expect("a parsed plan serializes");
    let again: Plan = serde_json::from_str(&json).expect("a serialized plan parses back");
    assert_eq!(again.resource_changes.len(), plan.resource_changes.len());
});
