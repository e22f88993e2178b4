//! `opsdeploy audit verify [--checkpoint FILE...] | log [--env ENV] | checkpoint [--sign KEY]`.

use std::path::PathBuf;

use clap::Subcommand;
use opsdeploy::report;
use opsdeploy::report::table::Table;

use opsdeploy::trust::signature::SigningKey;
use opsdeploy::workflow::{Project, WorkflowError, audit, short};

use super::{CliError, CliResult, Context, Exit, Format, project};

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
        AuditCommand::Verify { checkpoint } => verify(ctx, &project, checkpoint),
        AuditCommand::Checkpoint { sign } => {
            let history = project.history()?;
            let mut cp = audit::checkpoint(&project, &history);
            if let Some(key) = sign {
                let key = SigningKey::find(Some(key.as_path()), project.dir())
                    .ok()
                    .flatten()
                    .ok_or_else(|| {
                        CliError::error("no key to sign with").hint("pass --sign KEY")
                    })?;
                cp = audit::sign_checkpoint(cp, &key)?;
            }
            print!("{}", cp.to_text());
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

/// The chain first, then every signature, then every checkpoint.
fn verify(ctx: &Context, project: &Project, files: &[PathBuf]) -> CliResult {
    let v = project.store.verify().map_err(WorkflowError::from)?;
    if let Some(bad) = v.first_bad {
        let seq = bad.seq.map(|s| format!(" (seq {s})")).unwrap_or_default();
        return Err(CliError::error(format!(
            "audit log entry {}{seq} is not valid: {}",
            bad.position, bad.reason
        ))
        .at(format!("{}:{}", project.store.describe(), bad.position))
        .hint("restore the log from a backup; entries before it are intact"));
    }
    let history = project.history()?;
    let sigs = audit::check_signatures(project, &history);
    if let Some(bad) = sigs.bad.first() {
        let more = match sigs.bad.len() {
            1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        return Err(CliError::error(format!(
            "audit log entry {} ({} by {}) is not a valid signed approval: {}{more}",
            bad.seq, bad.kind, bad.actor, bad.reason
        ))
        .at(format!("{}:{}", project.store.describe(), bad.seq))
        .hint("the log or the approval was tampered with; restore the log from a backup and compare with your checkpoints"));
    }
    // PROJECT_STATE.md's checkpoint (written after each apply), then those given.
    let state = project.config.resolve(&project.config.files.state_file);
    let mut checked = Vec::new();
    let candidates = std::iter::once((state, false)).chain(files.iter().map(|f| (f.clone(), true)));
    for (path, required) in candidates {
        if !required && !path.is_file() {
            continue;
        }
        let shown = project.shown(&path).display().to_string();
        let Some(cp) = audit::read_checkpoint(&path)? else {
            if required {
                return Err(CliError::error(format!("{shown} holds no checkpoint"))
                    .at(shown)
                    .hint("pass a file `opsdeploy audit checkpoint` wrote"));
            }
            continue;
        };
        match audit::check_checkpoint(project, &history, &cp) {
            Ok(signed) => checked.push(serde_json::json!({
                "file": shown, "size": cp.size, "head": cp.head, "signed_by": signed,
            })),
            Err(why) => {
                return Err(CliError::error(format!(
                    "the audit log does not extend the checkpoint at size {}: {why}",
                    cp.size
                ))
                .at(shown)
                .hint(
                    "the log was cut or rewritten after the checkpoint; restore it from a backup",
                ));
            }
        }
    }
    match ctx.format {
        Format::Json => println!(
            "{}",
            serde_json::json!({
                "valid": true, "entries": v.entries, "head": v.head,
                "signed": sigs.signed, "unsigned": sigs.unsigned, "checkpoints": checked,
            })
        ),
        _ if ctx.quiet => println!("ok"),
        _ => {
            println!(
                "audit log ok: {} entries, chain head {}",
                v.entries,
                short(&v.head)
            );
            println!(
                "  signatures: {} signed approvals and overrides verified{}",
                sigs.signed,
                if sigs.unsigned > 0 {
                    format!(
                        "; {} unsigned ({})",
                        sigs.unsigned,
                        opsdeploy::workflow::signing::UNSIGNED
                    )
                } else {
                    String::new()
                }
            );
            for c in &checked {
                println!(
                    "  checkpoint {}: the log extends size {}{}",
                    c["file"].as_str().unwrap_or_default(),
                    c["size"],
                    c["signed_by"]
                        .as_str()
                        .map(|s| format!(" (signed by {s})"))
                        .unwrap_or_default()
                );
            }
        }
    }
    Ok(Exit::Ok)
}
