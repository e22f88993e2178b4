//! Trivy's JSON report as the policy SDK reads it (`policy_sdk::scan::Report`):
//! no panic on any input, and a parsed report round-trips through JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use policy_sdk::scan::Report;

fuzz_target!(|data: &[u8]| {
    let Ok(report) = serde_json::from_slice::<Report>(data) else {
        return;
    };
    for result in &report.results {
        for v in &result.vulnerabilities {
            let _ = v.has_fix();
        }
    }
    let json = serde_json::to_string(&report).expect("a parsed report serializes");
    let again: Report = serde_json::from_str(&json).expect("a serialized report parses back");
    assert_eq!(again.results.len(), report.results.len());
});
