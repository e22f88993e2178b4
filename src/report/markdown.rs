//! Markdown for pull-request comments: a compact summary table, details
//! folded in `<details>`, and never more than [`LIMIT`] characters however
//! large the plan (GitHub refuses comments over 65,536): what does not fit is
//! counted ("… and N more").

use super::model::{PolicyStatus, Report, Verdict, location};
use crate::store::short;

/// The most characters a comment gets.
pub const LIMIT: usize = 65_000;

/// Room kept for the closing tags and the "… and N more" lines.
const RESERVE: usize = 1_000;

/// A string that refuses lines past its budget and counts them.
pub(super) struct Budget {
    pub(super) out: String,
    /// Characters in `out` (GitHub counts characters, not bytes).
    pub(super) chars: usize,
    limit: usize,
    pub(super) omitted: usize,
    /// A line did not fit: the rest of the section is counted, not written,
    /// so a section is a prefix and never has holes.
    full: bool,
}

impl Budget {
    /// An empty comment with [`LIMIT`] characters, less the reserve.
    pub(super) fn new() -> Budget {
        Budget {
            out: String::new(),
            chars: 0,
            limit: LIMIT - RESERVE,
            omitted: 0,
            full: false,
        }
    }

    /// Appends `line` and a newline if it fits; otherwise counts it.
    pub(super) fn line(&mut self, line: &str) -> bool {
        let n = line.chars().count() + 1;
        if self.full || self.chars + n > self.limit {
            self.full = true;
            self.omitted += 1;
            return false;
        }
        self.push(line);
        true
    }

    /// Appends `line` and a newline whatever the budget (the reserve's use).
    pub(super) fn push(&mut self, line: &str) {
        self.out.push_str(line);
        self.out.push('\n');
        self.chars += line.chars().count() + 1;
    }

    pub(super) fn fits(&self, extra: usize) -> bool {
        self.chars + extra <= self.limit
    }

    /// A table: its header if there is room for it and a row, then the rows
    /// that fit, then how many did not.
    pub(super) fn table(
        &mut self,
        header: &[&str],
        rows: impl ExactSizeIterator<Item = String>,
        what: &str,
    ) {
        let header_len: usize = header.iter().map(|h| h.chars().count() + 1).sum();
        if !self.fits(header_len + 80) {
            self.omitted += rows.len();
        } else {
            for h in header {
                self.line(h);
            }
            for row in rows {
                self.line(&row);
            }
        }
        self.flush_omitted(what);
    }

    /// Writes the "… and N more" line for what was counted since the last call.
    pub(super) fn flush_omitted(&mut self, what: &str) {
        self.full = false;
        if self.omitted > 0 {
            let n = std::mem::take(&mut self.omitted);
            // Written past the limit on purpose: RESERVE keeps room for it.
            self.push(&format!(
                "\n… and {n} more {what} (see `--format json` or `--format html`)"
            ));
        }
    }
}

/// Table cells: no pipes or newlines, markdown emphasis characters neutralised.
pub(super) fn cell(s: &str) -> String {
    crate::escape::controls(s)
        .replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn verdict_badge(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "✅ pass",
        Verdict::Warn => "⚠️ warnings",
        Verdict::Blocked => "❌ blocked",
    }
}

fn status_badge(s: PolicyStatus) -> &'static str {
    match s {
        PolicyStatus::Pass => "✅ pass",
        PolicyStatus::Warn => "⚠️ warn",
        PolicyStatus::Deny => "❌ deny",
        PolicyStatus::Overridden => "↩️ overridden",
        PolicyStatus::Failed => "❌ failed",
        PolicyStatus::Shadow => "👻 shadow",
    }
}

