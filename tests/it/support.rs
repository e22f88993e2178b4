//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A file of the third-party corpus (tests/corpus, see PROVENANCE.md there).
pub fn corpus(rel: &str) -> PathBuf {
    repo().join("tests/corpus").join(rel)
}

/// The opsdeploy binary with a private module cache and no colour.
pub fn opsdeploy(cache: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("opsdeploy").expect("binary built");
    cmd.env("OPSDEPLOY_CACHE_DIR", cache)
        .env("NO_COLOR", "1")
        .env_remove("OPSDEPLOY_LOG");
    cmd
}

/// A minimal ABI v1 module whose `opsdeploy_evaluate` body is `evaluate`;
/// `extra` adds imports, data or functions. Memory: 1 page, input at 1024.
pub fn abi_module(evaluate: &str, extra: &str) -> Vec<u8> {
    abi_module_with_version(1, evaluate, extra)
}

pub fn abi_module_with_version(version: i32, evaluate: &str, extra: &str) -> Vec<u8> {
    let wat = format!(
        r#"(module
  (import "opsdeploy" "set_output" (func $set_output (param i32 i32)))
  {extra}
  (memory (export "memory") 1)
  (data (i32.const 16) "{{\"violations\":[]}}")
  (func (export "opsdeploy_abi_version") (result i32) i32.const {version})
  (func (export "opsdeploy_alloc") (param i32) (result i32) i32.const 1024)
  (func (export "opsdeploy_evaluate") (param i32 i32) (result i32)
    {evaluate}))"#
    );
    wat::parse_str(wat).expect("valid WAT")
}

/// Writes `bytes` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write test file");
    path
}

/// A small input document for environment `staging`.
pub fn small_input(dir: &Path) -> PathBuf {
    write(
        dir,
        "input.json",
        br#"{"schema_version":1,"environment":{"name":"staging","project":"shop"}}"#,
    )
}
