//! A policy's result document (`policy_sdk::Output`, what a guest hands to
//! `opsdeploy.set_output`): no panic on any input, and what parses
//! serializes back to an equal value (the host stores violations this way).
#![no_main]

use libfuzzer_sys::fuzz_target;
use policy_sdk::Output;

fuzz_target!(|data: &[u8]| {
    let Ok(output) = serde_json::from_slice::<Output>(data) else {
        return;
    };
    let json = serde_json::to_string(&output).expect("an output serializes");
    let again: Output = serde_json::from_str(&json).expect("a serialized output parses back");
    assert_eq!(again, output);
});
