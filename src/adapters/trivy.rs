//! Trivy: image vulnerability scans and filesystem secret/misconfiguration
//! scans, as JSON (SchemaVersion 2). The bytes are kept as trivy wrote them
//! (the plan bundle stores them); the typed model is read from them.

use std::path::Path;
use std::time::Duration;

use policy_sdk::scan::{Allowlist, AllowlistEntry, Report};
use serde::Deserialize;

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
    #[error("could not read the scan allowlist {path}: {source}")]
    AllowlistRead {
        path: String,
        source: std::io::Error,
    },
    #[error("the scan allowlist {path} is not valid: {reason}")]
    BadAllowlist { path: String, reason: String },
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

/// The allowlist file: trivy's `.trivyignore.yaml` shape, restricted to what
/// opsdeploy judges. Every entry must say why it is accepted and until when, so
/// an accepted risk is reviewed again instead of forgotten.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowlistFile {
    #[serde(default)]
    vulnerabilities: Vec<AllowlistFileEntry>,
    #[serde(default)]
    misconfigurations: Vec<AllowlistFileEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowlistFileEntry {
    id: String,
    statement: Option<String>,
    expired_at: Option<String>,
    /// opsdeploy's addition: the image references the entry covers.
    #[serde(default)]
    targets: Vec<String>,
    /// trivy's: the files a misconfiguration entry covers.
    #[serde(default)]
    paths: Vec<String>,
}

/// Reads a scan allowlist; `shown` is the path as the project names it.
pub fn read_allowlist(path: &Path, shown: &str) -> Result<Allowlist<'static>, TrivyError> {
    let text = std::fs::read_to_string(path).map_err(|source| TrivyError::AllowlistRead {
        path: shown.to_string(),
        source,
    })?;
    let bad = |reason: String| TrivyError::BadAllowlist {
        path: shown.to_string(),
        reason,
    };
    let file: AllowlistFile = if text.trim().is_empty() {
        AllowlistFile {
            vulnerabilities: Vec::new(),
            misconfigurations: Vec::new(),
        }
    } else {
        serde_saphyr::from_str(&text).map_err(|e| bad(e.to_string()))?
    };
    Ok(Allowlist {
        path: shown.to_string().into(),
        entries: allowlist_entries(&text, file.vulnerabilities, &bad)?,
        misconfigurations: allowlist_entries(&text, file.misconfigurations, &bad)?,
    })
}

/// Checks and converts one section's entries.
fn allowlist_entries(
    text: &str,
    entries: Vec<AllowlistFileEntry>,
    bad: &dyn Fn(String) -> TrivyError,
) -> Result<Vec<AllowlistEntry<'static>>, TrivyError> {
    let mut out = Vec::new();
    for e in entries {
        // The entry's line, for messages: where its id is written.
        let line = text
            .lines()
            .position(|l| {
                l.trim_start()
                    .trim_start_matches("- ")
                    .trim_start()
                    .starts_with("id:")
                    && l.contains(e.id.as_str())
            })
            .map(|i| i as u32 + 1);
        let at = line.map_or(String::new(), |l| format!(" (line {l})"));
        let statement = e
            .statement
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| {
                bad(format!(
                    "{}{at} has no `statement` saying why it is accepted",
                    e.id
                ))
            })?;
        let expired_at = e.expired_at.ok_or_else(|| {
            bad(format!(
                "{}{at} has no `expired_at` date (YYYY-MM-DD) after which it stops counting",
                e.id
            ))
        })?;
        if !is_date(&expired_at) {
            return Err(bad(format!(
                "{}{at}: expired_at `{expired_at}` is not a date like 2026-12-31",
                e.id
            )));
        }
        out.push(AllowlistEntry {
            id: e.id.into(),
            statement: Some(statement.into()),
            expired_at: Some(expired_at.into()),
            targets: e
                .targets
                .into_iter()
                .chain(e.paths)
                .map(Into::into)
                .collect(),
            line,
        });
    }
    Ok(out)
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
        && matches!(s[5..7].parse::<u8>(), Ok(1..=12))
        && matches!(s[8..10].parse::<u8>(), Ok(1..=31))
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

    fn allowlist(text: &str) -> Result<Allowlist<'static>, TrivyError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".trivyignore.yaml");
        std::fs::write(&path, text).unwrap();
        read_allowlist(&path, ".trivyignore.yaml")
    }

    #[test]
    fn allowlist_entries_keep_reason_expiry_targets_and_line() {
        let list = allowlist(
            "vulnerabilities:\n  - id: CVE-2019-1549\n    statement: not reachable, no fork() in the app\n    expired_at: 2027-01-31\n    targets: [\"alpine:3.10\"]\n  - id: CVE-2021-36159\n    statement: \"apk is not run at runtime\"\n    expired_at: \"2026-01-01\"\n",
        )
        .unwrap();
        assert_eq!(list.entries.len(), 2);
        let e = &list.entries[0];
        assert_eq!(e.id, "CVE-2019-1549");
        assert_eq!(e.expired_at.as_deref(), Some("2027-01-31"));
        assert_eq!(e.targets, ["alpine:3.10"]);
        assert_eq!((e.line, list.entries[1].line), (Some(2), Some(6)));
        assert!(allowlist("").unwrap().entries.is_empty());
    }

    #[test]
    fn allowlist_entries_without_reason_or_date_are_refused_naming_the_entry() {
        let err = allowlist("vulnerabilities:\n  - id: CVE-1\n    expired_at: 2027-01-01\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(".trivyignore.yaml") && err.contains("CVE-1 (line 2) has no `statement`"),
            "{err}"
        );
        let err = allowlist("vulnerabilities:\n  - id: CVE-1\n    statement: ok\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no `expired_at`"), "{err}");
        let err = allowlist(
            "vulnerabilities:\n  - id: CVE-1\n    statement: ok\n    expired_at: next year\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`next year` is not a date"), "{err}");
        let ok = allowlist(
            "misconfigurations:\n  - id: DS002\n    statement: rootless by PodSecurity\n    expired_at: 2027-01-31\n    paths: [Dockerfile]\n",
        )
        .unwrap();
        assert!(ok.entries.is_empty());
        assert_eq!(ok.misconfigurations[0].id, "DS002");
        assert_eq!(ok.misconfigurations[0].targets, ["Dockerfile"]);
        assert_eq!(ok.misconfigurations[0].line, Some(2));
        // Misconfigurations are accepted on the same terms as vulnerabilities.
        let err = allowlist("misconfigurations:\n  - id: AVD-1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("AVD-1 (line 2) has no `statement`"), "{err}");
    }
}
