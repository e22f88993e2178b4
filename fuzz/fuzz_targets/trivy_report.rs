//! The trivy report check (`check_report`): legacy, k8s and other-schema
//! reports refused with a reason, never a panic; an accepted report is
//! SchemaVersion 2.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opsdeploy::adapters::trivy::check_report;

fuzz_target!(|data: &[u8]| {
    if let Ok(report) = check_report("fuzz.json", data) {
        assert_eq!(report.schema_version, 2);
    }
});
