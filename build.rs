//! Compiles the built-in policies under `policies/` to wasm32-unknown-unknown
//! and generates the table `src/builtins.rs` embeds them from.

#[path = "src/authoring/wasm_build.rs"]
#[allow(dead_code)]
mod wasm_build;

use std::env;
use std::fs;
use std::path::PathBuf;

/// The crate of the Rego runtime module (`rego-runtime/`), embedded beside the policies.
const REGO_RUNTIME: &str = "opsdeploy-rego-runtime";

fn main() {
    let root = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    for watched in [
        "policies",
        "policy-sdk/src",
        "policy-sdk/Cargo.toml",
        "rego-runtime",
        "Cargo.lock",
        // Embedded by `opsdeploy init`: a template edit must reach the binary.
        "infra-templates",
    ] {
        println!("cargo::rerun-if-changed={watched}");
    }

    let mut policies: Vec<(String, PathBuf)> = fs::read_dir(root.join("policies"))
        .expect("policies/ exists")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("Cargo.toml").is_file())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    policies.sort();
    let names: Vec<String> = policies.iter().map(|(n, _)| n.clone()).collect();

    // A target directory of its own: the outer cargo holds a lock on its own.
    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("wasm-policies");
    // The Rego runtime is built in the same cargo run: one lock, one dependency graph.
    let mut packages = names.clone();
    packages.push(REGO_RUNTIME.to_string());
    let status = wasm_build::cargo_build_command(&root.join("Cargo.toml"), &packages, &target_dir)
        .status()
        .expect("could not run cargo to build the built-in policies");
    if !status.success() {
        panic!(
            "building the built-in policies for {} failed (see above); if the target is missing, run `{}`",
            wasm_build::WASM_TARGET,
            wasm_build::MISSING_TARGET_HINT
        );
    }

    let mut table = String::from("pub static BUILTIN_POLICIES: &[(&str, &[u8])] = &[\n");
    for name in &names {
        let wasm = wasm_build::artifact_path(&target_dir, name);
        table.push_str(&format!("    ({name:?}, include_bytes!({:?})),\n", wasm));
    }
    table.push_str("];\n");
    fs::write(out.join("builtin_policies.rs"), table).expect("OUT_DIR is writable");
    fs::write(
        out.join("rego_runtime.rs"),
        format!(
            "pub static REGO_RUNTIME: &[u8] = include_bytes!({:?});\n",
            wasm_build::artifact_path(&target_dir, REGO_RUNTIME)
        ),
    )
    .expect("OUT_DIR is writable");

    embed_templates(&root, &out);
}

/// `opsdeploy init` writes these: every file under infra-templates/NAME/.
fn embed_templates(root: &std::path::Path, out: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut files = Vec::new();
    let mut stack = vec![root.join("infra-templates")];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir)
            .expect("infra-templates/ is readable")
            .flatten()
        {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if name != "target" && name != ".terraform" && name != ".opsdeploy" {
                    stack.push(path);
                }
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut table = String::from("pub static TEMPLATE_FILES: &[(&str, &str, &[u8], bool)] = &[\n");
    for path in files {
        let rel = path
            .strip_prefix(root.join("infra-templates"))
            .expect("below infra-templates");
        let mut parts = rel.iter().map(|p| p.to_string_lossy().into_owned());
        let template = parts.next().expect("a template directory");
        let inner: Vec<String> = parts.collect();
        if inner.is_empty() {
            continue;
        }
        let exec = fs::metadata(&path)
            .map(|m| m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false);
        table.push_str(&format!(
            "    ({template:?}, {:?}, include_bytes!({:?}), {exec}),\n",
            inner.join("/"),
            path
        ));
    }
    table.push_str("];\n");
    fs::write(out.join("templates.rs"), table).expect("OUT_DIR is writable");
}
