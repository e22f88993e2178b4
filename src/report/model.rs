//! The one report model every format is written from: what a plan bundle,
//! a policy evaluation or a fixture run found, with locations, and without
//! secret values.
//!
//! `--format json` is this model serialized; its shape is a contract
//! (`schema` is bumped on any breaking change):
//!
//! ```text
//! { "schema": 1,
//!   "tool": {"name": "opsdeploy", "version": "0.1.0"},
//!   "verdict": "pass" | "warn" | "blocked",
//!   "bundle": null | {"digest", "project", "environment", "created_at", "planned_by",
//!              "git_revision"?, "promoted_from"?, "changes": {...plan summary...},
//!              "approvals": [{"approver", "at", "comment"?}],
//!              "overrides": [{"policy", "approver", "reason", "at"}],
//!              "trust": ["approvals signed: ..." | "approvals unsigned: identity not verified"]},
//!   "policies": [{"name", "sha256", "enforcement"?, "status": "pass"|"warn"|"deny"|"overridden"|"failed"|"shadow",
//!                 "blocks", "failure"?, "findings": [{"rule", "message", "severity": "deny"|"warn"|"info",
//!                 "address"?, "path"?, "line"?}]}],
//!   "scans": [{"target", "kind": "image"|"fs", "file"?, "fail_on"?, "counts": {critical, high, medium, low, unknown},
//!              "vulnerabilities": [{"id", "package", "installed"?, "fixed"?, "severity", "title"?, "url"?, "in"}],
//!              "secrets": [{"rule", "category"?, "severity", "title"?, "path", "line"?}],
//!              "misconfigurations": [{"id", "severity", "title"?, "message"?, "resolution"?, "url"?,
//!                                     "path", "line"?, "resource"?}]}],
//!   "tests": [{"policy", "case", "file", "passed", "failure"?}] }
//! ```
//!
//! A finding's `path`/`line` are the policy's own, or, for a terraform resource
//! address, where that resource is declared in the project. Secret findings
//! carry the rule, file and line, never the matched text.

use std::path::Path;

use policy_sdk::scan::{ScanKind, Scans, SeverityCounts, TrivySeverity};
use serde::{Deserialize, Serialize};

use crate::config::Enforcement;
use crate::engine::Evaluation;
use crate::redact::Redactor;
use crate::store::bundle::Manifest;
use crate::store::records::{ApprovalRecord, OverrideRecord};
use crate::store::results::Decision;
use crate::store::summary::PlanSummary;

