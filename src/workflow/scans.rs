//! Scans: `trivy image` for every image and `trivy fs --scanners
//! secret,misconfig` for project paths — at plan time for the environment's
//! `scan { }` block, or on their own (`opsdeploy scan`). Reports are kept as
//! trivy wrote them; the input document gets the typed reports (which leave
//! out the code excerpts trivy quotes around a secret) and the accepted
//! findings of the allowlist file.

use std::path::{Path, PathBuf};

use policy_sdk::Section;
use policy_sdk::input::Environment as EnvSection;
use policy_sdk::scan::{Scan, ScanKind, Scans, TrivySeverity};
use serde_json::json;
use serde_json::value::RawValue;

use super::plan::tool_error;
use super::policies::{self, Decision, Loaded};
use super::{ErrorClass, WorkflowError};
use crate::adapters::trivy::{Trivy, check_report, read_allowlist};
use crate::config::{Config, PolicyConfig, ScanConfig};
use crate::engine::PolicyEngine;
use crate::input::InputDocument;
use crate::store::now_rfc3339;

/// What to scan and how to judge it.
#[derive(Debug, Clone)]
pub struct ScanRequest {
    pub images: Vec<String>,
    /// Paths relative to the base directory, scanned for secrets and
    /// misconfigurations.
    pub paths: Vec<PathBuf>,
    pub fail_on: TrivySeverity,
    pub allowlist: Option<PathBuf>,
}

impl From<&ScanConfig> for ScanRequest {
    fn from(cfg: &ScanConfig) -> Self {
        ScanRequest {
            images: cfg.images.clone(),
            paths: cfg.paths.clone(),
            fail_on: cfg.fail_on,
            allowlist: cfg.allowlist.clone(),
        }
    }
}

/// Where scans run: the directory paths are relative to, and trivy.
pub struct Scanner<'a> {
    pub dir: &'a Path,
    /// `tools { trivy = "..." }`, else trivy on PATH.
    pub trivy: Option<&'a Path>,
}

impl<'a> From<&'a Config> for Scanner<'a> {
    fn from(config: &'a Config) -> Self {
        Scanner {
            dir: &config.dir,
            trivy: config.tools.trivy.as_deref(),
        }
    }
}

/// The scans of one request.
pub struct Scanned {
    /// trivy's reports as it wrote them, named as a plan bundle keeps them
    /// (`scans/image-0.json`, `scans/fs-0.json`).
    pub files: Vec<(String, Vec<u8>)>,
    /// The `scans` section of the input document, as JSON.
    pub section: Box<RawValue>,
    /// Per-target severity counts for the plan summary.
    pub summary: Vec<serde_json::Value>,
    pub trivy_version: Option<String>,
}

