//! SARIF 2.1.0 as GitHub code scanning accepts it: one run per tool
//! (opsdeploy's policies; trivy when the bundle has scans), every rule with a
//! short description and help text, every result with a file and line (GitHub
//! rejects results without one) and, for terraform resources, the address as a
//! logical location.

use std::collections::BTreeMap;

use policy_sdk::Severity;
use policy_sdk::scan::{ScanKind, TrivySeverity};
use serde_json::{Value, json};

use super::model::{Finding, PolicyResult, PolicyStatus, Report, ScanReport};
use crate::config::{CONFIG_FILE, Enforcement};
use crate::store::bundle::sha256_hex;
use crate::store::short;

pub const SCHEMA_URI: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

pub fn write(report: &Report) -> String {
    let mut runs = vec![policy_run(report)];
    if !report.scans.is_empty() {
        runs.push(trivy_run(report));
    }
    let log = json!({
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": runs,
    });
    serde_json::to_string_pretty(&log).expect("SARIF serializes")
}

pub(super) fn policy_level(s: Severity) -> &'static str {
    match s {
        Severity::Deny => "error",
        Severity::Warn => "warning",
        Severity::Info => "note",
    }
}

fn trivy_level(s: TrivySeverity) -> &'static str {
    match s {
        TrivySeverity::Critical | TrivySeverity::High => "error",
        TrivySeverity::Medium => "warning",
        TrivySeverity::Low | TrivySeverity::Unknown => "note",
    }
}

/// GitHub sorts and labels security alerts by this CVSS-like score.
fn security_severity(s: TrivySeverity) -> &'static str {
    match s {
        TrivySeverity::Critical => "9.5",
        TrivySeverity::High => "8.0",
        TrivySeverity::Medium => "5.5",
        TrivySeverity::Low => "2.0",
        TrivySeverity::Unknown => "0.0",
    }
}

/// Rules in first-seen order, results pointing at them by index.
#[derive(Default)]
pub(super) struct Rules {
    index: BTreeMap<String, usize>,
    pub(super) rules: Vec<Value>,
}

impl Rules {
    pub(super) fn get_or_add(&mut self, id: &str, make: impl FnOnce() -> Value) -> usize {
        if let Some(i) = self.index.get(id) {
            return *i;
        }
        let i = self.rules.len();
        let mut rule = make();
        rule["id"] = id.into();
        self.rules.push(rule);
        self.index.insert(id.to_string(), i);
        i
    }
}

pub(super) fn rule(short: &str, help: String, level: &str, tags: &[&str]) -> Value {
    json!({
        "shortDescription": {"text": short},
        "fullDescription": {"text": help},
        "help": {"text": help},
        "defaultConfiguration": {"level": level},
        "properties": {"tags": tags},
    })
}

/// A relative path as a URI reference: anything but unreserved characters and
/// `/` percent-encoded.
fn uri(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.trim_start_matches("./").bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

pub(super) fn location(path: &str, line: Option<u32>, logical: Option<(&str, &str)>) -> Value {
    let mut loc = json!({
        "physicalLocation": {
            "artifactLocation": {"uri": uri(path)},
            "region": {"startLine": line.unwrap_or(1).max(1)},
        }
    });
    if let Some((name, kind)) = logical {
        loc["logicalLocations"] = json!([{"fullyQualifiedName": name, "kind": kind}]);
    }
    loc
}

fn fingerprint(parts: &[&str]) -> Value {
    json!({"opsdeploy/v1": sha256_hex(parts.join("\u{1f}").as_bytes())[..32].to_string()})
}

pub(super) fn result(
    rule_id: &str,
    rule_index: usize,
    level: &str,
    message: String,
    loc: Value,
    fp: &[&str],
) -> Value {
    json!({
        "ruleId": rule_id,
        "ruleIndex": rule_index,
        "level": level,
        "message": {"text": message},
        "locations": [loc],
        "partialFingerprints": fingerprint(fp),
    })
}

fn enforcement_sentence(p: &PolicyResult) -> &'static str {
    match p.enforcement {
        Some(Enforcement::HardMandatory) => {
            "The policy is hard-mandatory: a deny blocks the deploy and cannot be overridden."
        }
        Some(Enforcement::SoftMandatory) => {
            "The policy is soft-mandatory: a deny blocks the deploy unless an approver logs an override for the plan."
        }
        Some(Enforcement::Advisory) => "The policy is advisory: its findings never block.",
        Some(Enforcement::Shadow) => {
            "The policy runs in shadow: its findings are recorded as notes and never block."
        }
        None => "A deny makes `opsdeploy policy eval` refuse (exit 3).",
    }
}

