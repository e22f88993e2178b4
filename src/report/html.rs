//! One self-contained HTML file for security review: inline CSS and SVG, no
//! script, nothing fetched. Scan findings by image and severity with a bar
//! chart, policy results, secret findings with their values redacted, the
//! bundle digest and its approvals.

use std::fmt::Write as _;

use policy_sdk::scan::{SeverityCounts, TrivySeverity};

// The one markup escaper (XML's, whose entities HTML5 shares).
use super::junit::escape as esc;
use super::model::{PolicyStatus, Report, ScanReport, location};
use crate::store::short;

pub(super) const CSS: &str = r#"
:root { --fg:#1f2328; --muted:#59636e; --line:#d1d9e0; --bg:#ffffff; --panel:#f6f8fa;
  --critical:#8b1a1a; --high:#d1242f; --medium:#bf8700; --low:#0969da; --unknown:#818b98;
  --pass:#1a7f37; --warn:#9a6700; --deny:#d1242f; }
* { box-sizing: border-box; }
body { font: 14px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: var(--fg);
  background: var(--bg); margin: 0; padding: 24px 32px; max-width: 1200px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px;
  padding-bottom: 4px; border-bottom: 1px solid var(--line); } h3 { font-size: 15px; margin: 16px 0 6px; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 12px; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--panel); font-weight: 600; } td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600;
  color: #fff; white-space: nowrap; }
.badge.pass { background: var(--pass); } .badge.warn, .badge.overridden { background: var(--warn); }
.badge.blocked, .badge.deny, .badge.failed { background: var(--deny); }
.badge.shadow { background: var(--unknown); }
.sev { display: inline-block; min-width: 72px; padding: 0 6px; border-radius: 4px; font-size: 11px;
  font-weight: 700; color: #fff; text-align: center; }
.sev.CRITICAL { background: var(--critical); } .sev.HIGH { background: var(--high); }
.sev.MEDIUM { background: var(--medium); } .sev.LOW { background: var(--low); } .sev.UNKNOWN { background: var(--unknown); }
.sev.deny { background: var(--deny); } .sev.warn { background: var(--warn); } .sev.info { background: var(--unknown); }
dl.meta { display: grid; grid-template-columns: 160px 1fr; gap: 2px 12px; margin: 12px 0; }
dl.meta dt { color: var(--muted); } dl.meta dd { margin: 0; word-break: break-all; }
.muted { color: var(--muted); } .redacted { color: var(--muted); font-style: italic; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 12px 16px; }
.panel.chart { display: inline-block; }
footer { margin-top: 32px; color: var(--muted); font-size: 12px; }
"#;

fn sev_color(s: TrivySeverity) -> &'static str {
    match s {
        TrivySeverity::Critical => "#8b1a1a",
        TrivySeverity::High => "#d1242f",
        TrivySeverity::Medium => "#bf8700",
        TrivySeverity::Low => "#0969da",
        TrivySeverity::Unknown => "#818b98",
    }
}

fn total_counts(scans: &[ScanReport]) -> SeverityCounts {
    scans.iter().fold(SeverityCounts::default(), |mut t, s| {
        t.critical += s.counts.critical;
        t.high += s.counts.high;
        t.medium += s.counts.medium;
        t.low += s.counts.low;
        t.unknown += s.counts.unknown;
        t
    })
}

/// Vertical bars of vulnerability counts by severity, labelled with the
/// severity and the count (the colour is never the only cue).
fn severity_chart(counts: &SeverityCounts) -> String {
    let (w, h, top, bottom) = (420.0, 220.0, 24.0, 40.0);
    let max = TrivySeverity::ALL
        .into_iter()
        .map(|s| counts.get(s))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let slot = w / 5.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
         role=\"img\" aria-label=\"vulnerabilities by severity\">\
         <line x1=\"0\" y1=\"{y}\" x2=\"{w}\" y2=\"{y}\" stroke=\"#d1d9e0\"/>",
        y = h - bottom
    );
    for (i, sev) in TrivySeverity::ALL.into_iter().enumerate() {
        let n = counts.get(sev);
        let bar_h = (h - top - bottom) * n as f64 / max;
        let x = i as f64 * slot + slot * 0.2;
        let y = h - bottom - bar_h;
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bw:.1}\" height=\"{bar_h:.1}\" rx=\"3\" fill=\"{c}\"/>\
             <text x=\"{cx:.1}\" y=\"{ty:.1}\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"600\" fill=\"#1f2328\">{n}</text>\
             <text x=\"{cx:.1}\" y=\"{ly:.1}\" text-anchor=\"middle\" font-size=\"11\" fill=\"#59636e\">{label}</text>",
            bw = slot * 0.6,
            c = sev_color(sev),
            cx = x + slot * 0.3,
            ty = y - 6.0,
            ly = h - bottom + 18.0,
            label = sev.as_str()
        );
    }
    svg.push_str("</svg>");
    svg
}

