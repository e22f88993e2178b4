//! image-scan: no image ships with a vulnerability at or above the
//! environment's `fail_on` (default CRITICAL) that has a fix available, and
//! no scan (image or project files) finds a misconfiguration at or above it,
//! unless an allowlist entry accepts it with a reason and an expiry date (or,
//! for a misconfiguration check the project does not follow, `ignore_checks`
//! names it); and the environments that require it (production by default)
//! deploy images pinned by digest, so what was scanned is what runs.

use std::collections::BTreeMap;

use policy_sdk::helm::split_reference;
use policy_sdk::prelude::*;
use policy_sdk::scan::{AllowlistEntry, Misconfiguration, ScanKind, TrivySeverity, Vulnerability};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Count vulnerabilities with no fixed version too (trivy's `--ignore-unfixed` off).
    unfixed: bool,
    /// Environments whose images must be pinned by digest.
    require_digest: Vec<String>,
    /// Misconfiguration checks this project does not follow (`DS002`,
    /// `AVD-KSV-0014`): never judged, in any environment.
    ignore_checks: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            unfixed: false,
            require_digest: vec!["production".into()],
            ignore_checks: Vec::new(),
        }
    }
}

/// `YYYY-MM-DD` of the evaluation, from the host's clock.
fn today<'i>(input: &'i Input) -> Option<&'i str> {
    input.environment.now.as_deref().and_then(|n| n.get(..10))
}

/// One vulnerability of one image, across the packages trivy lists it for.
struct Finding<'r> {
    severity: TrivySeverity,
    packages: Vec<&'r Vulnerability<'r>>,
}

