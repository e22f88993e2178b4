//! `opsdeploy status [ENV]`.

use clap::Args;
use opsdeploy::workflow::{short, status};

use super::{CliResult, Context, Exit, Format, project};

#[derive(Debug, Args)]
#[command(after_help = "Example:\n  opsdeploy status production")]
pub struct StatusArgs {
    /// Only this environment
    pub environment: Option<String>,
}

pub fn run(ctx: &Context, args: &StatusArgs) -> CliResult {
    let project = project::open()?;
    let list = status::status(&project, args.environment.as_deref())?;
    if ctx.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&list).expect("json"));
        return Ok(Exit::Ok);
    }
    for s in &list {
        match &s.deployed {
            Some(d) => println!(
                "{:<12} deployed {} at {} by {} ({})",
                s.environment,
                short(&d.digest),
                d.at,
                d.by,
                if d.healthy { "healthy" } else { "not healthy" }
            ),
            None => println!("{:<12} nothing deployed yet", s.environment),
        }
        let pad = "";
        if let Some(p) = &s.pending {
            println!(
                "{pad:<12} pending plan {} by {} at {}: {} of {} approvals{}",
                short(&p.digest),
                p.planned_by,
                p.planned_at,
                p.approvals,
                p.needed,
                if p.blocked { ", blocked by policy" } else { "" }
            );
        }
        if let Some(l) = &s.lock {
            println!("{pad:<12} locked by {} since {}", l.describe(), l.since);
        }
        if let Some(l) = &s.stale_lock {
            println!(
                "{pad:<12} stale lock left by {} since {} (the next apply takes it over)",
                l.describe(),
                l.since
            );
        }
        for i in &s.interrupted {
            println!(
                "{pad:<12} INTERRUPTED apply of {} started {} by {} never finished",
                short(&i.digest),
                i.started_at,
                i.by
            );
        }
        if let Some(f) = &s.last_failure {
            println!("{pad:<12} last apply failed: {f}");
        }
    }
    Ok(Exit::Ok)
}
