//! `opsdeploy status [ENV]`.

use clap::Args;
use opsdeploy::report::table::{Cell, Table, verdict};
use opsdeploy::workflow::status::EnvironmentStatus;
use opsdeploy::workflow::{rollout, short, status};

use opsdeploy::error::Outcome;

use super::{CliResult, Context, Format, project};

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  opsdeploy status production\n  opsdeploy status --policies --last 50"
)]
pub struct StatusArgs {
    /// Only this environment
    pub environment: Option<String>,
    /// Per policy over the last plans instead: evaluations, would-block count,
    /// failures, fuel and time
    #[arg(long)]
    pub policies: bool,
    /// How many of the latest plans --policies looks at
    #[arg(long, value_name = "N", default_value_t = 20, requires = "policies")]
    pub last: usize,
}

pub fn run(ctx: &Context, args: &StatusArgs) -> CliResult {
    let project = project::open()?;
    if args.policies {
        let health = rollout::health(&project, args.environment.as_deref(), args.last)?;
        match ctx.format {
            Format::Json => println!("{}", opsdeploy::report::json(&health)),
            _ => anstream::print!("{}", opsdeploy::report::rollout::policy_health(&health)),
        }
        return Ok(Outcome::Done);
    }
    let list = status::status(&project, args.environment.as_deref())?;
    match ctx.format {
        Format::Json => println!("{}", opsdeploy::report::json_list(&list)),
        _ if ctx.quiet => println!("{}", overall(&list)),
        _ => anstream::print!("{}", table(&list).render()),
    }
    Ok(Outcome::Done)
}

/// One row per environment; pending plans, locks and failures under it.
fn table(list: &[EnvironmentStatus]) -> Table {
    let mut table = Table::new(&["environment", "deployed", "health", "at", "by"]).indent(0);
    for s in list {
        match &s.deployed {
            Some(d) => table.row([
                Cell::from(&s.environment),
                Cell::from(if d.restored {
                    format!("{} (restored)", short(&d.digest))
                } else {
                    short(&d.digest).to_string()
                }),
                verdict(match d.health.as_str() {
                    "healthy" => "healthy",
                    "unverified" => "unverified",
                    "rollback incomplete" => "ROLLBACK INCOMPLETE",
                    _ => "not healthy",
                }),
                Cell::from(&d.at),
                Cell::from(&d.by),
            ]),
            None => table.row([
                Cell::from(&s.environment),
                Cell::from("nothing yet"),
                Cell::from("-"),
                Cell::from("-"),
                Cell::from("-"),
            ]),
        };
        if let Some(p) = &s.pending {
            table.detail(format!(
                "pending plan {} by {} at {}: {} of {} approvals{}",
                short(&p.digest),
                p.planned_by,
                p.planned_at,
                p.approvals,
                p.needed,
                if p.blocked { ", blocked by policy" } else { "" }
            ));
        }
        table.detail(s.approvals.clone());
        if let Some(l) = &s.lock {
            table.detail(format!("locked by {} since {}", l.describe(), l.since));
        }
        if let Some(l) = &s.stale_lock {
            table.detail(format!(
                "stale lock left by {} since {} (the next apply takes it over)",
                l.describe(),
                l.since
            ));
        }
        for i in &s.interrupted {
            table.detail(format!(
                "INTERRUPTED apply of {} started {} by {} never finished",
                short(&i.digest),
                i.started_at,
                i.by
            ));
        }
        if let Some(f) = &s.last_failure {
            table.detail(format!("last apply failed: {f}"));
        }
        if let Some(r) = &s.last_rollback {
            table.detail(format!(
                "rollback at {} ({}): {}",
                r.at,
                if r.status == "succeeded" {
                    "complete"
                } else {
                    "INCOMPLETE"
                },
                if r.undone.is_empty() {
                    "nothing undone".to_string()
                } else {
                    format!("undone: {}", r.undone.join("; "))
                }
            ));
            for k in &r.kept {
                table.detail(format!("kept: {k}"));
            }
            for n in &r.not_undone {
                table.detail(format!("NOT undone: {n}"));
            }
        }
    }
    table
}

/// The `-q` verdict: the worst state of any environment shown.
fn overall(list: &[EnvironmentStatus]) -> &'static str {
    if list.iter().any(|s| !s.interrupted.is_empty()) {
        "interrupted"
    } else if list.iter().any(|s| s.last_failure.is_some()) {
        "failed"
    } else if list.iter().any(|s| {
        s.deployed
            .as_ref()
            .is_some_and(|d| d.health == "unhealthy" || d.health == "rollback incomplete")
    }) {
        "not healthy"
    } else {
        "ok"
    }
}

#[cfg(test)]
mod tests {
    use opsdeploy::workflow::status::{DeploymentStatus, EnvironmentStatus, Interrupted};

    fn env(healthy: Option<bool>) -> EnvironmentStatus {
        EnvironmentStatus {
            environment: "staging".into(),
            deployed: healthy.map(|healthy| DeploymentStatus {
                digest: "3f9a1c2b4d5e".into(),
                at: "2026-01-01T00:00:00Z".into(),
                by: "alice@example.com".into(),
                healthy,
                health: if healthy { "healthy" } else { "unhealthy" }.into(),
                restored: false,
            }),
            pending: None,
            lock: None,
            stale_lock: None,
            interrupted: Vec::new(),
            last_failure: None,
            last_rollback: None,
            approvals: "approvals unsigned: identity not verified".into(),
        }
    }

    #[test]
    fn the_quiet_verdict_is_the_worst_state_shown() {
        assert_eq!(super::overall(&[env(None), env(Some(true))]), "ok");
        assert_eq!(super::overall(&[env(Some(false))]), "not healthy");
        let mut failed = env(Some(true));
        failed.last_failure = Some("health check".into());
        assert_eq!(super::overall(&[env(Some(false)), failed]), "failed");
        let mut cut = env(None);
        cut.interrupted.push(Interrupted {
            digest: "3f9a1c2b4d5e".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
            by: "bob@example.com".into(),
        });
        assert_eq!(super::overall(&[cut, env(Some(false))]), "interrupted");
    }
}