pub fn evaluate(input: &Input) -> Vec<Violation> {
    let settings: Settings = match input.settings_or_denial("image-scan") {
        Ok(s) => s,
        Err(denial) => return vec![denial],
    };
    let mut out = Vec::new();
    let today = today(input);
    let Some(scans) = &input.scans else {
        check_pinned(input, &settings, &mut out);
        return out;
    };
    let fail_on = scans.fail_on.unwrap_or(TrivySeverity::Critical);
    let allowlist = scans.allowlist.as_ref();
    let entries: &[AllowlistEntry] = allowlist.map_or(&[], |a| &a.entries);
    let list_path = allowlist.map_or("", |a| &*a.path);
    let expired = |e: &AllowlistEntry| match (e.expired_at.as_deref(), today) {
        (Some(until), Some(today)) => until < today,
        // No clock to judge the date against: the entry cannot be trusted.
        (Some(_), None) => true,
        (None, _) => true,
    };

    for scan in scans.reports.iter().filter(|s| s.kind == ScanKind::Image) {
        let target = &*scan.target;
        let mut findings: BTreeMap<&str, Finding> = BTreeMap::new();
        for v in scan.report.results.iter().flat_map(|r| &r.vulnerabilities) {
            if v.severity < fail_on || !(v.has_fix() || settings.unfixed) {
                continue;
            }
            let f = findings.entry(&v.vulnerability_id).or_insert(Finding {
                severity: v.severity,
                packages: Vec::new(),
            });
            f.severity = f.severity.max(v.severity);
            f.packages.push(v);
        }
        for (id, f) in findings {
            let entry = entries.iter().find(|e| {
                e.id == id && (e.targets.is_empty() || e.targets.iter().any(|t| t == target))
            });
            let packages = f
                .packages
                .iter()
                .map(|v| {
                    let fixed = match v.fixed_version.as_deref() {
                        Some(fix) if !fix.is_empty() => format!(", fixed in {fix}"),
                        _ => ", no fix yet".to_string(),
                    };
                    format!(
                        "{} {}{fixed}",
                        v.pkg_name,
                        v.installed_version.as_deref().unwrap_or("?")
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            match judge(entry, &expired, list_path) {
                Judged::Accepted { until, statement } => out.push(
                    Violation::info(
                        "vulnerability-accepted",
                        format!(
                            "{target}: {id} ({}) in {packages} is accepted until {until} by {list_path}: {statement}",
                            f.severity,
                        ),
                    )
                    .at_address(target),
                ),
                Judged::Denied { why } => {
                    out.push(
                        Violation::deny(
                            "vulnerability",
                            format!(
                                "{target}: {id} ({}, at or above fail_on {fail_on}) in {packages}{why}; upgrade the image, or accept it in the allowlist with a statement and an expired_at date",
                                f.severity
                            ),
                        )
                        .at_address(target),
                    );
                }
            }
        }
    }

    for scan in &scans.reports {
        for result in &scan.report.results {
            for m in &result.misconfigurations {
                if m.severity < fail_on
                    || m.status.as_deref().is_some_and(|s| s != "FAIL")
                    || settings.ignore_checks.iter().any(|c| is_check(m, c))
                {
                    continue;
                }
                let entry = allowlist
                    .into_iter()
                    .flat_map(|a| &a.misconfigurations)
                    .find(|e| {
                        is_check(m, &e.id)
                            && (e.targets.is_empty()
                                || e.targets
                                    .iter()
                                    .any(|t| *t == result.target || *t == scan.target))
                    });
                out.push(misconfiguration(
                    m,
                    &scan.target,
                    &result.target,
                    entry,
                    &expired,
                    list_path,
                    fail_on,
                ));
            }
        }
    }

    // Expired entries stop counting; say so even where they match nothing now.
    let misconfig_entries = allowlist.map_or(&[][..], |a| &a.misconfigurations);
    for e in entries
        .iter()
        .chain(misconfig_entries)
        .filter(|e| expired(e))
    {
        let message = match (e.expired_at.as_deref(), today) {
            (Some(until), Some(_)) => {
                format!(
                    "allowlist entry {} expired on {until} and no longer counts; renew it with a new date or remove it",
                    e.id
                )
            }
            _ => format!(
                "allowlist entry {} cannot be checked for expiry (no evaluation date) and does not count",
                e.id
            ),
        };
        let mut v = Violation::warn("allowlist-expired", message).at_path(list_path);
        if let Some(line) = e.line {
            v = v.at_line(line);
        }
        out.push(v);
    }
    check_pinned(input, &settings, &mut out);
    out
}

/// How the allowlist judges one finding.
enum Judged<'e> {
    /// Accepted until a date, for a reason.
    Accepted { until: &'e str, statement: &'e str },
    /// Counted; `why` says so when its entry expired.
    Denied { why: String },
}

fn judge<'e>(
    entry: Option<&'e AllowlistEntry>,
    expired: &dyn Fn(&AllowlistEntry) -> bool,
    list_path: &str,
) -> Judged<'e> {
    match entry {
        Some(e) if !expired(e) => Judged::Accepted {
            until: e.expired_at.as_deref().unwrap_or("?"),
            statement: e.statement.as_deref().unwrap_or(""),
        },
        Some(e) => Judged::Denied {
            why: format!(
                "; its allowlist entry in {list_path} expired on {}",
                e.expired_at.as_deref().unwrap_or("?")
            ),
        },
        None => Judged::Denied { why: String::new() },
    }
}

/// Whether `check` names trivy's check `m`, by its ID or AVD ID.
fn is_check(m: &Misconfiguration, check: &str) -> bool {
    m.id.eq_ignore_ascii_case(check)
        || m.avd_id
            .as_deref()
            .is_some_and(|a| a.eq_ignore_ascii_case(check))
}