/// Runs the request's scans; a broken allowlist is refused before minutes of
/// scanning, not after.
pub fn run(scanner: &Scanner<'_>, req: &ScanRequest) -> Result<Scanned, WorkflowError> {
    let allowlist = match &req.allowlist {
        Some(path) => Some(
            read_allowlist(&scanner.dir.join(path), &path.display().to_string()).map_err(|e| {
                tool_error(
                    e,
                    "fix the allowlist file named in scan { allowlist = ... }",
                )
            })?,
        ),
        None => None,
    };
    let trivy = Trivy::new(scanner.trivy).map_err(|e| {
        tool_error(
            e,
            "install trivy, or set its path: tools { trivy = \"...\" }",
        )
    })?;
    let hint = "check the image reference and trivy's database, then scan again";
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut targets: Vec<(String, ScanKind)> = Vec::new();
    for (i, image) in req.images.iter().enumerate() {
        tracing::info!("trivy image {image}");
        let bytes = trivy.image(image).map_err(|e| tool_error(e, hint))?;
        files.push((format!("scans/image-{i}.json"), bytes));
        targets.push((image.clone(), ScanKind::Image));
    }
    for (i, path) in req.paths.iter().enumerate() {
        tracing::info!("trivy fs {}", path.display());
        let bytes = trivy
            .filesystem(&scanner.dir.join(path))
            .map_err(|e| tool_error(e, hint))?;
        files.push((format!("scans/fs-{i}.json"), bytes));
        targets.push((path.display().to_string(), ScanKind::Fs));
    }
    let mut reports = Vec::new();
    let mut summary = Vec::new();
    for ((file, bytes), (target, kind)) in files.iter().zip(&targets) {
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
    let section = serde_json::value::to_raw_value(&Scans {
        fail_on: Some(req.fail_on),
        allowlist,
        reports,
    })
    .expect("scans serialize");
    Ok(Scanned {
        section,
        summary,
        files,
        trivy_version: trivy.version().ok(),
    })
}

/// What `opsdeploy scan` asks for.
#[derive(Debug, Default)]
pub struct ScanOnly {
    /// Images named on the command line; when empty, the environment's
    /// `scan { images, paths }`.
    pub images: Vec<String>,
    /// The environment whose `scan` block (fail_on, allowlist) and policies judge.
    pub environment: Option<String>,
    /// Overrides the environment's `fail_on` (default CRITICAL).
    pub fail_on: Option<TrivySeverity>,
}

/// A scan on its own, judged by the policies that read scans.
pub struct ScanVerdict {
    pub scanned: Scanned,
    pub decisions: Vec<Decision>,
}

/// The policies a scan is judged by outside an environment.
const DEFAULT_SCAN_POLICIES: [&str; 2] = ["image-scan", "no-secrets"];

/// Scans and evaluates, without planning or storing anything. In a project
/// with `--env`, the environment's policies that read `scans` judge (with
/// its settings and enforcement); otherwise, or when none of them reads
/// scans, the built-in image-scan and no-secrets, hard-mandatory.
pub fn scan_only(
    config: Option<&Config>,
    base: &Path,
    ask: &ScanOnly,
) -> Result<ScanVerdict, WorkflowError> {
    let env = match (&ask.environment, config) {
        (Some(name), Some(config)) => Some(config.require_environment(name)?),
        _ => None,
    };
    let configured = env.and_then(|e| e.scan.as_ref());
    let mut req = match configured {
        _ if !ask.images.is_empty() => ScanRequest {
            images: ask.images.clone(),
            paths: Vec::new(),
            fail_on: configured.map_or(TrivySeverity::Critical, |c| c.fail_on),
            allowlist: configured.and_then(|c| c.allowlist.clone()),
        },
        Some(cfg) => ScanRequest::from(cfg),
        None => {
            return Err(WorkflowError::Other {
                what: match &ask.environment {
                    Some(name) => format!("environment \"{name}\" has no scan block"),
                    None => "nothing to scan".into(),
                },
                location: ask
                    .environment
                    .as_ref()
                    .map(|_| crate::config::CONFIG_FILE.to_string()),
                hint: Some(
                    "name the images (`opsdeploy scan IMAGE...`), or add `scan { images = [...] }` \
                     to the environment and run `opsdeploy scan --env ENV`"
                        .into(),
                ),
                class: ErrorClass::Usage,
            });
        }
    };
    if let Some(f) = ask.fail_on {
        req.fail_on = f;
    }
    let scanner = match config {
        Some(c) => Scanner::from(c),
        None => Scanner {
            dir: base,
            trivy: None,
        },
    };
    let scanned = run(&scanner, &req)?;

    let mut doc = InputDocument::new(&EnvSection {
        name: env.map(|e| e.name.clone()).unwrap_or_default().into(),
        project: config.map(|c| c.project.clone()).unwrap_or_default().into(),
        strategy: None,
        promote_from: None,
        plan_digest: None,
        rollback_runbook: None,
        now: Some(now_rfc3339().into()),
    });
    doc.set_raw(Section::Scans, scanned.section.clone());

    let engine = PolicyEngine::with_default_cache()
        .map_err(|e| tool_error(e, "check the cache directory (OPSDEPLOY_CACHE_DIR)"))?;
    let configured: Vec<Loaded> = match (config, env) {
        (Some(config), Some(env)) => policies::load(config, &engine, &env.name)?
            .into_iter()
            .filter(|l| match &l.policy {
                // Without metadata a policy reads every section, scans included.
                Ok(p) => p.reads.as_ref().is_none_or(|r| r.contains(&Section::Scans)),
                // A module that cannot be used is a denial wherever it applies.
                Err(_) => true,
            })
            .collect(),
        _ => Vec::new(),
    };
    // Outside an environment, or in one none of whose policies reads scans,
    // the built-in scan policies judge: a scan is never passed unjudged.
    let loaded = if configured.is_empty() {
        if let Some(env) = env {
            tracing::warn!(
                "no policy of \"{}\" reads scans; judging by the built-in {}",
                env.name,
                DEFAULT_SCAN_POLICIES.join(" and ")
            );
        }
        let defaults: Vec<PolicyConfig> = DEFAULT_SCAN_POLICIES
            .iter()
            .map(|name| PolicyConfig::builtin_default(name))
            .collect();
        policies::load_configs(&defaults, base, &engine)?
    } else {
        configured
    };
    let decisions = policies::evaluate(&engine, &loaded, &doc, &[]);
    Ok(ScanVerdict { scanned, decisions })
}
