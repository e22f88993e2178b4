//! `opsdeploy audit verify | log [--env ENV]`.

use clap::Subcommand;
use opsdeploy::report;
use opsdeploy::report::table::Table;

use opsdeploy::workflow::{audit, short};

use opsdeploy::error::Outcome;

use super::{CliResult, Context, Format, project};

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
            let v = audit::verify(&project)?;
            match ctx.format {
                Format::Json => println!("{}", report::json(&v)),
                _ if ctx.quiet => println!("ok"),
                _ => println!(
                    "audit log ok: {} entries, chain head {}",
                    v.entries,
                    short(&v.head)
                ),
            }
        }
        AuditCommand::Log { env } => {
            let entries = audit::log(&project, env.as_deref())?;
            match ctx.format {
                Format::Markdown => print!("{}", report::audit_markdown(&entries)),
                Format::Json => println!("{}", report::json_list(&entries)),
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
        }
    }
    Ok(Outcome::Done)
}
