//! `opsdeploy audit verify [--checkpoint FILE...] | log [--env ENV] | checkpoint [--sign KEY]`.

use std::path::PathBuf;

use clap::Subcommand;
use opsdeploy::report;
use opsdeploy::report::table::Table;

use opsdeploy::error::Outcome;
use opsdeploy::workflow::{UNSIGNED, audit, short};

use super::{CliResult, Context, Format, project};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain, every signed approval, and that the log extends
    /// its checkpoints (PROJECT_STATE.md's and any given); names what fails
    #[command(
        after_help = "Examples:\n  opsdeploy audit verify\n  opsdeploy audit verify --checkpoint checkpoints/2026-11-24.txt"
    )]
    Verify {
        /// A checkpoint `audit checkpoint` printed (or a file holding one)
        #[arg(long, value_name = "FILE", num_args = 1..)]
        checkpoint: Vec<PathBuf>,
    },
    /// Print the log's checkpoint (project, size, head hash), optionally SSH-signed
    #[command(
        after_help = "Examples:\n  opsdeploy audit checkpoint > checkpoint.txt\n  opsdeploy audit checkpoint --sign ~/.ssh/id_ed25519 > checkpoint.txt"
    )]
    Checkpoint {
        /// SSH key to sign it with (a private key, or a .pub held by ssh-agent)
        #[arg(long, value_name = "KEY")]
        sign: Option<PathBuf>,
    },
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
        AuditCommand::Verify { checkpoint } => {
            let v = audit::verify(&project, checkpoint)?;
            match ctx.format {
                Format::Json => println!("{}", report::json(&v)),
                _ if ctx.quiet => println!("ok"),
                _ => print_verified(&v),
            }
        }
        AuditCommand::Checkpoint { sign } => {
            let cp = audit::checkpoint(&project, sign.as_deref())?;
            match ctx.format {
                Format::Json => println!("{}", report::json(&cp)),
                _ => print!("{}", cp.to_text()),
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

/// What `audit verify` checked, for people.
fn print_verified(v: &audit::Verified) {
    println!(
        "audit log ok: {} entries, chain head {}",
        v.entries,
        short(&v.head)
    );
    let unsigned = match v.unsigned {
        0 => String::new(),
        n => format!("; {n} unsigned ({UNSIGNED})"),
    };
    println!(
        "  signatures: {} signed approvals and overrides verified{unsigned}",
        v.signed
    );
    for c in &v.checkpoints {
        let signed = c
            .signed_by
            .as_deref()
            .map(|s| format!(" (signed by {s})"))
            .unwrap_or_default();
        println!(
            "  checkpoint {}: the log extends size {}{signed}",
            c.file, c.size
        );
    }
}