/// Version of the JSON shape above.
pub const REPORT_SCHEMA: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema: u32,
    pub tool: Tool,
    pub verdict: Verdict,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle: Option<BundleInfo>,
    #[serde(default)]
    pub policies: Vec<PolicyResult>,
    #[serde(default)]
    pub scans: Vec<ScanReport>,
    #[serde(default)]
    pub tests: Vec<TestCase>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Nothing blocks and nothing warns.
    Pass,
    /// Something was reported, nothing blocks.
    Warn,
    /// A mandatory policy denies, or a fixture failed.
    Blocked,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Warn => "warn",
            Verdict::Blocked => "blocked",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BundleInfo {
    pub digest: String,
    pub project: String,
    pub environment: String,
    pub created_at: String,
    pub planned_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_revision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoted_from: Option<String>,
    /// The plan summary: terraform counts, helm releases, images, migrations.
    pub changes: PlanSummary,
    pub approvals: Vec<Approval>,
    pub overrides: Vec<Override>,
    /// How the approvals were judged: "approvals signed: ..." or
    /// "approvals unsigned: identity not verified".
    #[serde(default)]
    pub trust: Vec<String>,
    /// Built-in safety policies that did not run for this plan, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies_off: Vec<crate::config::DisabledPolicy>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub approver: String,
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Override {
    pub policy: String,
    pub approver: String,
    pub reason: String,
    pub at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyStatus {
    Pass,
    /// Findings, none of them a denial (or the policy is advisory).
    Warn,
    Deny,
    /// A soft-mandatory denial an approver overrode.
    Overridden,
    /// The policy could not run (trap, timeout, bad output): a denial.
    Failed,
    /// Enforcement `shadow`: recorded with its findings (and failure), never
    /// blocking and never counted in the verdict.
    Shadow,
}

impl PolicyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyStatus::Pass => "pass",
            PolicyStatus::Warn => "warn",
            PolicyStatus::Deny => "deny",
            PolicyStatus::Overridden => "overridden",
            PolicyStatus::Failed => "failed",
            PolicyStatus::Shadow => "shadow",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyResult {
    pub name: String,
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforcement: Option<Enforcement>,
    pub status: PolicyStatus,
    /// The deploy may not go ahead because of this policy.
    pub blocks: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    pub findings: Vec<Finding>,
}

/// A policy's finding, as the policy reported it (its `path`/`line` filled in
/// from the project when only an address was given).
pub type Finding = policy_sdk::Violation;

/// Where a finding is, as people read it: the address, else `path:line`.
pub fn location(f: &Finding) -> Option<String> {
    let file = f.path.as_ref().map(|p| match f.line {
        Some(l) => format!("{p}:{l}"),
        None => p.clone(),
    });
    match (&f.address, file) {
        (Some(a), Some(f)) => Some(format!("{a} ({f})")),
        (Some(a), None) => Some(a.clone()),
        (None, f) => f,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanReport {
    pub target: String,
    pub kind: ScanKind,
    /// The report trivy wrote, inside the plan bundle (none for `opsdeploy scan`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_on: Option<TrivySeverity>,
    /// Where the target is configured (`opsdeploy.hcl` line), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configured_at: Option<u32>,
    pub counts: SeverityCounts,
    pub vulnerabilities: Vec<Vulnerability>,
    pub secrets: Vec<SecretFinding>,
    pub misconfigurations: Vec<Misconfiguration>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vulnerability {
    pub id: String,
    pub package: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed: Option<String>,
    pub severity: TrivySeverity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The part of the target it was found in (trivy's result target).
    #[serde(rename = "in")]
    pub found_in: String,
}

/// A secret trivy found: rule and place only; the matched text never leaves
/// the bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretFinding {
    pub rule: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    pub severity: TrivySeverity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Misconfiguration {
    pub id: String,
    pub severity: TrivySeverity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestCase {
    pub policy: String,
    pub case: String,
    /// The fixture file.
    pub file: String,
    pub passed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// Everything a report of a plan bundle is made from.
pub struct BundleSource<'a> {
    pub digest: &'a str,
    pub manifest: &'a Manifest,
    /// With the overrides logged since the plan applied ([`with_overrides`]).
    pub decisions: &'a [Decision],
    /// The `scans` section of the bundle's input document.
    pub scans: Option<Scans<'a>>,
    pub approvals: &'a [ApprovalRecord],
    pub overrides: &'a [OverrideRecord],
    /// How approvals are judged: signed by whom, or unsigned.
    pub trust: &'a [String],
    /// The project directory, to find where resources and images are declared.
    pub project_dir: Option<&'a Path>,
    pub redactor: &'a Redactor,
}

impl Report {
    fn new(
        bundle: Option<BundleInfo>,
        policies: Vec<PolicyResult>,
        scans: Vec<ScanReport>,
        tests: Vec<TestCase>,
    ) -> Report {
        let blocked = policies.iter().any(|p| p.blocks) || tests.iter().any(|t| !t.passed);
        let warned = policies
            .iter()
            .any(|p| p.status != PolicyStatus::Shadow && !p.findings.is_empty())
            || scans.iter().any(|s| {
                s.counts.total() > 0 || !s.secrets.is_empty() || !s.misconfigurations.is_empty()
            });
        Report {
            schema: REPORT_SCHEMA,
            tool: Tool {
                name: "opsdeploy".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            verdict: if blocked {
                Verdict::Blocked
            } else if warned {
                Verdict::Warn
            } else {
                Verdict::Pass
            },
            bundle,
            policies,
            scans,
            tests,
        }
    }

    /// The report of a plan bundle.
    pub fn from_bundle(src: &BundleSource<'_>) -> Report {
        let m = src.manifest;
        let locator = src.project_dir.map(|d| {
            Locator::new(
                d,
                m.sources
                    .iter()
                    .map(|s| s.path.as_str())
                    .filter(|p| p.ends_with(".tf")),
            )
        });
        let policies = src
            .decisions
            .iter()
            .map(|d| {
                let mut p = PolicyResult::from_decision(d);
                if let Some(loc) = &locator {
                    p.findings.iter_mut().for_each(|f| loc.place(f));
                }
                p
            })
            .collect();
        let scans = src
            .scans
            .as_ref()
            .map(|s| scan_reports(s, true, locator.as_ref()))
            .unwrap_or_default();
        let bundle = BundleInfo {
            digest: src.digest.to_string(),
            project: m.project.clone(),
            environment: m.environment.clone(),
            created_at: m.created_at.clone(),
            planned_by: m.planned_by.clone(),
            git_revision: m.git_revision.clone(),
            promoted_from: m.promoted_from.clone(),
            changes: m.summary.clone(),
            policies_off: m.policies_off.clone(),
            approvals: src
                .approvals
                .iter()
                .map(|a| Approval {
                    approver: a.approver.clone(),
                    at: a.at.clone(),
                    comment: a.comment.clone(),
                })
                .collect(),
            overrides: src
                .overrides
                .iter()
                .map(|o| Override {
                    policy: o.policy.clone(),
                    approver: o.approver.clone(),
                    reason: o.reason.clone(),
                    at: o.at.clone(),
                })
                .collect(),
            trust: src.trust.to_vec(),
        };
        Report::new(Some(bundle), policies, scans, Vec::new()).redacted(src.redactor)
    }

    /// The report of `opsdeploy scan`: the scans and the policies that
    /// judged them; `project_dir` places targets at their `opsdeploy.hcl` line.
    pub fn from_scans(
        decisions: &[Decision],
        scans: &Scans<'_>,
        project_dir: Option<&Path>,
    ) -> Report {
        let locator = project_dir.map(|d| Locator::new(d, std::iter::empty()));
        let policies = decisions.iter().map(PolicyResult::from_decision).collect();
        Report::new(
            None,
            policies,
            scan_reports(scans, false, locator.as_ref()),
            Vec::new(),
        )
    }

    /// The report of one `policy eval`.
    pub fn from_evaluation(e: &Evaluation, redactor: &Redactor) -> Report {
        let denied = e.denies();
        let findings: Vec<Finding> = e.violations();
        let status = match (e.failure(), denied, findings.is_empty()) {
            (Some(_), ..) => PolicyStatus::Failed,
            (None, true, _) => PolicyStatus::Deny,
            (None, false, true) => PolicyStatus::Pass,
            (None, false, false) => PolicyStatus::Warn,
        };
        let policy = PolicyResult {
            name: e.policy.clone(),
            sha256: e.sha256.clone(),
            enforcement: None,
            status,
            // Outside a project nothing says how a denial is enforced; the
            // command refuses (exit 3) on any denial, so it blocks here.
            blocks: denied,
            failure: e.failure().map(|f| f.reason.clone()),
            findings,
        };
        Report::new(None, vec![policy], Vec::new(), Vec::new()).redacted(redactor)
    }

    /// The report of a `policy test` run.
    pub fn from_tests(tests: Vec<TestCase>) -> Report {
        Report::new(None, Vec::new(), Vec::new(), tests)
    }

    /// The report with its free text scrubbed of the redactor's secrets:
    /// findings, failures, tool titles and messages, approval comments.
    fn redacted(mut self, redactor: &Redactor) -> Report {
        if redactor.is_empty() {
            return self;
        }
        let scrub = |t: &mut String| *t = redactor.scrub(t);
        let scrub_opt = |t: &mut Option<String>| {
            if let Some(t) = t {
                *t = redactor.scrub(t);
            }
        };
        for p in &mut self.policies {
            redactor.scrub_violations(&mut p.findings);
            scrub_opt(&mut p.failure);
        }
        if let Some(b) = &mut self.bundle {
            b.approvals
                .iter_mut()
                .for_each(|a| scrub_opt(&mut a.comment));
            b.overrides.iter_mut().for_each(|o| scrub(&mut o.reason));
        }
        for s in &mut self.scans {
            s.vulnerabilities
                .iter_mut()
                .for_each(|v| scrub_opt(&mut v.title));
            s.secrets.iter_mut().for_each(|f| scrub_opt(&mut f.title));
            for m in &mut s.misconfigurations {
                for t in [&mut m.title, &mut m.message, &mut m.resolution] {
                    scrub_opt(t);
                }
            }
        }
        self
    }
}

impl PolicyResult {
    fn from_decision(d: &Decision) -> PolicyResult {
        let failure = d.failure().map(|f| f.reason.clone());
        let findings: Vec<Finding> = d.violations.clone();
        let status = if d.enforcement == Enforcement::Shadow {
            PolicyStatus::Shadow
        } else if failure.is_some() {
            PolicyStatus::Failed
        } else if d.denied && d.overridden_by.is_some() {
            PolicyStatus::Overridden
        } else if d.denied && d.enforcement != Enforcement::Advisory {
            PolicyStatus::Deny
        } else if findings.is_empty() {
            PolicyStatus::Pass
        } else {
            PolicyStatus::Warn
        };
        PolicyResult {
            name: d.policy.clone(),
            sha256: d.sha256.clone(),
            enforcement: Some(d.enforcement),
            status,
            blocks: d.blocks,
            failure,
            findings,
        }
    }
}

/// The scans as reports; `in_bundle` names the file each is kept in.
fn scan_reports(scans: &Scans<'_>, in_bundle: bool, locator: Option<&Locator>) -> Vec<ScanReport> {
    let (mut images, mut dirs) = (0, 0);
    scans
        .reports
        .iter()
        .map(|s| {
            // Named as `workflow::scans` stores them: images first, then paths.
            let file = match s.kind {
                ScanKind::Image => {
                    images += 1;
                    format!("scans/image-{}.json", images - 1)
                }
                ScanKind::Fs => {
                    dirs += 1;
                    format!("scans/fs-{}.json", dirs - 1)
                }
            };
            let in_dir = |target: &str| match s.kind {
                ScanKind::Fs => format!("{}/{target}", s.target.trim_end_matches('/')),
                ScanKind::Image => target.to_string(),
            };
            let r = &s.report;
            let vulnerabilities = r
                .results
                .iter()
                .flat_map(|res| res.vulnerabilities.iter().map(move |v| (res, v)))
                .map(|(res, v)| Vulnerability {
                    id: v.vulnerability_id.to_string(),
                    package: v.pkg_name.to_string(),
                    installed: v.installed_version.as_deref().map(String::from),
                    fixed: v
                        .has_fix()
                        .then(|| v.fixed_version.as_deref().unwrap_or_default().into()),
                    severity: v.severity,
                    title: v.title.as_deref().map(String::from),
                    url: v.primary_url.as_deref().map(String::from),
                    found_in: res.target.to_string(),
                })
                .collect();
            let secrets = r
                .results
                .iter()
                .flat_map(|res| res.secrets.iter().map(move |f| (res, f)))
                .map(|(res, f)| SecretFinding {
                    rule: f.rule_id.to_string(),
                    category: f.category.as_deref().map(String::from),
                    severity: f.severity,
                    title: f.title.as_deref().map(String::from),
                    path: in_dir(&res.target),
                    line: f.start_line,
                })
                .collect();
            let misconfigurations = r
                .results
                .iter()
                .flat_map(|res| res.misconfigurations.iter().map(move |m| (res, m)))
                .filter(|(_, m)| m.status.as_deref() != Some("PASS"))
                .map(|(res, m)| Misconfiguration {
                    id: m.id.to_string(),
                    severity: m.severity,
                    title: m.title.as_deref().map(String::from),
                    message: m.message.as_deref().map(String::from),
                    resolution: m.resolution.as_deref().map(String::from),
                    url: m.primary_url.as_deref().map(String::from),
                    path: in_dir(&res.target),
                    line: m.cause_metadata.as_ref().and_then(|c| c.start_line),
                    resource: m
                        .cause_metadata
                        .as_ref()
                        .and_then(|c| c.resource.as_deref())
                        .map(String::from),
                })
                .collect();
            ScanReport {
                target: s.target.to_string(),
                kind: s.kind,
                file: in_bundle.then_some(file),
                fail_on: scans.fail_on,
                configured_at: locator.and_then(|l| l.config_line(&s.target)),
                counts: r.severity_counts(),
                vulnerabilities,
                secrets,
                misconfigurations,
            }
        })
        .collect()
}

/// Finds where things are declared in the project files the plan was made from.
struct Locator {
    /// (path relative to the project, text) of the plan's `.tf` sources.
    terraform: Vec<(String, String)>,
    config: Option<String>,
}

impl Locator {
    /// `terraform`: the `.tf` files (relative to `dir`) resources are declared in.
    fn new<'s>(dir: &Path, terraform: impl Iterator<Item = &'s str>) -> Locator {
        let read = |rel: &str| std::fs::read_to_string(dir.join(rel)).ok();
        Locator {
            terraform: terraform
                .filter_map(|p| Some((p.to_string(), read(p)?)))
                .collect(),
            config: read(crate::config::CONFIG_FILE),
        }
    }

    /// Gives an address-only finding the file and line its resource is
    /// declared at (`resource "TYPE" "NAME"`, the last two address parts).
    fn place(&self, f: &mut Finding) {
        if f.path.is_some() {
            return;
        }
        let Some(address) = &f.address else { return };
        let mut parts = address.split('.').rev().filter(|p| !p.is_empty());
        let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
            return;
        };
        // `aws_instance.web[0]` and `["key"]` instances are declared once.
        let name = name.split('[').next().unwrap_or(name);
        let needle = format!("resource \"{kind}\" \"{name}\"");
        for (path, text) in &self.terraform {
            if let Some(n) = text
                .lines()
                .position(|l| l.trim_start().starts_with(&needle))
            {
                f.path = Some(path.clone());
                f.line = Some(n as u32 + 1);
                return;
            }
        }
    }

    /// The `opsdeploy.hcl` line that names a scan target.
    fn config_line(&self, target: &str) -> Option<u32> {
        let quoted = format!("\"{target}\"");
        self.config
            .as_deref()?
            .lines()
            .position(|l| l.contains(&quoted))
            .map(|n| n as u32 + 1)
    }
}

/// The decisions as they stand now: results.json holds them as planned, and an
/// override an approver logged since lifts a soft-mandatory denial, as it will
/// at apply.
pub fn with_overrides(decisions: &[Decision], overrides: &[OverrideRecord]) -> Vec<Decision> {
    decisions
        .iter()
        .map(|d| {
            let mut d = d.clone();
            d.apply_overrides(overrides);
            d
        })
        .collect()
}
