//! Trivy: image vulnerability scans and filesystem secret/misconfiguration
//! scans, as JSON (SchemaVersion 2). The bytes are kept as trivy wrote them
//! (the plan bundle stores them); the typed model is read from them.

use std::path::Path;
use std::time::Duration;

use policy_sdk::scan::Report;

use super::process::{Tool, ToolError};

#[derive(Debug, thiserror::Error)]
pub enum TrivyError {
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error("{shown} is not a trivy JSON report: {reason}")]
    NotAReport { shown: String, reason: String },
    #[error(
        "{shown} is a legacy trivy report (a list of results, before SchemaVersion 2); rescan with trivy 0.20 or newer"
    )]
    Legacy { shown: String },
    #[error("{shown} has SchemaVersion {version}; this opsdeploy reads SchemaVersion 2")]
    UnsupportedSchema { shown: String, version: String },
}

/// Scans take a while on big images.
const SCAN_TIMEOUT: Duration = Duration::from_secs(900);

pub struct Trivy {
    tool: Tool,
}

impl Trivy {
    pub fn new(binary: Option<&Path>) -> Result<Self, TrivyError> {
        Ok(Trivy {
            tool: Tool::find("trivy", "tools.trivy", binary)?,
        })
    }

    pub fn version(&self) -> Result<String, TrivyError> {
        let out = self
            .tool
            .run(None, &["--version".into()], Duration::from_secs(60))?;
        Ok(out
            .stdout_text()
            .lines()
            .find_map(|l| l.strip_prefix("Version:"))
            .unwrap_or("unknown")
            .trim()
            .to_string())
    }

    /// `trivy image --format json IMAGE`: the report bytes, checked.
    pub fn image(&self, reference: &str) -> Result<Vec<u8>, TrivyError> {
        let args: Vec<String> = ["image", "--format", "json", "--quiet", reference]
            .map(String::from)
            .into();
        let out = self.tool.run(None, &args, SCAN_TIMEOUT)?;
        check_report(&format!("trivy image {reference}"), &out.stdout)?;
        Ok(out.stdout)
    }

    /// `trivy fs --scanners secret,misconfig --format json DIR`.
    pub fn filesystem(&self, dir: &Path) -> Result<Vec<u8>, TrivyError> {
        let args: Vec<String> = vec![
            "fs".into(),
            "--scanners".into(),
            "secret,misconfig".into(),
            "--format".into(),
            "json".into(),
            "--quiet".into(),
            // The built-in checks; no download at scan time.
            "--skip-check-update".into(),
            dir.display().to_string(),
        ];
        let out = self.tool.run(None, &args, SCAN_TIMEOUT)?;
        check_report(&format!("trivy fs {}", dir.display()), &out.stdout)?;
        Ok(out.stdout)
    }
}

/// Reads a report, refusing the shapes opsdeploy cannot judge with the reason.
pub fn check_report<'a>(shown: &str, bytes: &'a [u8]) -> Result<Report<'a>, TrivyError> {
    let not = |reason: String| TrivyError::NotAReport {
        shown: shown.to_string(),
        reason,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| not(format!("it is not UTF-8: {e}")))?;
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') || trimmed.starts_with("null") {
        return Err(TrivyError::Legacy {
            shown: shown.to_string(),
        });
    }
    let head: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|e| not(format!("it is not a JSON object: {e}")))?;
    match head.get("SchemaVersion") {
        Some(v) if v == 2 => {}
        Some(v) => {
            return Err(TrivyError::UnsupportedSchema {
                shown: shown.to_string(),
                version: v.to_string(),
            });
        }
        None if head.contains_key("ClusterName") => {
            return Err(not("it is a Kubernetes cluster report (`trivy k8s`), not an image or filesystem report".into()));
        }
        None => return Err(not("it has no SchemaVersion".into())),
    }
    serde_json::from_str(text).map_err(|e| not(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_and_foreign_shapes_are_refused_with_the_reason() {
        assert!(matches!(
            check_report("r", b"[{\"Target\":\"x\"}]"),
            Err(TrivyError::Legacy { .. })
        ));
        assert!(matches!(
            check_report("r", b"null"),
            Err(TrivyError::Legacy { .. })
        ));
        let err = check_report("r", b"{\"SchemaVersion\":3}").unwrap_err();
        assert!(err.to_string().contains("SchemaVersion 3"), "{err}");
        let err = check_report("r", b"{\"ClusterName\":\"k\"}").unwrap_err();
        assert!(err.to_string().contains("trivy k8s"), "{err}");
        let ok = check_report("r", b"{\"SchemaVersion\":2,\"ArtifactName\":\"a\"}").unwrap();
        assert!(ok.results.is_empty());
    }
}
