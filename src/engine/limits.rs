//! Limits a module must meet before it is compiled (ABI.md, "Limits").
//!
//! Compiling is where a hostile module can hurt the host before any fuel or
//! deadline applies: cranelift's time and memory grow with the number of
//! functions and, faster than linearly, with the size and locals of one
//! function. These cheap checks read the module's sections once (no
//! validation, no compilation) and refuse what no real policy needs; what
//! passes is compiled under the policy's time and memory limits
//! (`compile.rs`).

use wasmparser::{Parser, Payload};

use super::{EngineError, Limits};

/// Bytes one table element takes in the host (a function reference).
pub const TABLE_ELEMENT_BYTES: u64 = 8;
/// Bytes of one WebAssembly memory page.
const PAGE_BYTES: u64 = 64 << 10;

/// Structural caps, the same for every policy: generous for compiled Rust, C,
/// Zig, AssemblyScript and interpreters (a Rego runtime), far below what makes
/// the compiler slow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StructureLimits {
    /// Size of the module file.
    pub module_bytes: u64,
    /// Functions defined by the module.
    pub functions: u64,
    /// Size of one function's body.
    pub function_body_bytes: u64,
    /// Locals declared by one function.
    pub locals_per_function: u64,
}

/// The largest built-in policy (no-secrets) is 1.4 MB with 1,698 functions,
/// bodies up to 48 KB and 443 locals at most; a Rego runtime compiled to wasm
/// is 2.6 MB with 2,795 functions.
pub const STRUCTURE: StructureLimits = StructureLimits {
    module_bytes: 32 << 20,
    functions: 20_000,
    function_body_bytes: 1 << 20,
    locals_per_function: 10_000,
};

/// Checks `bytes` against [`STRUCTURE`] and what it declares up front (initial
/// memory and table sizes, tables counted at [`TABLE_ELEMENT_BYTES`] each)
/// against `limits.memory_bytes`.
pub fn check_structure(origin: &str, bytes: &[u8], limits: &Limits) -> Result<(), EngineError> {
    let refuse = |reason: String| EngineError::TooLarge {
        origin: origin.to_string(),
        reason,
    };
    let cap = STRUCTURE;
    if bytes.len() as u64 > cap.module_bytes {
        return Err(refuse(format!(
            "it is {} bytes; policies are limited to {} bytes",
            bytes.len(),
            cap.module_bytes
        )));
    }
    let invalid = |e: wasmparser::BinaryReaderError| EngineError::InvalidModule {
        origin: origin.to_string(),
        reason: e.to_string(),
    };
    let mut functions = 0u64;
    let mut declared_bytes = 0u64;
    let mut body_index = 0u64;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(invalid)? {
            Payload::FunctionSection(reader) => {
                functions += u64::from(reader.count());
                if functions > cap.functions {
                    return Err(refuse(format!(
                        "it defines {functions} functions; policies are limited to {}",
                        cap.functions
                    )));
                }
            }
            Payload::MemorySection(reader) => {
                for memory in reader {
                    let pages = memory.map_err(invalid)?.initial;
                    declared_bytes =
                        declared_bytes.saturating_add(pages.saturating_mul(PAGE_BYTES));
                }
            }
            Payload::TableSection(reader) => {
                for table in reader {
                    let elements = table.map_err(invalid)?.ty.initial;
                    declared_bytes =
                        declared_bytes.saturating_add(elements.saturating_mul(TABLE_ELEMENT_BYTES));
                }
            }
            Payload::CodeSectionEntry(body) => {
                let index = body_index;
                body_index += 1;
                let size = body.range().len() as u64;
                if size > cap.function_body_bytes {
                    return Err(refuse(format!(
                        "function {index} has a body of {size} bytes; policies are limited to {} per function",
                        cap.function_body_bytes
                    )));
                }
                let mut locals = 0u64;
                for group in body.get_locals_reader().map_err(invalid)? {
                    locals += u64::from(group.map_err(invalid)?.0);
                    if locals > cap.locals_per_function {
                        return Err(refuse(format!(
                            "function {index} declares more than {} locals; policies are limited to {} per function",
                            cap.locals_per_function, cap.locals_per_function
                        )));
                    }
                }
            }
            _ => {}
        }
    }
    if declared_bytes > limits.memory_bytes {
        return Err(refuse(format!(
            "its initial memory and tables take {declared_bytes} bytes, over its memory limit of {} bytes",
            limits.memory_bytes
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(wat: &str) -> Vec<u8> {
        wat::parse_str(wat).unwrap()
    }

    #[test]
    fn a_function_with_too_many_locals_is_refused_naming_it() {
        let bytes = module(&format!(
            "(module (func) (func (local {})))",
            "i64 ".repeat(10_001)
        ));
        let err = check_structure("p.wasm", &bytes, &Limits::default()).unwrap_err();
        assert!(
            err.to_string()
                .contains("function 1 declares more than 10000 locals"),
            "{err}"
        );
    }

    #[test]
    fn tables_count_toward_the_memory_limit() {
        let limits = Limits {
            memory_bytes: 1 << 20,
            ..Limits::default()
        };
        // 200,000 elements of 8 bytes: 1.5 MiB, over a 1 MiB limit.
        let err = check_structure(
            "p.wasm",
            &module("(module (table 200000 funcref))"),
            &limits,
        )
        .unwrap_err();
        assert!(err.to_string().contains("memory limit"), "{err}");
        check_structure("p.wasm", &module("(module (table 1000 funcref))"), &limits).unwrap();
    }

    #[test]
    fn the_built_in_policies_are_well_inside_the_limits() {
        for (name, bytes) in crate::engine::BUILTIN_POLICIES {
            check_structure(name, bytes, &Limits::default())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