/// The verdict on one failed check: accepted while its allowlist entry
/// lasts, denied otherwise.
fn misconfiguration(
    m: &Misconfiguration,
    scan: &str,
    file: &str,
    entry: Option<&AllowlistEntry>,
    expired: &dyn Fn(&AllowlistEntry) -> bool,
    list_path: &str,
    fail_on: TrivySeverity,
) -> Violation {
    let title = m.title.as_deref().unwrap_or("");
    let what = match m.message.as_deref() {
        Some(message) if !message.is_empty() => format!("{title}: {message}"),
        _ => title.to_string(),
    };
    let where_ = if file == scan {
        file.to_string()
    } else {
        format!("{scan}: {file}")
    };
    let v = match judge(entry, &expired, list_path) {
        Judged::Accepted { until, statement } => Violation::info(
            "misconfiguration-accepted",
            format!(
                "{where_}: {} ({}) {what} is accepted until {until} by {list_path}: {statement}",
                m.id, m.severity,
            ),
        ),
        Judged::Denied { why } => Violation::deny(
            "misconfiguration",
            format!(
                "{where_}: {} ({}, at or above fail_on {fail_on}) {what}{why}; fix it{}, accept it under `misconfigurations` in the allowlist with a statement and an expired_at date, or list the check in ignore_checks if the project does not follow it",
                m.id,
                m.severity,
                m.resolution
                    .as_deref()
                    .filter(|r| !r.is_empty())
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            ),
        ),
    };
    let v = v.at_path(file);
    match m.cause_metadata.as_ref().and_then(|c| c.start_line) {
        Some(line) => v.at_line(line),
        None => v,
    }
}

/// Images deployed to an environment that requires digests must carry one.
fn check_pinned(input: &Input, settings: &Settings, out: &mut Vec<Violation>) {
    let env = &*input.environment.name;
    if !settings.require_digest.iter().any(|e| e == env) {
        return;
    }
    let mut images: BTreeMap<String, String> = BTreeMap::new();
    if let Some(scans) = &input.scans {
        for scan in scans.reports.iter().filter(|s| s.kind == ScanKind::Image) {
            images
                .entry(scan.target.to_string())
                .or_insert_with(|| "the scan list".into());
        }
    }
    for release in &input.helm {
        for manifest in &release.manifests {
            for image in manifest.container_images() {
                images.entry(image).or_insert_with(|| {
                    format!(
                        "helm release {} ({})",
                        release.release,
                        manifest.display_name()
                    )
                });
            }
        }
    }
    for (image, from) in images {
        if split_reference(&image).2.is_none() {
            out.push(
                Violation::deny(
                    "image-not-pinned",
                    format!(
                        "{image} (in {from}) is not pinned by digest; {env} deploys only images referenced as name@sha256:..., the digest trivy scanned"
                    ),
                )
                .at_address(image.as_str()),
            );
        }
    }
}

