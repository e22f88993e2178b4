//! The `opsdeploy.metadata` custom section and what the host reads from a module
//! before running it (ABI.md, "Metadata" and "Imports").

use policy_sdk::Section;
use serde::Deserialize;
use wasmparser::{CompositeInnerType, Parser, Payload, TypeRef, ValType};

use super::EngineError;
use crate::adapters::plan_view::{ChangeValue, PlanView};

pub const METADATA_SECTION: &str = "opsdeploy.metadata";

/// Metadata as the module declares it. Unknown fields are refused, so a typo
/// (`"raeds"`) is an error rather than a policy silently given no sections;
/// serde refuses a field given twice.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    pub abi_version: u32,
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub reads: Vec<String>,
    /// Top-level keys of the terraform plan it reads (absent: all of them).
    #[serde(default)]
    pub terraform_plan: Option<Vec<String>>,
    /// Values of each resource change it reads (absent: all of them).
    #[serde(default)]
    pub terraform_change_values: Option<Vec<String>>,
    #[serde(default)]
    pub settings_schema: Option<serde_json::Value>,
}

/// The host functions a policy may import, with their wasm signatures.
const HOST_IMPORTS: &[(&str, &[ValType])] = &[
    ("set_output", &[ValType::I32, ValType::I32]),
    ("log", &[ValType::I32, ValType::I32, ValType::I32]),
    ("fail", &[ValType::I32, ValType::I32]),
];
pub const HOST_MODULE: &str = "opsdeploy";

/// What a pass over the module's sections found.
#[derive(Debug, Default)]
pub struct Inspection {
    pub metadata: Option<Metadata>,
}

/// Reads the metadata section and checks every import, without compiling.
pub fn inspect(origin: &str, bytes: &[u8]) -> Result<Inspection, EngineError> {
    let invalid = |reason: String| EngineError::InvalidModule {
        origin: origin.to_string(),
        reason,
    };
    if !Parser::is_core_wasm(bytes) {
        let reason = if Parser::is_component(bytes) {
            "it is a WebAssembly component; policies are core modules (ABI.md)".to_string()
        } else {
            "it is not a WebAssembly module (bad magic number or version)".to_string()
        };
        return Err(invalid(reason));
    }
    let mut func_types: Vec<Option<(Vec<ValType>, Vec<ValType>)>> = Vec::new();
    let mut inspection = Inspection::default();
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| invalid(e.to_string()))?;
        match payload {
            Payload::TypeSection(reader) => {
                for group in reader {
                    let group = group.map_err(|e| invalid(e.to_string()))?;
                    for sub in group.into_types() {
                        func_types.push(match &sub.composite_type.inner {
                            CompositeInnerType::Func(f) => {
                                Some((f.params().to_vec(), f.results().to_vec()))
                            }
                            _ => None,
                        });
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.map_err(|e| invalid(e.to_string()))?;
                    check_import(origin, import.module, import.name, import.ty, &func_types)?;
                }
            }
            Payload::CustomSection(section) if section.name() == METADATA_SECTION => {
                if inspection.metadata.is_some() {
                    return Err(invalid(format!(
                        "it has two {METADATA_SECTION} sections; a module carries one"
                    )));
                }
                let meta: Metadata = serde_json::from_slice(without_trailing_nul(section.data()))
                    .map_err(|e| {
                    invalid(format!(
                        "its {METADATA_SECTION} section is not valid metadata: {e}"
                    ))
                })?;
                inspection.metadata = Some(meta);
            }
            _ => {}
        }
    }
    Ok(inspection)
}

/// C's `const char s[] = "..."` stores a terminating NUL; the JSON ends before it.
fn without_trailing_nul(data: &[u8]) -> &[u8] {
    let end = data.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    &data[..end]
}

