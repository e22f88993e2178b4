//! `opsdeploy.hcl` (`Config::parse`): HCL syntax, the strict reader (unknown
//! keys, wrong types, duplicate blocks), units and cross-references. Errors
//! name a line; none of it may panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use opsdeploy::config::Config;

fuzz_target!(|data: &[u8]| {
    // The file is read with read_to_string: non-UTF-8 never reaches the parser.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = Config::parse(Path::new("/p"), Path::new("opsdeploy.hcl"), text) {
        // Messages and locations are rendered for every error shown to a user.
        let _ = e.to_string();
        let _ = e.location();
    }
});