policy_sdk::export_policy! {
    name: "image-scan",
    description: "Deny images with fixable vulnerabilities and scans with misconfigurations at or above fail_on (allowlist entries need a reason and an expiry date), and unpinned images where digests are required",
    reads: [scans, helm],
    settings_schema: r#"{"type":"object","additionalProperties":false,"properties":{"unfixed":{"type":"boolean"},"require_digest":{"type":"array","items":{"type":"string"}},"ignore_checks":{"type":"array","items":{"type":"string"}}}}"#,
    evaluate: evaluate,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(env: &str, now: &str, allowlist: &str, image: &str) -> String {
        format!(
            r#"{{"schema_version":1,"environment":{{"name":"{env}","project":"shop","now":"{now}"}},
            "scans":{{"fail_on":"HIGH","allowlist":{allowlist},"reports":[{{"target":"{image}","kind":"image",
              "report":{{"SchemaVersion":2,"Results":[{{"Target":"t","Vulnerabilities":[
                {{"VulnerabilityID":"CVE-1","PkgName":"libssl","InstalledVersion":"1.0","FixedVersion":"1.1","Severity":"CRITICAL"}},
                {{"VulnerabilityID":"CVE-1","PkgName":"libcrypto","InstalledVersion":"1.0","FixedVersion":"1.1","Severity":"CRITICAL"}},
                {{"VulnerabilityID":"CVE-2","PkgName":"bash","InstalledVersion":"5.0","FixedVersion":"","Severity":"CRITICAL"}},
                {{"VulnerabilityID":"CVE-3","PkgName":"zlib","InstalledVersion":"1.2","FixedVersion":"1.3","Severity":"MEDIUM"}}]}}]}}}}]}}}}"#
        )
    }

    fn rules(json: &str) -> Vec<(String, Severity)> {
        evaluate(&Input::from_json(json).unwrap())
            .into_iter()
            .map(|v| (v.rule, v.severity))
            .collect()
    }

    #[test]
    fn one_denial_per_fixable_cve_at_or_above_fail_on() {
        let v = evaluate(
            &Input::from_json(&doc("staging", "2026-01-01T00:00:00Z", "null", "app:1")).unwrap(),
        );
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].message.contains("CVE-1 (CRITICAL, at or above fail_on HIGH) in libssl 1.0, fixed in 1.1; libcrypto 1.0, fixed in 1.1"), "{}", v[0].message);
    }

    #[test]
    fn allowlist_accepts_until_its_date_then_stops_counting() {
        let list = r#"{"path":".trivyignore.yaml","entries":[{"id":"CVE-1","statement":"not reachable","expired_at":"2026-06-30","line":2}]}"#;
        let accepted = rules(&doc("staging", "2026-06-30T10:00:00Z", list, "app:1"));
        assert_eq!(
            accepted,
            [("vulnerability-accepted".to_string(), Severity::Info)]
        );
        let expired = rules(&doc("staging", "2026-07-01T00:00:00Z", list, "app:1"));
        assert_eq!(
            expired,
            [
                ("vulnerability".to_string(), Severity::Deny),
                ("allowlist-expired".to_string(), Severity::Warn)
            ]
        );
    }

    fn misconfig_doc(allowlist: &str, settings: &str) -> String {
        format!(
            r#"{{"schema_version":1,"environment":{{"name":"production","project":"shop","now":"2026-06-01T00:00:00Z"}},"settings":{settings},
            "scans":{{"fail_on":"MEDIUM","allowlist":{allowlist},"reports":[{{"target":".","kind":"fs",
              "report":{{"SchemaVersion":2,"Results":[{{"Target":"Dockerfile","Class":"config","Misconfigurations":[
                {{"ID":"DS002","AVDID":"AVD-DS-0002","Title":"Image user should not be 'root'","Severity":"HIGH","Status":"FAIL","CauseMetadata":{{"StartLine":3}}}},
                {{"ID":"DS026","Title":"No HEALTHCHECK defined","Severity":"LOW","Status":"FAIL"}},
                {{"ID":"DS001","Title":"':latest' tag used","Severity":"MEDIUM","Status":"PASS"}}]}}]}}}}]}}}}"#
        )
    }

    #[test]
    fn misconfigurations_are_judged_by_fail_on_with_the_allowlist_and_ignore_checks() {
        let v = evaluate(&Input::from_json(&misconfig_doc("null", "null")).unwrap());
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].rule, "misconfiguration");
        assert_eq!(
            (v[0].path.as_deref(), v[0].line),
            (Some("Dockerfile"), Some(3))
        );
        assert!(
            v[0].message
                .contains("DS002 (HIGH, at or above fail_on MEDIUM)"),
            "{}",
            v[0].message
        );
        let list = r#"{"path":".trivyignore.yaml","misconfigurations":[{"id":"AVD-DS-0002","statement":"rootless by PodSecurity","expired_at":"2026-12-31","targets":["Dockerfile"],"line":3}]}"#;
        assert_eq!(
            rules(&misconfig_doc(list, "null")),
            [("misconfiguration-accepted".to_string(), Severity::Info)]
        );
        let expired = list.replace("2026-12-31", "2026-01-31");
        assert_eq!(
            rules(&misconfig_doc(&expired, "null")),
            [
                ("misconfiguration".to_string(), Severity::Deny),
                ("allowlist-expired".to_string(), Severity::Warn)
            ]
        );
        assert!(rules(&misconfig_doc("null", r#"{"ignore_checks":["ds002"]}"#)).is_empty());
    }

    #[test]
    fn production_requires_digests() {
        let tagged = rules(&doc("production", "2026-01-01T00:00:00Z", "null", "app:1"));
        assert!(tagged.contains(&("image-not-pinned".to_string(), Severity::Deny)));
        let pinned = rules(&doc(
            "production",
            "2026-01-01T00:00:00Z",
            "null",
            "app@sha256:ab",
        ));
        assert!(!pinned.iter().any(|(r, _)| r == "image-not-pinned"));
    }
}