/// A thin stacked bar of one target's counts, for its table row.
fn stacked_bar(counts: &SeverityCounts) -> String {
    let total = counts.total();
    let width = 160.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"12\" role=\"img\" \
         aria-label=\"{total} vulnerabilities\"><rect width=\"{width}\" height=\"12\" rx=\"2\" fill=\"#eef1f4\"/>"
    );
    if total > 0 {
        let mut x = 0.0;
        for sev in TrivySeverity::ALL {
            let w = width * counts.get(sev) as f64 / total as f64;
            if w > 0.0 {
                let _ = write!(
                    svg,
                    "<rect x=\"{x:.1}\" width=\"{w:.1}\" height=\"12\" fill=\"{}\"/>",
                    sev_color(sev)
                );
                x += w;
            }
        }
    }
    svg.push_str("</svg>");
    svg
}

pub fn write(report: &Report) -> String {
    let mut h = String::new();
    let title = match &report.bundle {
        Some(b) => format!("opsdeploy plan {} for {}", short(&b.digest), b.environment),
        None => "opsdeploy report".to_string(),
    };
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        esc(&title)
    );
    let _ = writeln!(
        h,
        "<header><h1>{} <span class=\"badge {}\">{}</span></h1></header>",
        esc(&title),
        report.verdict.as_str(),
        report.verdict.as_str()
    );
    if let Some(b) = &report.bundle {
        h.push_str("<dl class=\"meta\">");
        let mut row = |k: &str, v: &str| {
            let _ = write!(h, "<dt>{}</dt><dd>{v}</dd>", esc(k));
        };
        row("project", &esc(&b.project));
        row("environment", &esc(&b.environment));
        row("bundle digest", &format!("<code>{}</code>", esc(&b.digest)));
        row("planned by", &esc(&b.planned_by));
        row("planned at", &esc(&b.created_at));
        if let Some(g) = &b.git_revision {
            row("git revision", &format!("<code>{}</code>", esc(g)));
        }
        if let Some(p) = &b.promoted_from {
            row("promoted from", &esc(p));
        }
        if let Some(tf) = &b.changes.terraform {
            row("terraform", &tf.to_string());
        }
        h.push_str("</dl>\n");
        let resources = b.changes.resources();
        if !resources.is_empty() {
            h.push_str(
                "<h2>Resource changes</h2>\n<table><tr><th>resource</th><th>change</th></tr>",
            );
            for r in resources {
                let _ = write!(
                    h,
                    "<tr><td class=\"mono\">{}</td><td>{}</td></tr>",
                    esc(&r.address),
                    esc(&super::plan::change_text(r))
                );
            }
            h.push_str("</table>\n");
        }
        h.push_str("<h2>Approvals</h2>\n");
        for t in &b.trust {
            let _ = writeln!(h, "<p><strong>{}</strong></p>", esc(t));
        }
        if b.approvals.is_empty() {
            let _ = writeln!(
                h,
                "<p class=\"muted\">None yet: <code>opsdeploy approve {} --plan {}</code></p>",
                esc(&b.environment),
                esc(short(&b.digest))
            );
        } else {
            h.push_str("<table><tr><th>approver</th><th>at</th><th>comment</th></tr>");
            for a in &b.approvals {
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td class=\"mono\">{}</td><td>{}</td></tr>",
                    esc(&a.approver),
                    esc(&a.at),
                    esc(a.comment.as_deref().unwrap_or(""))
                );
            }
            h.push_str("</table>\n");
        }
        if !b.overrides.is_empty() {
            h.push_str("<h3>Overrides</h3><table><tr><th>policy</th><th>by</th><th>reason</th><th>at</th></tr>");
            for o in &b.overrides {
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td></tr>",
                    esc(&o.policy),
                    esc(&o.approver),
                    esc(&o.reason),
                    esc(&o.at)
                );
            }
            h.push_str("</table>\n");
        }
    }

    if !report.scans.is_empty() {
        scans_section(&mut h, &report.scans);
    }
    if !report.policies.is_empty() {
        policies_section(&mut h, report);
    }
    if !report.tests.is_empty() {
        h.push_str("<h2>Policy fixtures</h2>\n<table><tr><th>policy</th><th>case</th><th>result</th><th>why</th></tr>");
        for t in &report.tests {
            let (class, word) = if t.passed {
                ("pass", "ok")
            } else {
                ("failed", "failed")
            };
            let _ = write!(
                h,
                "<tr><td>{}</td><td><code>{}</code></td><td><span class=\"badge {class}\">{word}</span></td><td>{}</td></tr>",
                esc(&t.policy),
                esc(&t.file),
                esc(t.failure.as_deref().unwrap_or(""))
            );
        }
        h.push_str("</table>\n");
    }
    let _ = writeln!(
        h,
        "<footer>Generated by {} {} · report schema {} · self-contained: no scripts, nothing loaded from the network · \
         secret values are never included</footer>\n</body>\n</html>",
        esc(&report.tool.name),
        esc(&report.tool.version),
        report.schema
    );
    h
}