pub fn write(report: &Report) -> String {
    let mut b = Budget::new();
    match &report.bundle {
        Some(bundle) => {
            b.line(&format!(
                "## opsdeploy plan `{}` for **{}** — {}",
                short(&bundle.digest),
                cell(&bundle.environment),
                verdict_badge(report.verdict)
            ));
            b.line("");
            let approvals = if bundle.approvals.is_empty() {
                "none yet".to_string()
            } else {
                bundle
                    .approvals
                    .iter()
                    .map(|a| cell(&a.approver))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            b.line(&format!(
                "Project **{}**, planned by {} at {}. Approvals: {}.",
                cell(&bundle.project),
                cell(&bundle.planned_by),
                cell(&bundle.created_at),
                approvals
            ));
            if !bundle.policies_off.is_empty() {
                let off: Vec<String> = bundle
                    .policies_off
                    .iter()
                    .map(|p| format!("`{}` ({})", cell(&p.name), cell(&p.reason)))
                    .collect();
                b.line(&format!(
                    "Safety policies off for {}: {}.",
                    cell(&bundle.environment),
                    off.join(", ")
                ));
            }
            if let Some(tf) = &bundle.changes.terraform {
                b.line(&format!("Terraform: {tf}."));
            }
            for t in &bundle.trust {
                b.line("");
                b.line(&format!("**{}**", cell(t)));
            }
            let resources = bundle.changes.resources();
            if !resources.is_empty() {
                let rows = resources.iter().map(|r| {
                    format!(
                        "| `{}` | {} |",
                        cell(&r.address),
                        cell(&super::plan::change_text(r))
                    )
                });
                b.table(
                    &["", "| resource | change |", "|---|---|"],
                    rows,
                    "resource changes",
                );
            }
        }
        None => {
            b.line(&format!("## opsdeploy — {}", verdict_badge(report.verdict)));
        }
    }

    if !report.policies.is_empty() {
        let rows = report.policies.iter().map(|p| {
            format!(
                "| {} | {} | {} | {} |",
                cell(&p.name),
                p.enforcement.map(|e| e.as_str()).unwrap_or("-"),
                status_badge(p.status),
                p.findings.len()
            )
        });
        b.table(
            &[
                "",
                "| policy | enforcement | result | findings |",
                "|---|---|---|---:|",
            ],
            rows,
            "policies",
        );
    }
    if !report.scans.is_empty() {
        let rows = report.scans.iter().map(|s| {
            let c = &s.counts;
            format!(
                "| `{}` | {} | {} | {} | {} | {} | {} | {} |",
                cell(&s.target),
                c.critical,
                c.high,
                c.medium,
                c.low,
                c.unknown,
                s.secrets.len(),
                s.misconfigurations.len()
            )
        });
        b.table(
            &[
                "",
                "| scanned | critical | high | medium | low | unknown | secrets | misconfigurations |",
                "|---|---:|---:|---:|---:|---:|---:|---:|",
            ],
            rows,
            "scan targets",
        );
    }
    if !report.tests.is_empty() {
        let failed = report.tests.iter().filter(|t| !t.passed).count();
        b.line("");
        b.line(&format!(
            "Fixtures: {} passed, {failed} failed.",
            report.tests.len() - failed
        ));
    }

    // Details: one folded block per policy and per scan, while room remains.
    const CLOSE: &str = "\n</details>";
    let mut blocks_left = 0usize;
    for p in report.policies.iter().filter(|p| !p.findings.is_empty()) {
        let open = format!(
            "\n<details><summary>{} — {} finding{}</summary>\n",
            cell(&p.name),
            p.findings.len(),
            if p.findings.len() == 1 { "" } else { "s" }
        );
        if !b.fits(open.len() + CLOSE.len() + 200) {
            blocks_left += 1;
            continue;
        }
        b.line(&open);
        for f in &p.findings {
            b.line(&format!(
                "- **{}** `{}` {}{}",
                f.severity,
                cell(&f.rule),
                cell(&f.message),
                location(f)
                    .map(|l| format!(" — `{}`", cell(&l)))
                    .unwrap_or_default()
            ));
        }
        b.flush_omitted("findings");
        b.push(CLOSE);
    }
    for s in &report.scans {
        let total = s.vulnerabilities.len() + s.secrets.len() + s.misconfigurations.len();
        if total == 0 {
            continue;
        }
        let open = format!(
            "\n<details><summary>`{}` — {total} finding{}</summary>\n",
            cell(&s.target),
            if total == 1 { "" } else { "s" }
        );
        if !b.fits(open.len() + CLOSE.len() + 200) {
            blocks_left += 1;
            continue;
        }
        b.line(&open);
        let mut vulns: Vec<_> = s.vulnerabilities.iter().collect();
        vulns.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.id.cmp(&b.id)));
        for v in vulns {
            b.line(&format!(
                "- **{}** {} in `{}` {}{}",
                v.severity,
                cell(&v.id),
                cell(&v.package),
                cell(v.installed.as_deref().unwrap_or("")),
                v.fixed
                    .as_deref()
                    .map(|f| format!(" → fixed in {}", cell(f)))
                    .unwrap_or_default()
            ));
        }
        for f in &s.secrets {
            b.line(&format!(
                "- **{}** secret `{}` in `{}{}` (value redacted)",
                f.severity,
                cell(&f.rule),
                cell(&f.path),
                f.line.map(|l| format!(":{l}")).unwrap_or_default()
            ));
        }
        for m in &s.misconfigurations {
            b.line(&format!(
                "- **{}** {} {} — `{}{}`",
                m.severity,
                cell(&m.id),
                cell(m.title.as_deref().unwrap_or("")),
                cell(&m.path),
                m.line.map(|l| format!(":{l}")).unwrap_or_default()
            ));
        }
        b.flush_omitted("findings");
        b.push(CLOSE);
    }
    if blocks_left > 0 {
        b.omitted = blocks_left;
        b.flush_omitted("sections with findings");
    }
    let blocking: Vec<&str> = report
        .policies
        .iter()
        .filter(|p| p.blocks)
        .map(|p| p.name.as_str())
        .collect();
    if !blocking.is_empty() {
        let names = cell(&blocking.join(", "));
        let names = if names.chars().count() <= 200 {
            names
        } else {
            format!("{} policies", blocking.len())
        };
        b.push(&format!("\n**Blocked by:** {names}"));
    }
    debug_assert!(b.chars <= LIMIT);
    b.out
}

