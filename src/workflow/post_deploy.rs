//! After a deploy: the project state file says what is deployed where, and
//! the team is told through the configured webhook.

use std::fmt::Write as _;

use serde_json::json;

use super::{Project, short};
use crate::adapters::notify;
use crate::config::Environment;
use crate::fsutil::write_atomic;
use crate::store::bundle::Bundle;
use crate::store::now_rfc3339;

const START: &str = "<!-- opsdeploy:deployments:start -->";
const END: &str = "<!-- opsdeploy:deployments:end -->";

pub fn after_success(project: &Project, env: &Environment, bundle: &Bundle) {
    if let Err(e) = update_state_file(project) {
        tracing::warn!("could not update the project state file: {e}");
    }
    notify(
        project,
        env,
        &format!(
            ":white_check_mark: {} deployed to {} (plan {}, {}) by {}",
            project.config.project,
            env.name,
            short(&bundle.digest),
            bundle.manifest.summary,
            project.actor
        ),
        json!({"event": "deployed", "environment": env.name, "digest": bundle.digest}),
    );
}

/// Sends to the environment's webhook, else the project's; never fails.
pub fn notify(project: &Project, env: &Environment, text: &str, details: serde_json::Value) {
    if let Some(n) = env.notify.as_ref().or(project.config.notify.as_ref()) {
        notify::send(&n.webhook, text, details);
    }
}

/// Rewrites the deployments table between opsdeploy's markers in the state
/// file (appending it the first time), leaving the rest of the file alone.
pub fn update_state_file(project: &Project) -> std::io::Result<()> {
    let path = project.config.resolve(&project.config.files.state_file);
    let history = project
        .history()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut table = format!(
        "{START}\n## Deployments\n\nMaintained by opsdeploy ({}).\n\n| environment | plan | deployed at | by | healthy |\n|---|---|---|---|---|\n",
        now_rfc3339()
    );
    for env in &project.config.environments {
        match history.current(&env.name) {
            Some(c) => {
                let _ = writeln!(
                    table,
                    "| {} | `{}` | {} | {} | {} |",
                    env.name,
                    short(&c.digest),
                    c.finish.map(|f| f.at.as_str()).unwrap_or("-"),
                    c.start.actor,
                    match c.health() {
                        crate::store::records::Health::Healthy => "yes",
                        crate::store::records::Health::Unverified => "unverified",
                        crate::store::records::Health::Unhealthy => "no",
                    }
                );
            }
            None => {
                let _ = writeln!(table, "| {} | - | never | - | - |", env.name);
            }
        }
    }
    // The log's head now, committed with this file: git history anchors it
    // and `opsdeploy audit verify` checks the log still extends it.
    let cp = super::audit::head_checkpoint(project, &history);
    let _ = write!(
        table,
        "\nAudit log checkpoint (`opsdeploy audit verify` checks that the log still extends it):\n\n{}\n",
        cp.body()
            .lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    );
    table.push_str(END);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let updated = match (text.find(START), text.find(END)) {
        (Some(s), Some(e)) if e > s => format!("{}{table}{}", &text[..s], &text[e + END.len()..]),
        _ => {
            let sep = if text.is_empty() || text.ends_with("\n\n") {
                ""
            } else if text.ends_with('\n') {
                "\n"
            } else {
                "\n\n"
            };
            format!("{text}{sep}{table}\n")
        }
    };
    write_atomic(&path, updated.as_bytes())
}