fn check_import(
    origin: &str,
    module: &str,
    name: &str,
    ty: TypeRef,
    func_types: &[Option<(Vec<ValType>, Vec<ValType>)>],
) -> Result<(), EngineError> {
    let refused = |reason: &str| EngineError::ForbiddenImport {
        origin: origin.to_string(),
        import: format!("{module}.{name}"),
        reason: reason.to_string(),
    };
    if module != HOST_MODULE {
        let why = if module.starts_with("wasi") {
            "WASI is not available to policies: they cannot touch files, clocks or the network"
        } else {
            "policies may import only opsdeploy.set_output, opsdeploy.log and opsdeploy.fail"
        };
        return Err(refused(why));
    }
    let Some((_, params)) = HOST_IMPORTS.iter().find(|(n, _)| *n == name) else {
        return Err(refused(
            "opsdeploy provides only set_output, log and fail (ABI v1)",
        ));
    };
    let TypeRef::Func(idx) = ty else {
        return Err(refused("it must be a function"));
    };
    match func_types.get(idx as usize) {
        Some(Some((p, r))) if p.as_slice() == *params && r.is_empty() => Ok(()),
        _ => Err(refused(&format!(
            "its signature must be ({}) -> ()",
            vec!["i32"; params.len()].join(", ")
        ))),
    }
}

/// Checks the declared metadata against this host and resolves `reads`.
pub fn resolve_reads(origin: &str, meta: &Metadata) -> Result<Vec<Section>, EngineError> {
    if meta.abi_version != policy_sdk::ABI_VERSION {
        return Err(EngineError::AbiMismatch {
            origin: origin.to_string(),
            found: meta.abi_version.to_string(),
        });
    }
    meta.reads
        .iter()
        .map(|r| {
            Section::parse(r).ok_or_else(|| EngineError::InvalidModule {
                origin: origin.to_string(),
                reason: format!(
                    "its metadata reads unknown input section `{r}` (known: {})",
                    Section::ALL.map(|s| s.as_str()).join(", ")
                ),
            })
        })
        .collect()
}

