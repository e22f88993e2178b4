//! Rolling policies out, for people: the plan's note on policies changed
//! since the last deploy, and `status --policies`.

use std::fmt::Write as _;

use super::table::{BOLD, Cell, Table, YELLOW};
use super::thousands;
use crate::workflow::rollout::{PolicyChange, PolicyHealth, Spread};
use crate::workflow::short;

/// One line per policy whose module is not the one in force at the last
/// deploy, each with the command that replays it.
pub fn policy_changes(changes: &[PolicyChange]) -> String {
    let mut out = String::new();
    for c in changes {
        let what = match &c.deployed_sha256 {
            Some(before) => format!(
                "changed since the last deploy (module {} then, {} now)",
                short(before),
                short(&c.sha256)
            ),
            None => "is new since the last deploy".to_string(),
        };
        let _ = writeln!(
            out,
            "\n{YELLOW}policy {}{YELLOW:#} {what}: replay it with `{}`",
            c.policy, c.replay
        );
    }
    out
}

fn spread<T>(s: &Option<Spread<T>>, show: impl Fn(&T) -> String) -> String {
    match s {
        Some(s) => format!("{} / {}", show(&s.median), show(&s.max)),
        None => "-".into(),
    }
}

/// `status --policies`: one row per policy.
pub fn policy_health(h: &PolicyHealth) -> String {
    let mut out = format!(
        "{BOLD}policies{BOLD:#} over the last {} plan{}{}\n",
        h.plans,
        if h.plans == 1 { "" } else { "s" },
        h.environment
            .as_ref()
            .map(|e| format!(" of {e}"))
            .unwrap_or_default()
    );
    if h.policies.is_empty() {
        out.push_str("no policy results recorded yet\n");
        return out;
    }
    let mut table = Table::new(&[
        "policy",
        "enforcement",
        "evaluations",
        "would block",
        "failures",
        "fuel median / max",
        "ms median / max",
    ])
    .indent(0);
    for p in &h.policies {
        let failures = if p.failures.is_empty() {
            "0".to_string()
        } else {
            format!(
                "{} ({})",
                p.failed(),
                p.failures
                    .iter()
                    .map(|(kind, n)| format!("{kind} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        table.row([
            Cell::from(&p.policy),
            Cell::from(p.enforcement.as_str()),
            Cell::from(p.evaluations.to_string()),
            Cell::from(p.would_have_blocked.to_string()),
            Cell::from(failures),
            Cell::from(spread(&p.fuel, |f| thousands(*f))),
            Cell::from(spread(&p.time_ms, |t| format!("{t:.1}"))),
        ]);
        if p.modules > 1 {
            table.detail(format!(
                "{} modules over these plans; the latest is {}",
                p.modules,
                short(&p.sha256)
            ));
        }
    }
    out.push_str(&table.render());
    out
}
