//! Rolling policies out, for people: the plan's note on policies changed
//! since the last deploy, and `status --policies`.

use std::fmt::Write as _;

use std::collections::BTreeMap;

use serde::Serialize;

use super::table::{BOLD, Cell, Table, YELLOW};
use super::thousands;
use crate::config::Enforcement;
use crate::engine::FailureKind;
use crate::store::short;

/// A policy whose module is not the one in force at the last deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyChange {
    pub policy: String,
    /// The module's sha256 at the environment's last deployment; `None`
    /// when the policy was not evaluated for it.
    pub deployed_sha256: Option<String>,
    pub sha256: String,
    /// The deployed bundle.
    pub deployed_digest: String,
    /// The command that replays the policy as configured over the
    /// environment's history.
    pub replay: String,
}

/// `status --policies`: each policy over the last plans.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyHealth {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Plans looked at (at most the N asked for).
    pub plans: usize,
    pub policies: Vec<PolicyStats>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyStats {
    pub policy: String,
    /// At its latest evaluation.
    pub enforcement: Enforcement,
    pub sha256: String,
    /// Distinct modules evaluated over these plans.
    pub modules: usize,
    pub evaluations: usize,
    /// Denied (or could not run): it blocks where it is enforced.
    pub would_have_blocked: usize,
    /// Actually blocked the plan.
    pub blocked: usize,
    /// Could not run, by failure kind (`trap`, `out-of-fuel`, `timeout`, …).
    pub failures: BTreeMap<FailureKind, usize>,
    /// Over the evaluations that recorded their cost.
    pub fuel: Option<Spread<u64>>,
    pub time_ms: Option<Spread<f64>>,
}

impl PolicyStats {
    pub fn failed(&self) -> usize {
        self.failures.values().sum()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread<T> {
    pub median: T,
    pub max: T,
}

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
                    .map(|(kind, n)| format!("{} {n}", kind.rule()))
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