/// What the metadata says the policy reads of a terraform plan: keys of the
/// SDK's plan model and values of its resource changes, each checked.
pub fn resolve_plan_view(origin: &str, meta: &Metadata) -> Result<PlanView, EngineError> {
    let unknown = |what: &str, name: &str, known: &[&str]| EngineError::InvalidModule {
        origin: origin.to_string(),
        reason: format!(
            "its metadata reads unknown {what} `{name}` (known: {})",
            known.join(", ")
        ),
    };
    let known = policy_sdk::terraform::PLAN_KEYS;
    if let Some(key) = meta
        .terraform_plan
        .iter()
        .flatten()
        .find(|k| !known.contains(&k.as_str()))
    {
        return Err(unknown("terraform plan key", key, &known));
    }
    let change_values = match &meta.terraform_change_values {
        Some(names) => Some(
            names
                .iter()
                .map(|n| {
                    ChangeValue::parse(n).ok_or_else(|| {
                        unknown("change value", n, &policy_sdk::terraform::CHANGE_VALUES)
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        None => None,
    };
    Ok(PlanView {
        keys: meta.terraform_plan.clone(),
        change_values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(wat: &str) -> Vec<u8> {
        wat::parse_str(wat).unwrap()
    }

    #[test]
    fn wasi_import_is_refused_by_name() {
        let bytes = module(
            r#"(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32))))"#,
        );
        let err = inspect("p.wasm", &bytes).unwrap_err();
        assert!(
            err.to_string().contains("wasi_snapshot_preview1.fd_write"),
            "{err}"
        );
    }

    #[test]
    fn host_import_with_wrong_signature_is_refused() {
        let bytes = module(r#"(module (import "opsdeploy" "log" (func (param i32))))"#);
        let err = inspect("p.wasm", &bytes).unwrap_err();
        assert!(err.to_string().contains("(i32, i32, i32) -> ()"), "{err}");
    }

    #[test]
    fn metadata_section_is_read_without_running_anything() {
        let bytes = module(
            r#"(module (import "opsdeploy" "fail" (func (param i32 i32)))
                 (@custom "opsdeploy.metadata" "{\"abi_version\":1,\"name\":\"x\",\"reads\":[\"terraform\",\"migrations\"]}"))"#,
        );
        let meta = inspect("p.wasm", &bytes).unwrap().metadata.unwrap();
        assert_eq!(meta.name, "x");
        let reads = resolve_reads("p.wasm", &meta).unwrap();
        assert_eq!(reads, vec![Section::Terraform, Section::Migrations]);
    }

    #[test]
    fn unknown_section_and_other_abi_versions_are_refused() {
        let meta: Metadata =
            serde_json::from_str(r#"{"abi_version":1,"name":"x","reads":["kubernetes"]}"#).unwrap();
        assert!(
            resolve_reads("p", &meta)
                .unwrap_err()
                .to_string()
                .contains("`kubernetes`")
        );
        let meta: Metadata = serde_json::from_str(
            r#"{"abi_version":1,"name":"x","reads":["terraform"],"terraform_plan":["resource_changes","planed_values"]}"#,
        )
        .unwrap();
        assert!(
            resolve_plan_view("p", &meta)
                .unwrap_err()
                .to_string()
                .contains("`planed_values`")
        );
        let meta: Metadata = serde_json::from_str(
            r#"{"abi_version":1,"name":"x","reads":["terraform"],"terraform_change_values":["after","after_sensitve"]}"#,
        )
        .unwrap();
        let err = resolve_plan_view("p", &meta).unwrap_err().to_string();
        assert!(
            err.contains("unknown change value `after_sensitve`") && err.contains("after_unknown"),
            "{err}"
        );
        let meta: Metadata = serde_json::from_str(
            r#"{"abi_version":1,"name":"x","reads":["terraform"],"terraform_change_values":["before"]}"#,
        )
        .unwrap();
        let view = resolve_plan_view("p", &meta).unwrap();
        assert_eq!(view.change_values, Some(vec![ChangeValue::Before]));
        assert_eq!(view.keys, None);
        let meta: Metadata = serde_json::from_str(r#"{"abi_version":2,"name":"x"}"#).unwrap();
        assert!(matches!(
            resolve_reads("p", &meta),
            Err(EngineError::AbiMismatch { .. })
        ));
    }

    #[test]
    fn a_trailing_nul_after_the_metadata_is_accepted() {
        let bytes = module(
            r#"(module (@custom "opsdeploy.metadata" "{\"abi_version\":1,\"name\":\"c-policy\"}\00"))"#,
        );
        let meta = inspect("p.wasm", &bytes).unwrap().metadata.unwrap();
        assert_eq!(meta.name, "c-policy");
    }

    #[test]
    fn unknown_duplicate_and_repeated_metadata_are_refused_by_name() {
        let typo = module(
            r#"(module (@custom "opsdeploy.metadata" "{\"abi_version\":1,\"name\":\"x\",\"raeds\":[]}"))"#,
        );
        let err = inspect("p.wasm", &typo).unwrap_err().to_string();
        assert!(err.contains("unknown field `raeds`"), "{err}");
        let twice = module(
            r#"(module (@custom "opsdeploy.metadata" "{\"abi_version\":1,\"name\":\"x\",\"name\":\"y\"}"))"#,
        );
        let err = inspect("p.wasm", &twice).unwrap_err().to_string();
        assert!(err.contains("duplicate field `name`"), "{err}");
        let two_sections = module(
            r#"(module (@custom "opsdeploy.metadata" "{\"abi_version\":1,\"name\":\"x\"}")
                       (@custom "opsdeploy.metadata" "{\"abi_version\":1,\"name\":\"y\"}"))"#,
        );
        let err = inspect("p.wasm", &two_sections).unwrap_err().to_string();
        assert!(err.contains("two opsdeploy.metadata sections"), "{err}");
    }

    #[test]
    fn components_and_garbage_are_named_as_such() {
        let err = inspect("p.wasm", b"not wasm at all").unwrap_err();
        assert!(
            err.to_string().contains("not a WebAssembly module"),
            "{err}"
        );
    }
}