fn scans_section(h: &mut String, scans: &[ScanReport]) {
    let totals = total_counts(scans);
    h.push_str("<h2>Scan findings by image and severity</h2>\n<div class=\"panel chart\">");
    let _ = write!(
        h,
        "<div class=\"muted\">Vulnerabilities by severity, {} scanned target{}</div>",
        scans.len(),
        if scans.len() == 1 { "" } else { "s" }
    );
    h.push_str(&severity_chart(&totals));
    h.push_str("</div>\n<table><tr><th>scanned</th>");
    for sev in TrivySeverity::ALL {
        let _ = write!(h, "<th class=\"n\">{}</th>", sev.as_str().to_lowercase());
    }
    h.push_str("<th class=\"n\">secrets</th><th class=\"n\">misconfig</th><th></th></tr>");
    for s in scans {
        let _ = write!(
            h,
            "<tr><td><code>{}</code> <span class=\"muted\">{}</span></td>",
            esc(&s.target),
            match s.kind {
                policy_sdk::scan::ScanKind::Image => "image",
                policy_sdk::scan::ScanKind::Fs => "files",
            }
        );
        for sev in TrivySeverity::ALL {
            let _ = write!(h, "<td class=\"n\">{}</td>", s.counts.get(sev));
        }
        let _ = write!(
            h,
            "<td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            s.secrets.len(),
            s.misconfigurations.len(),
            stacked_bar(&s.counts)
        );
    }
    h.push_str("</table>\n");

    for s in scans {
        if s.vulnerabilities.is_empty() && s.secrets.is_empty() && s.misconfigurations.is_empty() {
            continue;
        }
        let _ = writeln!(
            h,
            "<h3><code>{}</code>{}</h3>",
            esc(&s.target),
            s.fail_on
                .map(|f| format!(" <span class=\"muted\">(fails on {f} and above)</span>"))
                .unwrap_or_default()
        );
        if !s.vulnerabilities.is_empty() {
            let mut vulns: Vec<_> = s.vulnerabilities.iter().collect();
            vulns.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.id.cmp(&b.id)));
            h.push_str("<table><tr><th>severity</th><th>vulnerability</th><th>package</th><th>installed</th><th>fixed in</th><th>title</th></tr>");
            for v in vulns {
                let id = match &v.url {
                    // Shown as text, not a link: the report works offline and
                    // reviewers copy it into their own tools.
                    Some(url) => format!("<code title=\"{}\">{}</code>", esc(url), esc(&v.id)),
                    None => format!("<code>{}</code>", esc(&v.id)),
                };
                let _ = write!(
                    h,
                    "<tr><td><span class=\"sev {s}\">{s}</span></td><td>{id}</td><td>{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td>{}</td></tr>",
                    esc(&v.package),
                    esc(v.installed.as_deref().unwrap_or("")),
                    esc(v.fixed.as_deref().unwrap_or("—")),
                    esc(v.title.as_deref().unwrap_or("")),
                    s = v.severity.as_str()
                );
            }
            h.push_str("</table>\n");
        }
        if !s.secrets.is_empty() {
            h.push_str(
                "<table><tr><th>severity</th><th>secret</th><th>where</th><th>value</th></tr>",
            );
            for f in &s.secrets {
                let _ = write!(
                    h,
                    "<tr><td><span class=\"sev {s}\">{s}</span></td><td>{} <span class=\"muted\">{}</span></td><td><code>{}{}</code></td><td class=\"redacted\">redacted</td></tr>",
                    esc(f.title.as_deref().unwrap_or(&f.rule)),
                    esc(&f.rule),
                    esc(&f.path),
                    f.line.map(|l| format!(":{l}")).unwrap_or_default(),
                    s = f.severity.as_str()
                );
            }
            h.push_str("</table>\n");
        }
        if !s.misconfigurations.is_empty() {
            h.push_str("<table><tr><th>severity</th><th>check</th><th>where</th><th>message</th><th>resolution</th></tr>");
            for m in &s.misconfigurations {
                let _ = write!(
                    h,
                    "<tr><td><span class=\"sev {s}\">{s}</span></td><td><code>{}</code> {}</td><td><code>{}{}</code></td><td>{}</td><td>{}</td></tr>",
                    esc(&m.id),
                    esc(m.title.as_deref().unwrap_or("")),
                    esc(&m.path),
                    m.line.map(|l| format!(":{l}")).unwrap_or_default(),
                    esc(m.message.as_deref().unwrap_or("")),
                    esc(m.resolution.as_deref().unwrap_or("")),
                    s = m.severity.as_str()
                );
            }
            h.push_str("</table>\n");
        }
    }
}

