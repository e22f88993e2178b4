//! A policy replay (`opsdeploy policy replay`) in every output format: a
//! table for the terminal, Markdown for the pull request that introduces the
//! policy, JSON (the [`Replay`] model itself), and JUnit, SARIF and HTML.

use std::fmt::Write as _;

use super::Format;
use super::junit::escape;
use super::markdown::{Budget, cell};
use super::model::location;
use super::table::{BOLD, Cell, DIM, GREEN, RED, Table, verdict};
use crate::config::{CONFIG_FILE, Enforcement};
use crate::store::short;

mod model;
pub use model::{
    Applied, BundleReplay, Change, Mode, Replay, ReplayedPolicy, Selection, Skipped, Summary,
    Verdict,
};

/// The replay in `format`.
pub fn write(r: &Replay, format: Format) -> String {
    match format {
        Format::Human => human(r),
        Format::Json => format!("{}\n", super::json(r)),
        Format::Markdown => markdown(r),
        Format::Junit => junit(r),
        Format::Sarif => {
            let mut s = sarif(r);
            s.push('\n');
            s
        }
        Format::Html => html(r),
    }
}

/// What was replayed, in one line: the policy and module, or the configuration.
fn subject(r: &Replay) -> String {
    match (r.mode, r.policies.as_slice()) {
        (Mode::Policy, [p]) => format!(
            "policy {} ({}, sha256 {}, judged {}{})",
            p.name,
            p.origin,
            short(&p.sha256),
            p.enforcement.as_str(),
            p.settings
                .as_ref()
                .map(|s| format!(", settings {s}"))
                .unwrap_or_default()
        ),
        (_, policies) => format!(
            "{CONFIG_FILE} as it is now ({} polic{}{}{})",
            policies.len(),
            if policies.len() == 1 { "y" } else { "ies" },
            if policies.is_empty() { "" } else { ": " },
            policies
                .iter()
                .map(|p| format!("{} {}", p.name, p.enforcement.as_str()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Which bundles: environment, since, last N.
fn scope(r: &Replay) -> String {
    let s = &r.selection;
    let mut parts = vec![
        s.environment
            .as_ref()
            .map(|e| format!("environment {e}"))
            .unwrap_or_else(|| "every environment".into()),
    ];
    if let Some(since) = &s.since {
        parts.push(format!("planned since {since}"));
    }
    if let Some(n) = s.last {
        parts.push(format!("the last {n}"));
    }
    parts.join(", ")
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `12 bundles replayed: 2 would newly be blocked, 0 unblocked, 1 with other
/// findings changed; 1 skipped`.
pub fn summary_line(r: &Replay) -> String {
    let s = &r.summary;
    let mut line = format!(
        "{} replayed: {} would newly be blocked, {} unblocked, {} with other findings changed",
        plural(s.replayed, "bundle", "bundles"),
        s.newly_blocked,
        s.unblocked,
        s.findings_changed
    );
    if s.skipped > 0 {
        let _ = write!(line, "; {} skipped", s.skipped);
    }
    line
}

/// `+1 -2`, or `-` when nothing changed.
fn counts(b: &BundleReplay) -> String {
    match (b.new.len(), b.gone.len()) {
        (0, 0) => "-".into(),
        (n, 0) => format!("+{n}"),
        (0, g) => format!("-{g}"),
        (n, g) => format!("+{n} -{g}"),
    }
}

/// `deny protected-delete terraform_data.db (main.tf:3) [protected-deletes]`.
fn describe(c: &Change) -> String {
    let v = &c.violation;
    format!(
        "{} {}{} [{}]: {}",
        v.severity,
        v.rule,
        location(v).map(|l| format!(" {l}")).unwrap_or_default(),
        c.policy,
        v.message
    )
}

/// Why the verdict changed, in words.
fn why(b: &BundleReplay) -> Option<String> {
    if b.newly_blocked() {
        Some(format!(
            "would newly be blocked by {}",
            b.blocked_by_now.join(", ")
        ))
    } else if b.unblocked() {
        Some(format!(
            "would no longer be blocked (was by {})",
            b.blocked_by_then.join(", ")
        ))
    } else {
        None
    }
}

fn verdict_cell(v: Verdict) -> Cell {
    verdict(v.as_str())
}

fn human(r: &Replay) -> String {
    let mut out = format!(
        "{BOLD}replay{BOLD:#} of {}\nover {} ({})\n\n",
        subject(r),
        plural(
            r.bundles.len() + r.skipped.len(),
            "plan bundle",
            "plan bundles"
        ),
        scope(r)
    );
    if r.bundles.is_empty() {
        out.push_str("no plan bundle to replay\n");
    } else {
        let mut table = Table::new(&[
            "bundle",
            "environment",
            "planned at",
            "by",
            "applied",
            "then",
            "now",
            "changes",
        ])
        .indent(0);
        for b in &r.bundles {
            table.row([
                Cell::from(short(&b.digest)),
                Cell::from(&b.environment),
                Cell::from(&b.planned_at),
                Cell::from(&b.planned_by),
                Cell::from(b.applied.as_str()),
                verdict_cell(b.then),
                verdict_cell(b.now),
                Cell::from(counts(b)),
            ]);
            if let Some(why) = why(b) {
                let style = if b.newly_blocked() { RED } else { GREEN };
                table.detail(format!("{style}{why}{style:#}"));
            }
            for c in &b.new {
                table.detail(format!("+ {}", describe(c)));
            }
            for c in &b.gone {
                table.detail(format!("{DIM}- {}{DIM:#}", describe(c)));
            }
        }
        out.push_str(&table.render());
    }
    if !r.skipped.is_empty() {
        let _ = writeln!(out, "\n{BOLD}skipped{BOLD:#}");
        let mut table = Table::new(&["bundle", "environment", "planned at", "why"]);
        for s in &r.skipped {
            table.row([
                short(&s.digest),
                s.environment.as_deref().unwrap_or("?"),
                s.planned_at.as_deref().unwrap_or("?"),
                s.reason.as_str(),
            ]);
        }
        out.push_str(&table.render());
    }
    let _ = writeln!(out, "\n{}", summary_line(r));
    out
}

fn verdict_badge(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "✅ pass",
        Verdict::Blocked => "❌ blocked",
    }
}

/// The pull-request comment: what was replayed, the summary, the bundles
/// whose verdict or findings changed (the others are counted), the skipped.
fn markdown(r: &Replay) -> String {
    let mut b = Budget::new();
    b.line(&format!(
        "## opsdeploy policy replay — {}",
        cell(&match (r.mode, r.policies.as_slice()) {
            (Mode::Policy, [p]) => format!("`{}`", p.name),
            _ => format!("`{CONFIG_FILE}`"),
        })
    ));
    b.line("");
    b.line(&format!(
        "Replayed {} over {}.",
        cell(&subject(r)),
        cell(&scope(r))
    ));
    b.line("");
    b.line(&format!("**{}**", cell(&summary_line(r))));
    let changed: Vec<&BundleReplay> = r
        .bundles
        .iter()
        .filter(|b| b.verdict_changed() || !b.new.is_empty() || !b.gone.is_empty())
        .collect();
    if !changed.is_empty() {
        let rows = changed.iter().map(|x| {
            let mut what: Vec<String> = Vec::new();
            if let Some(why) = why(x) {
                what.push(format!("**{why}**"));
            }
            const SHOWN: usize = 5;
            for (sign, list) in [("+", &x.new), ("−", &x.gone)] {
                for c in list.iter().take(SHOWN) {
                    what.push(format!(
                        "{sign} {} `{}`{}",
                        c.violation.severity,
                        c.violation.rule,
                        location(&c.violation)
                            .map(|l| format!(" `{l}`"))
                            .unwrap_or_default()
                    ));
                }
                if list.len() > SHOWN {
                    what.push(format!("{sign} … and {} more", list.len() - SHOWN));
                }
            }
            format!(
                "| `{}` | {} | {} | {} | {} | {} | {} | {} |",
                short(&x.digest),
                cell(&x.environment),
                cell(&x.planned_at),
                cell(&x.planned_by),
                x.applied.as_str(),
                verdict_badge(x.then),
                verdict_badge(x.now),
                what.iter()
                    .map(|w| cell(w))
                    .collect::<Vec<_>>()
                    .join("<br>")
            )
        });
        b.table(
            &[
                "",
                "| bundle | environment | planned at | by | applied | then | now | what changed |",
                "|---|---|---|---|---|---|---|---|",
            ],
            rows,
            "changed bundles",
        );
    }
    let unchanged = r.bundles.len() - changed.len();
    if unchanged > 0 {
        b.line("");
        b.line(&format!(
            "{} the same verdict and findings as when planned.",
            plural(unchanged, "bundle has", "bundles have")
        ));
    }
    if !r.skipped.is_empty() {
        b.line("");
        b.line(&format!(
            "<details><summary>Skipped ({})</summary>\n",
            r.skipped.len()
        ));
        for s in &r.skipped {
            b.line(&format!(
                "- `{}` {} {}: {}",
                short(&s.digest),
                cell(s.environment.as_deref().unwrap_or("?")),
                cell(s.planned_at.as_deref().unwrap_or("?")),
                cell(&s.reason)
            ));
        }
        b.flush_omitted("skipped bundles");
        b.push("\n</details>");
    }
    b.out
}

/// One test case per bundle: a changed verdict fails it, a skipped bundle is
/// skipped with its reason.
fn junit(r: &Replay) -> String {
    let failed = r.bundles.iter().filter(|b| b.verdict_changed()).count();
    let tests = r.bundles.len() + r.skipped.len();
    let name = escape(&format!("opsdeploy policy replay of {}", subject(r)));
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"{name}\" tests=\"{tests}\" failures=\"{failed}\" errors=\"0\">\n  \
         <testsuite name=\"{name}\" tests=\"{tests}\" failures=\"{failed}\" errors=\"0\" skipped=\"{}\">",
        r.skipped.len()
    );
    for b in &r.bundles {
        let _ = write!(
            out,
            "    <testcase classname=\"{}\" name=\"{}\"",
            escape(&format!("replay.{}", b.environment)),
            escape(&format!(
                "{} planned at {} by {}",
                short(&b.digest),
                b.planned_at,
                b.planned_by
            ))
        );
        let changes: Vec<String> = b
            .new
            .iter()
            .map(|c| format!("+ {}", describe(c)))
            .chain(b.gone.iter().map(|c| format!("- {}", describe(c))))
            .collect();
        if why(b).is_none() && changes.is_empty() {
            out.push_str("/>\n");
            continue;
        }
        out.push_str(">\n");
        if let Some(why) = why(b) {
            let _ = writeln!(
                out,
                "      <failure message=\"{}\" type=\"verdict-changed\">{}</failure>",
                escape(&why),
                escape(&changes.join("\n"))
            );
        } else {
            let _ = writeln!(
                out,
                "      <system-out>{}</system-out>",
                escape(&changes.join("\n"))
            );
        }
        out.push_str("    </testcase>\n");
    }
    for s in &r.skipped {
        let _ = writeln!(
            out,
            "    <testcase classname=\"{}\" name=\"{}\">\n      <skipped message=\"{}\"/>\n    </testcase>",
            escape(&format!(
                "replay.{}",
                s.environment.as_deref().unwrap_or("unknown")
            )),
            escape(&format!(
                "{} planned at {}",
                short(&s.digest),
                s.planned_at.as_deref().unwrap_or("?")
            )),
            escape(&s.reason)
        );
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// One result per finding a bundle would newly get; the run's properties
/// carry the summary.
fn sarif(r: &Replay) -> String {
    use super::sarif::{Rules, finding_location, policy_level, result, rule};
    let mut rules = Rules::default();
    let mut results = Vec::new();
    for b in &r.bundles {
        for c in &b.new {
            let v = &c.violation;
            let id = format!("{}/{}", c.policy, v.rule);
            let shadow = r
                .policies
                .iter()
                .any(|p| p.name == c.policy && p.enforcement == Enforcement::Shadow);
            let level = if shadow {
                "note"
            } else {
                policy_level(v.severity)
            };
            let i = rules.get_or_add(&id, || {
                rule(
                    &format!("{} (policy {})", v.rule, c.policy),
                    format!(
                        "Rule `{}` of the opsdeploy policy `{}`, replayed over stored plan \
                         bundles: each result is a finding a past plan would get now and did \
                         not when it was planned.",
                        v.rule, c.policy
                    ),
                    level,
                    &["opsdeploy", "policy-replay"],
                )
            });
            results.push(result(
                &id,
                i,
                level,
                format!(
                    "plan {} ({}, planned at {}): {}",
                    short(&b.digest),
                    b.environment,
                    b.planned_at,
                    v.message
                ),
                finding_location(v, &[]),
                &[
                    &id,
                    &b.digest,
                    v.address.as_deref().unwrap_or(""),
                    v.path.as_deref().unwrap_or(""),
                ],
            ));
        }
    }
    let log = serde_json::json!({
        "$schema": super::sarif::SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "opsdeploy",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/opsdeploy/opsdeploy",
                "rules": rules.rules,
            }},
            "results": results,
            "columnKind": "unicodeCodePoints",
            "automationDetails": {"id": "opsdeploy/policy-replay/"},
            "properties": {"replay": &r.summary, "skipped": &r.skipped},
        }],
    });
    serde_json::to_string_pretty(&log).expect("SARIF serializes")
}

/// One self-contained page: the summary, every bundle, the changes, the skipped.
fn html(r: &Replay) -> String {
    use super::junit::escape as esc;
    let title = "opsdeploy policy replay";
    let mut h = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{}</style>\n</head>\n<body>\n\
         <header><h1>{title}</h1></header>\n<p>Replayed {} over {}.</p>\n<p><strong>{}</strong></p>\n",
        super::html::CSS,
        esc(&subject(r)),
        esc(&scope(r)),
        esc(&summary_line(r))
    );
    h.push_str(
        "<h2>Plan bundles</h2>\n<table><tr><th>bundle</th><th>environment</th><th>planned at</th>\
         <th>by</th><th>applied</th><th>then</th><th>now</th><th>what changed</th></tr>",
    );
    for b in &r.bundles {
        let mut what: Vec<String> = why(b)
            .map(|w| format!("<strong>{}</strong>", esc(&w)))
            .into_iter()
            .collect();
        what.extend(b.new.iter().map(|c| format!("+ {}", esc(&describe(c)))));
        what.extend(
            b.gone
                .iter()
                .map(|c| format!("<span class=\"muted\">− {}</span>", esc(&describe(c)))),
        );
        let _ = write!(
            h,
            "<tr><td class=\"mono\">{}</td><td>{}</td><td class=\"mono\">{}</td><td>{}</td><td>{}</td>\
             <td><span class=\"badge {t}\">{t}</span></td><td><span class=\"badge {n}\">{n}</span></td><td>{}</td></tr>",
            esc(short(&b.digest)),
            esc(&b.environment),
            esc(&b.planned_at),
            esc(&b.planned_by),
            b.applied.as_str(),
            what.join("<br>"),
            t = b.then.as_str(),
            n = b.now.as_str(),
        );
    }
    h.push_str("</table>\n");
    if !r.skipped.is_empty() {
        h.push_str(
            "<h2>Skipped</h2>\n<table><tr><th>bundle</th><th>environment</th><th>planned at</th><th>why</th></tr>",
        );
        for s in &r.skipped {
            let _ = write!(
                h,
                "<tr><td class=\"mono\">{}</td><td>{}</td><td class=\"mono\">{}</td><td>{}</td></tr>",
                esc(short(&s.digest)),
                esc(s.environment.as_deref().unwrap_or("?")),
                esc(s.planned_at.as_deref().unwrap_or("?")),
                esc(&s.reason)
            );
        }
        h.push_str("</table>\n");
    }
    let _ = writeln!(
        h,
        "<footer>Generated by opsdeploy {} · replay schema {} · self-contained: no scripts, nothing loaded \
         from the network · secret values are never included</footer>\n</body>\n</html>",
        env!("CARGO_PKG_VERSION"),
        super::OUTPUT_SCHEMA
    );
    h
}
