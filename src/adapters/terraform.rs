//! Terraform: reading `terraform show -json` plan documents.

use std::path::Path;

use policy_sdk::terraform::Plan;
use serde_json::value::RawValue;

/// Plan format majors this opsdeploy understands (0.x and 1.x).
const SUPPORTED_FORMAT_MAJOR: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum TerraformError {
    #[error("could not read terraform plan {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("terraform plan {path} is not valid JSON: {reason}")]
    Json { path: String, reason: String },
    #[error("{path} is not a terraform plan: {reason}")]
    NotAPlan { path: String, reason: String },
    #[error(
        "terraform plan {path} has format_version {version}; this opsdeploy reads 0.x and 1.x (upgrade opsdeploy)"
    )]
    UnsupportedFormat { path: String, version: String },
}

/// Reads a plan JSON file (see [`parse_plan_json`]).
pub fn read_plan_file(path: &Path) -> Result<Box<RawValue>, TerraformError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| TerraformError::Read {
        path: shown.clone(),
        source,
    })?;
    parse_plan_json(&shown, &bytes)
}

/// Checks that `bytes` hold one terraform plan document and returns it as raw
/// JSON, as terraform wrote it. UTF-8 and UTF-16 byte-order marks (a plan saved
/// by a PowerShell redirect) are accepted; trailing data, state documents and
/// unsupported format majors are refused.
pub fn parse_plan_json(shown: &str, bytes: &[u8]) -> Result<Box<RawValue>, TerraformError> {
    let text = decode_text(bytes).map_err(|reason| TerraformError::Json {
        path: shown.to_string(),
        reason,
    })?;
    let raw: Box<RawValue> = serde_json::from_str(&text).map_err(|e| TerraformError::Json {
        path: shown.to_string(),
        reason: e.to_string(),
    })?;
    let plan: Plan = serde_json::from_str(raw.get()).map_err(|e| TerraformError::NotAPlan {
        path: shown.to_string(),
        reason: e.to_string(),
    })?;
    check_plan_shape(shown, &plan, raw.get())?;
    Ok(raw)
}

fn check_plan_shape(shown: &str, plan: &Plan, text: &str) -> Result<(), TerraformError> {
    let not_a_plan = |reason: &str| TerraformError::NotAPlan {
        path: shown.to_string(),
        reason: reason.to_string(),
    };
    if plan.planned_values.is_none() && plan.resource_changes.is_empty() {
        // `terraform show -json` of a state has `values` and nothing planned.
        let top: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(text).unwrap_or_default();
        if top.contains_key("values") {
            return Err(not_a_plan(
                "it is a state document (`values`, no `planned_values` or `resource_changes`); run `terraform show -json PLANFILE` on a saved plan",
            ));
        }
        if plan.format_version.is_none() && plan.configuration.is_none() {
            return Err(not_a_plan(
                "it has neither format_version, planned_values, resource_changes nor configuration",
            ));
        }
    }
    if let Some(version) = &plan.format_version {
        let major = version
            .split('.')
            .next()
            .and_then(|m| m.parse::<u32>().ok());
        if major.is_none_or(|m| m > SUPPORTED_FORMAT_MAJOR) {
            return Err(TerraformError::UnsupportedFormat {
                path: shown.to_string(),
                version: version.to_string(),
            });
        }
    }
    Ok(())
}

/// UTF-8 (with or without BOM) or UTF-16 with a BOM, as text.
fn decode_text(bytes: &[u8]) -> Result<std::borrow::Cow<'_, str>, String> {
    let utf16 = |le: bool| {
        let units: Vec<u16> = bytes[2..]
            .chunks(2)
            .map(|c| {
                let pair = [c[0], *c.get(1).unwrap_or(&0)];
                if le {
                    u16::from_le_bytes(pair)
                } else {
                    u16::from_be_bytes(pair)
                }
            })
            .collect();
        String::from_utf16(&units)
            .map(std::borrow::Cow::Owned)
            .map_err(|e| format!("it starts with a UTF-16 byte-order mark but is not UTF-16: {e}"))
    };
    match bytes {
        [0xFF, 0xFE, ..] => utf16(true),
        [0xFE, 0xFF, ..] => utf16(false),
        [0xEF, 0xBB, 0xBF, rest @ ..] => std::str::from_utf8(rest)
            .map(std::borrow::Cow::Borrowed)
            .map_err(|e| format!("it is not UTF-8: {e}")),
        _ => std::str::from_utf8(bytes)
            .map(std::borrow::Cow::Borrowed)
            .map_err(|e| format!("it is not UTF-8: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_documents_and_trailing_data_are_refused() {
        let err =
            parse_plan_json("s.json", br#"{"format_version":"1.0","values":{}}"#).unwrap_err();
        assert!(err.to_string().contains("state document"), "{err}");
        let err = parse_plan_json(
            "p.json",
            br#"{"format_version":"1.0","resource_changes":[]} {}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("trailing characters"), "{err}");
    }

    #[test]
    fn a_newer_major_is_a_clear_error() {
        let err = parse_plan_json(
            "p.json",
            br#"{"format_version":"2.0","resource_changes":[]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("format_version 2.0"), "{err}");
    }

    #[test]
    fn utf16_with_bom_is_read() {
        let text = r#"{"format_version":"1.1","planned_values":{}}"#;
        let mut bytes = vec![0xFF, 0xFE];
        for u in text.encode_utf16() {
            bytes.extend_from_slice(&u.to_le_bytes());
        }
        assert!(parse_plan_json("p.json", &bytes).is_ok());
    }
}