fn policies_section(h: &mut String, report: &Report) {
    h.push_str("<h2>Policy results</h2>\n<table><tr><th>policy</th><th>enforcement</th><th>result</th><th class=\"n\">findings</th><th>module sha256</th></tr>");
    for p in &report.policies {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td><span class=\"badge {st}\">{st}</span>{}</td><td class=\"n\">{}</td><td class=\"mono\">{}…</td></tr>",
            esc(&p.name),
            p.enforcement.map(|e| e.as_str()).unwrap_or("—"),
            if p.blocks {
                " <strong>blocks</strong>"
            } else {
                ""
            },
            p.findings.len(),
            esc(short(&p.sha256)),
            st = p.status.as_str()
        );
    }
    h.push_str("</table>\n");
    for p in report.policies.iter().filter(|p| !p.findings.is_empty()) {
        let _ = writeln!(h, "<h3>{}</h3>", esc(&p.name));
        if p.status == PolicyStatus::Failed {
            let _ = writeln!(
                h,
                "<p>The policy could not run and counts as a denial: {}</p>",
                esc(p.failure.as_deref().unwrap_or(""))
            );
        }
        if p.status == PolicyStatus::Shadow {
            let _ = writeln!(
                h,
                "<p>Shadow: recorded, never blocking.{}</p>",
                p.failure
                    .as_deref()
                    .map(|f| format!(" The policy could not run: {}", esc(f)))
                    .unwrap_or_default()
            );
        }
        h.push_str("<table><tr><th>severity</th><th>rule</th><th>message</th><th>where</th></tr>");
        for f in &p.findings {
            let _ = write!(
                h,
                "<tr><td><span class=\"sev {s}\">{s}</span></td><td><code>{}</code></td><td>{}</td><td><code>{}</code></td></tr>",
                esc(&f.rule),
                esc(&f.message),
                esc(&location(f).unwrap_or_default()),
                s = f.severity.as_str()
            );
        }
        h.push_str("</table>\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_for_html() {
        assert_eq!(
            esc("<script>\"x\" & 'y'"),
            "&lt;script&gt;&quot;x&quot; &amp; &apos;y&apos;"
        );
    }

    #[test]
    fn the_chart_labels_every_severity_with_its_count() {
        let mut c = SeverityCounts::default();
        c.add(TrivySeverity::Critical);
        c.add(TrivySeverity::Critical);
        c.add(TrivySeverity::Low);
        let svg = severity_chart(&c);
        assert!(
            svg.contains(">CRITICAL</text>") && svg.contains(">2</text>"),
            "{svg}"
        );
        assert_eq!(svg.matches("<rect").count(), 5);
    }
}