fn policy_run(report: &Report) -> Value {
    let mut rules = Rules::default();
    let mut results = Vec::new();
    for p in &report.policies {
        // A shadow policy's findings are notes whatever their severity: they
        // never block, and code scanning must not fail a pull request on them.
        let level = |s| {
            if p.status == PolicyStatus::Shadow {
                "note"
            } else {
                policy_level(s)
            }
        };
        for f in &p.findings {
            let id = format!("{}/{}", p.name, f.rule);
            let i = rules.get_or_add(&id, || {
                let help = format!(
                    "Rule `{}` of the opsdeploy policy `{}` (module sha256 {}). {} Each result says \
                     what to change; fix the plan and run `opsdeploy plan` again.",
                    f.rule,
                    p.name,
                    short(&p.sha256),
                    enforcement_sentence(p)
                );
                let mut r = rule(
                    &format!("{} (policy {})", f.rule, p.name),
                    help,
                    level(f.severity),
                    &["opsdeploy", "policy"],
                );
                r["name"] = p.name.clone().into();
                r
            });
            results.push(result(
                &id,
                i,
                level(f.severity),
                f.message.clone(),
                finding_location(f, &report.scans),
                &[
                    &id,
                    f.address.as_deref().unwrap_or(""),
                    f.path.as_deref().unwrap_or(""),
                ],
            ));
        }
    }
    for t in report.tests.iter().filter(|t| !t.passed) {
        let id = format!("{}/fixture", t.policy);
        let i = rules.get_or_add(&id, || {
            rule(
                &format!("fixture of policy {} fails", t.policy),
                format!(
                    "A fixture of policy `{}` did not produce the violations it expects. Run \
                     `opsdeploy policy test` to see the difference, then fix the policy or the fixture.",
                    t.policy
                ),
                "error",
                &["opsdeploy", "policy-test"],
            )
        });
        results.push(result(
            &id,
            i,
            "error",
            format!("{}: {}", t.case, t.failure.as_deref().unwrap_or("failed")),
            location(&t.file, None, None),
            &[&id, &t.case],
        ));
    }
    let mut run = json!({
        "tool": {"driver": {
            "name": "opsdeploy",
            "version": report.tool.version,
            "informationUri": "https://github.com/opsdeploy/opsdeploy",
            "rules": rules.rules,
        }},
        "results": results,
        "columnKind": "unicodeCodePoints",
    });
    if let Some(b) = &report.bundle {
        run["automationDetails"] = json!({"id": format!("opsdeploy/{}/", b.environment)});
        run["properties"] = json!({
            "bundle": b.digest,
            "project": b.project,
            "environment": b.environment,
            "verdict": report.verdict.as_str(),
            // What an approver signs: every change, and how approvals are judged.
            "changes": b.changes,
            "approvals": b.trust,
        });
    }
    run
}

/// A policy finding's place: its file and line; for a scanned image, where
/// the image is (see [`image_place`]); else the project configuration (which
/// chose the policy).
pub(super) fn finding_location(f: &Finding, scans: &[ScanReport]) -> Value {
    let logical = f.address.as_deref().map(|a| (a, "resource"));
    let image = scans
        .iter()
        .find(|s| s.kind == ScanKind::Image && f.address.as_deref() == Some(&s.target));
    match (&f.path, image) {
        (Some(p), _) => location(p, f.line, logical),
        (None, Some(s)) => {
            let (uri, line) = image_place(s);
            location(uri, line, logical)
        }
        (None, None) => location(CONFIG_FILE, None, logical),
    }
}

/// An image is named in the configuration, not in a file of its own: its
/// `opsdeploy.hcl` line when known, else the image itself, as trivy's own
/// SARIF places image findings.
fn image_place(s: &ScanReport) -> (&str, Option<u32>) {
    match s.configured_at {
        Some(line) => (CONFIG_FILE, Some(line)),
        None => (&s.target, None),
    }
}

fn trivy_run(report: &Report) -> Value {
    let mut rules = Rules::default();
    let mut results = Vec::new();
    for s in &report.scans {
        scan_results(s, &mut rules, &mut results);
    }
    json!({
        "tool": {"driver": {
            "name": "trivy",
            "informationUri": "https://github.com/aquasecurity/trivy",
            "rules": rules.rules,
        }},
        "results": results,
        "columnKind": "unicodeCodePoints",
    })
}