#[cfg(test)]
mod tests {
    use policy_sdk::Severity;
    use policy_sdk::scan::{ScanKind, SeverityCounts, TrivySeverity};

    use super::*;
    use crate::report::model::{Finding, PolicyResult, ScanReport, Tool, Vulnerability};

    fn report(policies: usize, findings: usize, scans: usize, vulns: usize) -> Report {
        let policies = (0..policies)
            .map(|p| PolicyResult {
                name: format!("policy-{p}"),
                sha256: "ab".repeat(32),
                enforcement: Some(crate::config::Enforcement::HardMandatory),
                status: PolicyStatus::Deny,
                blocks: true,
                failure: None,
                findings: (0..findings)
                    .map(|f| Finding {
                        rule: format!("rule-{f}"),
                        severity: Severity::Deny,
                        message: format!("resource {f} of policy {p} breaks a rule | with a pipe and a long explanation {}", "x".repeat(80)),
                        address: Some(format!("aws_s3_bucket.b{f}")),
                        path: None,
                        line: None,
                    })
                    .collect(),
            })
            .collect();
        let scans = (0..scans)
            .map(|s| {
                let mut counts = SeverityCounts::default();
                let vulnerabilities = (0..vulns)
                    .map(|v| {
                        counts.add(TrivySeverity::High);
                        Vulnerability {
                            id: format!("CVE-2026-{v:05}"),
                            package: format!("pkg-{v}"),
                            installed: Some("1.0.0".into()),
                            fixed: Some("1.0.1".into()),
                            severity: TrivySeverity::High,
                            title: None,
                            url: None,
                            found_in: format!("image-{s}"),
                        }
                    })
                    .collect();
                ScanReport {
                    target: format!("registry.example.com/app-{s}:1.0"),
                    kind: ScanKind::Image,
                    file: Some(format!("scans/image-{s}.json")),
                    fail_on: None,
                    configured_at: None,
                    counts,
                    vulnerabilities,
                    secrets: Vec::new(),
                    misconfigurations: Vec::new(),
                }
            })
            .collect();
        Report {
            schema: 1,
            tool: Tool {
                name: "opsdeploy".into(),
                version: "0".into(),
            },
            verdict: Verdict::Blocked,
            bundle: None,
            policies,
            scans,
            tests: Vec::new(),
        }
    }

    #[test]
    fn a_huge_report_stays_under_the_limit_and_counts_what_it_leaves_out() {
        for (policies, findings, scans, vulns) in
            [(3000, 1, 0, 0), (40, 500, 0, 0), (2, 3, 30, 3000)]
        {
            let md = write(&report(policies, findings, scans, vulns));
            let chars = md.chars().count();
            assert!(chars < LIMIT, "{chars} characters");
            assert!(
                chars > LIMIT - 3 * RESERVE,
                "the budget is used, not wasted: {chars}"
            );
            assert!(md.contains("… and "), "what is left out is counted");
            assert_eq!(
                md.matches("<details>").count(),
                md.matches("</details>").count(),
                "every folded block is closed: {}",
                &md[md.len() - 600..]
            );
        }
    }

    #[test]
    fn a_small_report_is_complete() {
        let md = write(&report(2, 3, 1, 4));
        assert!(!md.contains("… and "), "{md}");
        assert_eq!(md.matches("<details>").count(), 3);
        assert!(
            md.contains("| policy-1 | hard-mandatory | ❌ deny | 3 |"),
            "{md}"
        );
        assert!(md.contains("with a pipe"));
        assert!(
            !md.contains("rule | with a pipe"),
            "pipes are escaped: {md}"
        );
    }
}
