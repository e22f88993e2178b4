//! `opsdeploy audit verify | log [--env ENV]`.

use clap::Subcommand;
use opsdeploy::report;
use opsdeploy::report::table::Table;

use super::{CliError, CliResult, Context, Exit, Format, project};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the whole hash chain; names the first bad entry
    #[command(after_help = "Example:\n  opsdeploy audit verify")]
    Verify,
    /// Print the audit log (human, json, or markdown as in AUDIT_LOG.md)
    #[command(
        after_help = "Examples:\n  opsdeploy audit log --env production --format json\n  opsdeploy audit log --format markdown > AUDIT_LOG.md"
    )]
    Log {
        /// Only entries of this environment
        #[arg(long, value_name = "ENV")]
        env: Option<String>,
    },
}

impl AuditCommand {
    pub fn is_log(&self) -> bool {
        matches!(self, AuditCommand::Log { .. })
    }
}

pub fn run(ctx: &Context, cmd: &AuditCommand) -> CliResult {
    let project = project::open()?;
    match cmd {
        AuditCommand::Verify => {
            let v = project
                .store
                .verify()
                .map_err(opsdeploy::workflow::WorkflowError::from)?;
            if let Some(bad) = v.first_bad {
                let seq = bad.seq.map(|s| format!(" (seq {s})")).unwrap_or_default();
                return Err(CliError::error(format!(
                    "audit log entry {}{seq} is not valid: {}",
                    bad.position, bad.reason
                ))
                .at(format!("{}:{}", project.store.describe(), bad.position))
                .hint("restore the log from a backup; entries before it are intact"));
            }
            match ctx.format {
                Format::Json => println!(
                    "{}",
                    serde_json::json!({"valid": true, "entries": v.entries, "head": v.head})
                ),
                _ if ctx.quiet => println!("ok"),
                _ => println!(
                    "audit log ok: {} entries, chain head {}",
                    v.entries,
                    opsdeploy::workflow::short(&v.head)
                ),
            }
            Ok(Exit::Ok)
        }
        AuditCommand::Log { env } => {
            let entries: Vec<_> = project
                .store
                .entries()
                .map_err(opsdeploy::workflow::WorkflowError::from)?
                .into_iter()
                .filter(|e| env.is_none() || e.environment == *env)
                .collect();
            match ctx.format {
                Format::Markdown => print!("{}", report::audit_markdown(&entries)),
                Format::Json => {
                    println!("{}", serde_json::to_string_pretty(&entries).expect("json"))
                }
                _ if ctx.quiet => println!("{} entries", entries.len()),
                _ => {
                    let mut table = Table::new(&["seq", "at", "environment", "actor", "event"])
                        .indent(0)
                        .right_align(0);
                    for e in &entries {
                        table.row([
                            e.seq.to_string(),
                            e.at.to_string(),
                            e.environment.clone().unwrap_or_else(|| "-".into()),
                            e.actor.clone(),
                            report::describe_entry(e),
                        ]);
                    }
                    anstream::print!("{}", table.render());
                }
            }
            Ok(Exit::Ok)
        }
    }
}
