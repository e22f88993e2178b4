//! JUnit XML as CI dashboards read it: a test suite per policy with a test
//! case per resource it reported on (failing when the policy denies it), a
//! suite per scanned target with a case per vulnerable package, and a suite
//! per policy of fixture cases for `policy test`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use policy_sdk::Severity;

use super::model::{Finding, PolicyResult, PolicyStatus, Report, ScanReport, location};
use crate::store::short;

/// A test case before it is written.
struct Case {
    classname: String,
    name: String,
    /// (message, type, body)
    failure: Option<(String, String, String)>,
    /// Findings that do not fail the case, shown in `<system-out>`.
    out: String,
}

struct Suite {
    name: String,
    cases: Vec<Case>,
}

pub fn write(report: &Report) -> String {
    let mut suites: Vec<Suite> = report.policies.iter().map(policy_suite).collect();
    suites.extend(report.scans.iter().map(scan_suite));
    let mut fixtures: BTreeMap<&str, Vec<Case>> = BTreeMap::new();
    for t in &report.tests {
        fixtures.entry(&t.policy).or_default().push(Case {
            classname: format!("fixtures.{}", t.policy),
            name: t.case.clone(),
            failure: t.failure.as_ref().map(|f| {
                (
                    first_line(f),
                    "fixture".to_string(),
                    format!("{}\n{f}", t.file),
                )
            }),
            out: String::new(),
        });
    }
    suites.extend(fixtures.into_iter().map(|(policy, cases)| Suite {
        name: format!("fixtures {policy}"),
        cases,
    }));

    let tests: usize = suites.iter().map(|s| s.cases.len()).sum();
    let failed: usize = suites.iter().map(failures).sum();
    let name = match &report.bundle {
        Some(b) => format!("opsdeploy plan {} for {}", short(&b.digest), b.environment),
        None => "opsdeploy".to_string(),
    };
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"{}\" tests=\"{tests}\" failures=\"{failed}\" errors=\"0\">",
        escape(&name)
    );
    for (i, s) in suites.iter().enumerate() {
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"0\">",
            escape(&s.name),
            s.cases.len(),
            failures(s)
        );
        // The plan's changes and how approvals are judged, once, as properties.
        if let (0, Some(b)) = (i, &report.bundle) {
            out.push_str("    <properties>\n");
            for t in &b.trust {
                let _ = writeln!(
                    out,
                    "      <property name=\"approvals\" value=\"{}\"/>",
                    escape(t)
                );
            }
            for r in b.changes.resources() {
                let _ = writeln!(
                    out,
                    "      <property name=\"change {}\" value=\"{}\"/>",
                    escape(&r.address),
                    escape(&super::plan::change_text(r))
                );
            }
            out.push_str("    </properties>\n");
        }
        for c in &s.cases {
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\"",
                escape(&c.classname),
                escape(&c.name)
            );
            if c.failure.is_none() && c.out.is_empty() {
                out.push_str("/>\n");
                continue;
            }
            out.push_str(">\n");
            if let Some((message, kind, body)) = &c.failure {
                let _ = writeln!(
                    out,
                    "      <failure message=\"{}\" type=\"{}\">{}</failure>",
                    escape(message),
                    escape(kind),
                    escape(body)
                );
            }
            if !c.out.is_empty() {
                let _ = writeln!(out, "      <system-out>{}</system-out>", escape(&c.out));
            }
            out.push_str("    </testcase>\n");
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn failures(s: &Suite) -> usize {
    s.cases.iter().filter(|c| c.failure.is_some()).count()
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}

/// The resource a finding concerns, as the test case name.
fn resource(f: &Finding) -> String {
    f.address
        .clone()
        .or_else(|| f.path.clone())
        .unwrap_or_else(|| "(plan)".to_string())
}

