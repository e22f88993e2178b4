//! Building policies written in C, Zig and AssemblyScript: each language's
//! compiler, found on PATH (or where an `OPSDEPLOY_<TOOL>` variable points),
//! invoked with the flags that make an ABI v1 module (policy-sdk/ABI.md).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::build::BuildError;
use super::project::Language;

/// A compiler and what to tell someone who does not have it.
struct Tool {
    /// Names tried on PATH, in order.
    names: &'static [&'static str],
    /// Overrides the search.
    env: &'static str,
    install: &'static str,
}

fn tool(language: Language) -> Option<Tool> {
    match language {
        Language::C => Some(Tool {
            names: &["clang-14", "clang"],
            env: "OPSDEPLOY_CLANG",
            install: "install clang and lld with wasm32 support (Debian: `apt-get install clang-14 lld-14`), or set OPSDEPLOY_CLANG",
        }),
        Language::Zig => Some(Tool {
            names: &["zig"],
            env: "OPSDEPLOY_ZIG",
            install: "install Zig (e.g. `pip install ziglang` and put `python3 -m ziglang` on PATH as `zig`), or set OPSDEPLOY_ZIG",
        }),
        Language::AssemblyScript => Some(Tool {
            names: &["asc"],
            env: "OPSDEPLOY_ASC",
            install: "install the AssemblyScript compiler (`npm install assemblyscript`, then put node_modules/.bin on PATH), or set OPSDEPLOY_ASC",
        }),
        Language::Rust | Language::Rego => None,
    }
}

fn find(language: Language, tool: &Tool) -> Result<PathBuf, BuildError> {
    if let Some(path) = std::env::var_os(tool.env).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    tool.names
        .iter()
        .find_map(|n| which::which(n).ok())
        .ok_or_else(|| BuildError::MissingToolchain {
            language: language.as_str(),
            tool: tool.names.join(" or "),
            install: tool.install,
        })
}

/// The metadata an AssemblyScript policy (which cannot emit custom sections)
/// keeps beside its source; `policy build` adds it to the module.
pub const METADATA_FILE: &str = "metadata.json";

/// Compiles the policy in `dir` to `out`.
pub fn build(language: Language, dir: &Path, out: &Path) -> Result<(), BuildError> {
    let Some(tool) = tool(language) else {
        unreachable!("only C, Zig and AssemblyScript are compiled here")
    };
    let program = find(language, &tool)?;
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).map_err(|e| BuildError::Spawn {
            command: format!("mkdir {}", parent.display()),
            reason: e.to_string(),
        })?;
    }
    let out_abs = std::path::absolute(out).unwrap_or_else(|_| out.to_path_buf());
    let mut cmd = Command::new(&program);
    cmd.current_dir(dir);
    match language {
        Language::C => {
            cmd.args([
                "--target=wasm32",
                "-nostdlib",
                "-O2",
                "-Wl,--no-entry",
                "-o",
            ])
            .arg(&out_abs)
            .args(sources(dir, "c")?);
        }
        Language::Zig => {
            let cache = out_abs.with_extension("zig-cache");
            cmd.args(["build-exe", "policy.zig", "-target", "wasm32-freestanding"])
                .args(["-fno-entry", "-rdynamic", "-O", "ReleaseSmall"])
                .arg(format!("-femit-bin={}", out_abs.display()))
                .arg("--cache-dir")
                .arg(cache);
        }
        Language::AssemblyScript => {
            cmd.args(["policy.ts", "--outFile"])
                .arg(&out_abs)
                .args(["-O", "--runtime", "stub"])
                // `abort` in policy.ts calls opsdeploy.fail instead of importing env.abort.
                .args(["--use", "abort=policy/abort"])
                .args(["--exportStart", "_initialize"]);
        }
        Language::Rust | Language::Rego => unreachable!(),
    }
    tracing::info!(dir = %dir.display(), tool = %program.display(), "building a policy");
    let status = cmd.status().map_err(|e| BuildError::Spawn {
        command: program.display().to_string(),
        reason: e.to_string(),
    })?;
    if !status.success() {
        return Err(BuildError::Compiler {
            language: language.as_str(),
            dir: dir.to_path_buf(),
        });
    }
    add_metadata_file(dir, out)
}

/// The `.c` files of a directory, sorted.
fn sources(dir: &Path, ext: &str) -> Result<Vec<PathBuf>, BuildError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|_| BuildError::NoCrates {
            dir: dir.to_path_buf(),
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .filter_map(|p| p.file_name().map(PathBuf::from))
        .collect();
    files.sort();
    Ok(files)
}

/// Appends `metadata.json` as the `opsdeploy.metadata` custom section when the
/// module has none (a custom section may follow every other section).
fn add_metadata_file(dir: &Path, module: &Path) -> Result<(), BuildError> {
    let path = dir.join(METADATA_FILE);
    let Ok(json) = std::fs::read(&path) else {
        return Ok(());
    };
    let write_err = |e: std::io::Error| BuildError::Spawn {
        command: format!("write {}", module.display()),
        reason: e.to_string(),
    };
    let mut bytes = std::fs::read(module).map_err(write_err)?;
    if has_custom_section(&bytes, crate::engine::METADATA_SECTION) {
        return Err(BuildError::NotAPolicy {
            manifest: path,
            reason: "the module already carries an opsdeploy.metadata section; keep one of the two"
                .into(),
        });
    }
    serde_json::from_slice::<crate::engine::Metadata>(&json).map_err(|e| {
        BuildError::NotAPolicy {
            manifest: path.clone(),
            reason: format!("it is not valid policy metadata: {e}"),
        }
    })?;
    let name = crate::engine::METADATA_SECTION.as_bytes();
    let mut payload = leb128(name.len() as u64);
    payload.extend_from_slice(name);
    payload.extend_from_slice(&json);
    bytes.push(0);
    bytes.extend(leb128(payload.len() as u64));
    bytes.extend(payload);
    crate::fsutil::write_atomic(module, &bytes).map_err(write_err)
}

fn has_custom_section(bytes: &[u8], name: &str) -> bool {
    wasmparser::Parser::new(0)
        .parse_all(bytes)
        .any(|p| matches!(p, Ok(wasmparser::Payload::CustomSection(s)) if s.name() == name))
}

fn leb128(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_metadata_file_becomes_the_custom_section() {
        let tmp = tempfile::tempdir().unwrap();
        let module = tmp.path().join("p.wasm");
        std::fs::write(&module, wat::parse_str("(module)").unwrap()).unwrap();
        std::fs::write(
            tmp.path().join(METADATA_FILE),
            r#"{"abi_version":1,"name":"from-file","reads":["helm"]}"#,
        )
        .unwrap();
        add_metadata_file(tmp.path(), &module).unwrap();
        let bytes = std::fs::read(&module).unwrap();
        let meta = crate::engine::inspect_metadata("p.wasm", &bytes)
            .unwrap()
            .unwrap();
        assert_eq!(meta.name, "from-file");
        // A second build of the same module refuses two sections.
        assert!(add_metadata_file(tmp.path(), &module).is_err());
    }

    #[test]
    fn leb128_encodes_seven_bits_a_byte() {
        assert_eq!(leb128(5), [5]);
        assert_eq!(leb128(300), [0xac, 0x02]);
    }
}
