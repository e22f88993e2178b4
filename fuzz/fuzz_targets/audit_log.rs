//! The audit log (`store::audit`): line parsing and chain verification over
//! arbitrary text, as `opsdeploy audit verify` reads a tampered or torn file.
//!
//! A random line almost never carries the sha256 of its content, so on its own
//! the fuzzer would only exercise the hash check. Each line is therefore also
//! parsed once more with a correct hash appended (what a forger who recomputes
//! hashes would write), which reaches the entry parser behind the check.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opsdeploy::store::audit::{parse_line, verify};
use sha2::{Digest, Sha256};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let v = verify(text.lines());
    assert!(v.entries <= text.lines().count());
    for line in text.lines() {
        let _ = parse_line(line);
        if let Some(body) = line.strip_suffix('}') {
            let hash = hex::encode(Sha256::digest(line.as_bytes()));
            let sealed = format!("{body},\"hash\":\"{hash}\"}}");
            if let Ok(entry) = parse_line(&sealed) {
                assert_eq!(entry.hash, hash);
            }
        }
    }
});