fn policy_suite(p: &PolicyResult) -> Suite {
    let classname = format!("policy.{}", p.name);
    // A denial fails the resource's case only where it counts: an advisory
    // policy's or an overridden policy's denials are reported, not failed.
    let fails = matches!(p.status, PolicyStatus::Deny | PolicyStatus::Failed);
    let mut by_resource: BTreeMap<String, Vec<&Finding>> = BTreeMap::new();
    for f in &p.findings {
        by_resource.entry(resource(f)).or_default().push(f);
    }
    let mut cases: Vec<Case> = by_resource
        .into_iter()
        .map(|(name, findings)| {
            let line = |f: &Finding| {
                format!(
                    "{} {}: {}{}",
                    f.severity,
                    f.rule,
                    f.message,
                    location(f).map(|l| format!(" --> {l}")).unwrap_or_default()
                )
            };
            let (denies, others): (Vec<&&Finding>, Vec<&&Finding>) = findings
                .iter()
                .partition(|f| fails && f.severity == Severity::Deny);
            let failure = (!denies.is_empty()).then(|| {
                (
                    denies[0].message.clone(),
                    denies[0].rule.clone(),
                    denies
                        .iter()
                        .map(|f| line(f))
                        .collect::<Vec<_>>()
                        .join("\n"),
                )
            });
            let mut out: Vec<String> = others.iter().map(|f| line(f)).collect();
            if p.status == PolicyStatus::Overridden
                && findings.iter().any(|f| f.severity == Severity::Deny)
            {
                out.push("denied, and overridden by an approver for this plan".into());
            }
            if p.status == PolicyStatus::Shadow {
                out.push("shadow: recorded, never blocks".into());
            }
            Case {
                classname: classname.clone(),
                name,
                failure,
                out: out.join("\n"),
            }
        })
        .collect();
    if cases.is_empty() {
        cases.push(Case {
            classname,
            name: "all resources".into(),
            failure: None,
            out: String::new(),
        });
    }
    Suite {
        name: format!(
            "policy {}{}",
            p.name,
            p.enforcement
                .map(|e| format!(" ({})", e.as_str()))
                .unwrap_or_default()
        ),
        cases,
    }
}

fn scan_suite(s: &ScanReport) -> Suite {
    let classname = format!("trivy.{}", s.target);
    let fails = |sev| s.fail_on.is_some_and(|t| sev >= t);
    let mut by_package: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut failing: BTreeMap<String, bool> = BTreeMap::new();
    for v in &s.vulnerabilities {
        let name = format!("{} {}", v.package, v.installed.as_deref().unwrap_or(""))
            .trim()
            .to_string();
        by_package.entry(name.clone()).or_default().push(format!(
            "{} {}{}{}",
            v.severity,
            v.id,
            v.title
                .as_deref()
                .map(|t| format!(": {t}"))
                .unwrap_or_default(),
            v.fixed
                .as_deref()
                .map(|f| format!(" (fixed in {f})"))
                .unwrap_or_default()
        ));
        *failing.entry(name).or_default() |= fails(v.severity);
    }
    for f in &s.secrets {
        let name = format!(
            "{}{}",
            f.path,
            f.line.map(|l| format!(":{l}")).unwrap_or_default()
        );
        by_package.entry(name.clone()).or_default().push(format!(
            "{} secret {}: {} (value not shown)",
            f.severity,
            f.rule,
            f.title.as_deref().unwrap_or("")
        ));
        // A committed secret fails whatever the threshold.
        failing.insert(name, true);
    }
    for m in &s.misconfigurations {
        let name = format!(
            "{}{}",
            m.path,
            m.line.map(|l| format!(":{l}")).unwrap_or_default()
        );
        by_package.entry(name.clone()).or_default().push(format!(
            "{} {}: {}",
            m.severity,
            m.id,
            m.message.as_deref().or(m.title.as_deref()).unwrap_or("")
        ));
        *failing.entry(name).or_default() |= fails(m.severity);
    }
    let mut cases: Vec<Case> = by_package
        .into_iter()
        .map(|(name, lines)| {
            let body = lines.join("\n");
            let failed = failing.get(&name).copied().unwrap_or(false);
            Case {
                classname: classname.clone(),
                failure: failed.then(|| (first_line(&body), "trivy".into(), body.clone())),
                out: if failed { String::new() } else { body },
                name,
            }
        })
        .collect();
    if cases.is_empty() {
        cases.push(Case {
            classname,
            name: "no findings".into(),
            failure: None,
            out: String::new(),
        });
    }
    Suite {
        name: format!("trivy {}", s.target),
        cases,
    }
}

/// Text for XML attributes and content: markup characters escaped, and the
/// characters XML 1.0 cannot carry at all (control characters) replaced.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            // XML cannot carry most of them, and a terminal obeys them.
            c if crate::escape::is_control(c) => out.push_str(&crate::escape::visible(c)),
            '\u{fffe}' | '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_handles_markup_and_characters_xml_cannot_carry() {
        assert_eq!(
            escape("a<b>&\"c\" 'd'\u{1}\n\u{ffff}"),
            "a&lt;b&gt;&amp;&quot;c&quot; &apos;d&apos;\\x01\n\u{fffd}"
        );
    }
}
