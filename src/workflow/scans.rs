//! Scans at plan time: `trivy image` for every configured image and
//! `trivy fs --scanners secret,misconfig` for configured paths. Reports are
//! kept in the bundle as trivy wrote them; the input document gets the
//! typed reports (which leave out the code excerpts trivy quotes around a
//! secret) and the accepted findings of the allowlist file.

use policy_sdk::scan::{Scan, ScanKind, Scans};
use serde_json::json;

use super::plan::tool_error;
use super::{Project, WorkflowError};
use crate::adapters::trivy::{Trivy, check_report, read_allowlist};
use crate::config::Environment;
use crate::store::bundle::BundleBuilder;

pub struct Scanned {
    /// The `scans` section of the input document.
    pub section: serde_json::Value,
    /// Per-target severity counts for the plan summary.
    pub summary: Vec<serde_json::Value>,
    pub trivy_version: Option<String>,
}

pub fn scan(
    project: &Project,
    env: &Environment,
    builder: &mut BundleBuilder,
) -> Result<Option<Scanned>, WorkflowError> {
    let Some(cfg) = &env.scan else {
        return Ok(None);
    };
    // A broken allowlist is found before minutes of scanning, not after.
    let allowlist = match &cfg.allowlist {
        Some(path) => Some(
            read_allowlist(&project.config.resolve(path), &path.display().to_string()).map_err(
                |e| {
                    tool_error(
                        e,
                        "fix the allowlist file named in scan { allowlist = ... }",
                    )
                },
            )?,
        ),
        None => None,
    };
    let trivy = Trivy::new(project.config.tools.trivy.as_deref()).map_err(|e| {
        tool_error(
            e,
            "install trivy, or set its path: tools { trivy = \"...\" }",
        )
    })?;
    let hint = "check the image reference and trivy's database, then plan again";
    let mut raw: Vec<(String, ScanKind, String, Vec<u8>)> = Vec::new();
    for (i, image) in cfg.images.iter().enumerate() {
        tracing::info!("trivy image {image}");
        let bytes = trivy.image(image).map_err(|e| tool_error(e, hint))?;
        raw.push((
            image.clone(),
            ScanKind::Image,
            format!("scans/image-{i}.json"),
            bytes,
        ));
    }
    for (i, path) in cfg.paths.iter().enumerate() {
        tracing::info!("trivy fs {}", path.display());
        let bytes = trivy
            .filesystem(&project.config.resolve(path))
            .map_err(|e| tool_error(e, hint))?;
        raw.push((
            path.display().to_string(),
            ScanKind::Fs,
            format!("scans/fs-{i}.json"),
            bytes,
        ));
    }
    let mut reports = Vec::new();
    let mut summary = Vec::new();
    for (target, kind, file, bytes) in &raw {
        builder.add_file(file, bytes)?;
        let report = check_report(file, bytes).map_err(|e| tool_error(e, hint))?;
        let counts = report.severity_counts();
        let secrets: usize = report.results.iter().map(|r| r.secrets.len()).sum();
        let misconfigurations: usize = report
            .results
            .iter()
            .flat_map(|r| r.misconfigurations.iter())
            .filter(|m| m.status.as_deref() != Some("PASS"))
            .count();
        summary.push(json!({
            "target": target,
            "kind": kind,
            "critical": counts.critical,
            "high": counts.high,
            "medium": counts.medium,
            "low": counts.low,
            "unknown": counts.unknown,
            "secrets": secrets,
            "misconfigurations": misconfigurations,
        }));
        reports.push(Scan {
            target: target.as_str().into(),
            kind: *kind,
            report,
        });
    }
    let section = serde_json::to_value(Scans {
        fail_on: Some(cfg.fail_on),
        allowlist,
        reports,
    })
    .expect("scans serialize");
    Ok(Some(Scanned {
        section,
        summary,
        trivy_version: trivy.version().ok(),
    }))
}
