//! How a policy crate is compiled to wasm, shared by `build.rs` (built-in
//! policies) and `opsdeploy policy build` (everyone else's), so both produce the
//! same kind of module. Standard library only: build.rs includes this file.

use std::path::{Path, PathBuf};
use std::process::Command;

pub const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// Release settings for small, fast policy modules. Passed as `--config` so
/// they apply whatever profile the policy's own workspace declares.
const PROFILE: &[&str] = &[
    "profile.release.opt-level=3",
    "profile.release.lto=true",
    "profile.release.codegen-units=1",
    "profile.release.panic=\"abort\"",
    "profile.release.debug=false",
    "profile.release.strip=\"debuginfo\"",
];

/// Variables an outer cargo (build script, clippy, a test) sets that must not
/// leak into a nested build for another target.
const ENV_TO_CLEAR: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_BUILD_TARGET",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_PRIMARY_PACKAGE",
];

/// `cargo build` of the given packages (all in the manifest's workspace when
/// empty) for wasm32-unknown-unknown into `target_dir`.
pub fn cargo_build_command(manifest: &Path, packages: &[String], target_dir: &Path) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--quiet")
        .arg("--release")
        .arg("--target")
        .arg(WASM_TARGET)
        .arg("--manifest-path")
        .arg(manifest)
        .arg("--target-dir")
        .arg(target_dir);
    for p in packages {
        cmd.arg("-p").arg(p);
    }
    for setting in PROFILE {
        cmd.arg("--config").arg(setting);
    }
    for var in ENV_TO_CLEAR {
        cmd.env_remove(var);
    }
    cmd
}

/// Where cargo puts the module of crate `package`.
pub fn artifact_path(target_dir: &Path, package: &str) -> PathBuf {
    target_dir
        .join(WASM_TARGET)
        .join("release")
        .join(format!("{}.wasm", package.replace('-', "_")))
}

/// What to tell someone whose toolchain lacks the target.
pub const MISSING_TARGET_HINT: &str = "rustup target add wasm32-unknown-unknown";