fn scan_results(s: &ScanReport, rules: &mut Rules, results: &mut Vec<Value>) {
    for v in &s.vulnerabilities {
        let i = rules.get_or_add(&v.id, || {
            let fix = match &v.fixed {
                Some(f) => format!("Upgrade {} to {f} or later.", v.package),
                None => "No fixed version is published yet; accept it in the scan allowlist with a reason, or replace the package.".into(),
            };
            let mut help = format!(
                "{} ({}) in package {}. {fix}",
                v.title.as_deref().unwrap_or(&v.id),
                v.severity,
                v.package
            );
            if let Some(url) = &v.url {
                help.push_str(&format!(" More: {url}"));
            }
            let mut r = rule(
                v.title.as_deref().unwrap_or(&v.id),
                help,
                trivy_level(v.severity),
                &["security", "vulnerability"],
            );
            r["properties"]["security-severity"] = security_severity(v.severity).into();
            if let Some(url) = &v.url {
                r["helpUri"] = url.clone().into();
            }
            r
        });
        let logical = format!("{}/{}", s.target, v.package);
        let message = format!(
            "{} {} in {} (installed {}{}) of {}",
            v.severity,
            v.id,
            v.package,
            v.installed.as_deref().unwrap_or("?"),
            v.fixed
                .as_deref()
                .map(|f| format!(", fixed in {f}"))
                .unwrap_or_default(),
            s.target
        );
        let loc = match s.kind {
            ScanKind::Image => {
                let (uri, line) = image_place(s);
                location(uri, line, Some((&logical, "module")))
            }
            ScanKind::Fs => location(&s.target, None, Some((&logical, "module"))),
        };
        results.push(result(
            &v.id,
            i,
            trivy_level(v.severity),
            message,
            loc,
            &[&v.id, &s.target, &v.package],
        ));
    }
    for f in &s.secrets {
        let id = format!("secret/{}", f.rule);
        let title = f.title.clone().unwrap_or_else(|| f.rule.clone());
        let i = rules.get_or_add(&id, || {
            let mut r = rule(
                &title,
                format!(
                    "A secret ({}) is committed to a scanned file. Remove it, rotate it, and refer \
                     to it from a vault, a CI secret or a Kubernetes Secret instead.",
                    f.category.as_deref().unwrap_or(&f.rule)
                ),
                trivy_level(f.severity),
                &["security", "secret"],
            );
            r["properties"]["security-severity"] = security_severity(f.severity).into();
            r
        });
        results.push(result(
            &id,
            i,
            trivy_level(f.severity),
            format!("{title} (value not shown)"),
            location(&f.path, f.line, None),
            &[&id, &f.path],
        ));
    }
    for m in &s.misconfigurations {
        let i = rules.get_or_add(&m.id, || {
            let mut help = m.title.clone().unwrap_or_else(|| m.id.clone());
            if let Some(r) = &m.resolution {
                help.push_str(&format!(". Resolution: {r}"));
            }
            let mut r = rule(
                m.title.as_deref().unwrap_or(&m.id),
                help,
                trivy_level(m.severity),
                &["security", "misconfiguration"],
            );
            r["properties"]["security-severity"] = security_severity(m.severity).into();
            if let Some(url) = &m.url {
                r["helpUri"] = url.clone().into();
            }
            r
        });
        let logical = m.resource.as_deref().map(|r| (r, "resource"));
        results.push(result(
            &m.id,
            i,
            trivy_level(m.severity),
            m.message
                .clone()
                .or_else(|| m.title.clone())
                .unwrap_or_else(|| m.id.clone()),
            location(&m.path, m.line, logical),
            &[&m.id, &m.path, m.resource.as_deref().unwrap_or("")],
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_map_to_sarif_levels() {
        assert_eq!(policy_level(Severity::Deny), "error");
        assert_eq!(policy_level(Severity::Warn), "warning");
        assert_eq!(policy_level(Severity::Info), "note");
        assert_eq!(trivy_level(TrivySeverity::Critical), "error");
        assert_eq!(trivy_level(TrivySeverity::High), "error");
        assert_eq!(trivy_level(TrivySeverity::Medium), "warning");
        assert_eq!(trivy_level(TrivySeverity::Low), "note");
        assert_eq!(trivy_level(TrivySeverity::Unknown), "note");
    }

    #[test]
    fn paths_become_uri_references() {
        assert_eq!(uri("./infra/main file.tf"), "infra/main%20file.tf");
        assert_eq!(uri("a#b?.tf"), "a%23b%3F.tf");
    }
}
