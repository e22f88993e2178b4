//! Scans: `trivy image` for every image and `trivy fs --scanners
//! secret,misconfig` for project paths — at plan time for the environment's
//! `scan { }` block, or on their own (`opsdeploy scan`). Reports are kept as
//! trivy wrote them; the input document gets the typed reports (which leave
//! out the code excerpts trivy quotes around a secret) and the accepted
//! findings of the allowlist file.

use std::path::{Path, PathBuf};

use policy_sdk::Section;
use policy_sdk::scan::{Scan, ScanKind, Scans, TrivySeverity};
use serde_json::value::RawValue;

use super::policies::{self, Loaded};
use super::tools::policy_engine;
use super::{ScanBlock, Stage, WorkflowError};
use crate::adapters::trivy::{Trivy, check_report, read_allowlist};
use crate::config::{Config, PolicyConfig, PolicySource, ScanConfig};
use crate::input::InputDocument;
use crate::report::Report;
use crate::store::now_rfc3339;
use crate::store::results::Decision;
use crate::store::summary::ScanSummary;

/// What to scan and how to judge it.
#[derive(Debug, Clone)]
pub(crate) struct ScanRequest {
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
pub(crate) struct Scanner<'a> {
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
    pub summary: Vec<ScanSummary>,
    /// What was scanned: images, then paths.
    pub targets: Vec<String>,
    pub trivy_version: Option<String>,
}

/// Runs the request's scans; a broken allowlist is refused before minutes of
/// scanning, not after.
pub(crate) fn run(scanner: &Scanner<'_>, req: &ScanRequest) -> Result<Scanned, WorkflowError> {
    let allowlist = match &req.allowlist {
        Some(path) => Some(
            read_allowlist(&scanner.dir.join(path), &path.display().to_string())
                .map_err(|e| WorkflowError::tool(Stage::ScanAllowlist, e))?,
        ),
        None => None,
    };
    let trivy = Trivy::new(scanner.trivy).map_err(|e| WorkflowError::tool(Stage::FindTrivy, e))?;
    let fail = |e| WorkflowError::tool(Stage::Scan, e);
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut targets: Vec<(String, ScanKind)> = Vec::new();
    for (i, image) in req.images.iter().enumerate() {
        tracing::info!("trivy image {image}");
        let bytes = trivy.image(image).map_err(fail)?;
        files.push((format!("scans/image-{i}.json"), bytes));
        targets.push((image.clone(), ScanKind::Image));
    }
    for (i, path) in req.paths.iter().enumerate() {
        tracing::info!("trivy fs {}", path.display());
        let bytes = trivy.filesystem(&scanner.dir.join(path)).map_err(fail)?;
        files.push((format!("scans/fs-{i}.json"), bytes));
        targets.push((path.display().to_string(), ScanKind::Fs));
    }
    let mut reports = Vec::new();
    let mut summary = Vec::new();
    for ((file, bytes), (target, kind)) in files.iter().zip(&targets) {
        let report = check_report(file, bytes).map_err(fail)?;
        let counts = report.severity_counts();
        let secrets: usize = report.results.iter().map(|r| r.secrets.len()).sum();
        let misconfigurations: usize = report
            .results
            .iter()
            .flat_map(|r| r.misconfigurations.iter())
            .filter(|m| m.status.as_deref() != Some("PASS"))
            .count();
        summary.push(ScanSummary {
            target: target.clone(),
            kind: *kind,
            critical: counts.critical,
            high: counts.high,
            medium: counts.medium,
            low: counts.low,
            unknown: counts.unknown,
            secrets,
            misconfigurations,
        });
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
        targets: targets.into_iter().map(|(t, _)| t).collect(),
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
    /// The project whose configuration judged, when there is one.
    pub project_dir: Option<PathBuf>,
    pub scanned: Scanned,
    pub decisions: Vec<Decision>,
    /// Whether an environment's scan block judged (its allowlist may accept a finding).
    pub with_environment: bool,
}

/// The policies a scan is judged by outside an environment.
const DEFAULT_SCAN_POLICIES: [&str; 2] = ["image-scan", "no-secrets"];

/// Scans and evaluates, without planning or storing anything. In a project
/// with `--env`, the environment's policies that read `scans` judge (with
/// its settings and enforcement); otherwise, or when none of them reads
/// scans, the built-in image-scan and no-secrets, hard-mandatory.
pub(crate) fn scan_only(
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
            return Err(WorkflowError::NothingToScan {
                environment: ask.environment.clone(),
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

    let mut doc = InputDocument::new(&crate::input::environment_section(
        env.map_or("", |e| e.name.as_str()),
        config.map_or("", |c| c.project.as_str()),
        now_rfc3339(),
    ));
    doc.set_raw(Section::Scans, scanned.section.clone());

    let engine = policy_engine()?;
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
            .map(|name| PolicyConfig::unconfigured(name, PolicySource::Builtin))
            .collect();
        policies::load_configs(&defaults, base, &engine)?
    } else {
        configured
    };
    let decisions = policies::evaluate(&engine, &loaded, &doc, &[]);
    Ok(ScanVerdict {
        project_dir: config.map(|c| c.dir.clone()),
        scanned,
        decisions,
        with_environment: env.is_some(),
    })
}

/// `opsdeploy scan` in `dir`: the project's configuration judges when an
/// environment is named; a bare image scan works anywhere (and uses
/// `tools { trivy }` when there is a configuration).
pub fn scan(dir: &Path, ask: &ScanOnly) -> Result<ScanVerdict, WorkflowError> {
    let config = match Config::load(dir) {
        Ok(c) => Some(c),
        Err(crate::config::ConfigError::NotFound { .. }) if ask.environment.is_none() => None,
        Err(e) => return Err(e.into()),
    };
    scan_only(config.as_ref(), dir, ask)
}

impl ScanVerdict {
    /// The report of the scan, targets placed at their `opsdeploy.hcl` line.
    pub fn report(&self) -> Result<Report, WorkflowError> {
        let scans: Scans<'_> = serde_json::from_str(self.scanned.section.get())
            .map_err(|e| WorkflowError::tool(Stage::Scan, e))?;
        Ok(Report::from_scans(
            &self.decisions,
            &scans,
            self.project_dir.as_deref(),
        ))
    }

    /// The refusal when a mandatory policy blocks the scan.
    pub fn refusal(&self) -> Option<WorkflowError> {
        let blocking: Vec<&Decision> = self.decisions.iter().filter(|d| d.blocks).collect();
        let first = blocking.first()?;
        let why = if first.failure().is_some() {
            ScanBlock::Failed
        } else if first.policy == "image-scan" {
            ScanBlock::Vulnerable {
                unpinned: first
                    .violations
                    .iter()
                    .any(|v| v.rule == "image-not-pinned"),
            }
        } else {
            ScanBlock::Findings
        };
        Some(WorkflowError::ScanBlocked {
            targets: self.scanned.targets.clone(),
            blocking: blocking.iter().map(|d| d.policy.clone()).collect(),
            first: why,
            with_environment: self.with_environment,
        })
    }
}
