//! `opsdeploy rollback ENV`: put the previous successful deployment back —
//! helm releases to the revisions it recorded (blue-green: its colour back in
//! service). Terraform changes and migrations are reported, not reverted.

use serde::Serialize;
use serde_json::json;

use super::{Project, WorkflowError, releases, short, tools};
use crate::adapters::health;
use crate::config::Strategy;
use crate::store::records::{ApplyStatus, Deployed, RollbackData, RollbackStep, StepStatus};
use crate::store::{EntryData, LockHolder, now_rfc3339};

impl RolledBack {
    /// The error an incomplete rollback ends with; `None` when it completed.
    pub fn failure_error(&self) -> Option<WorkflowError> {
        (!self.ok).then(|| WorkflowError::RollbackIncomplete {
            environment: self.environment.clone(),
        })
    }
}

/// What a rollback did; also its `--format json`.
#[derive(Debug, Serialize)]
pub struct RolledBack {
    pub environment: String,
    /// The deployment rolled back from, and the one put back.
    pub from: String,
    pub restored: String,
    pub ok: bool,
    pub steps: Vec<RollbackStep>,
    pub not_rolled_back: Vec<String>,
}

pub fn rollback(project: &Project, env_name: &str) -> Result<RolledBack, WorkflowError> {
    let env = project.config.require_environment(env_name)?;
    let holder = LockHolder {
        actor: project.actor.clone(),
        host: std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into()),
        pid: std::process::id(),
        since: now_rfc3339(),
        purpose: "rollback".into(),
    };
    let _lock = project.store.lock(&env.name, &holder, env.lock_timeout)?;
    let history = project.history()?;
    let Some(current) = history.current(&env.name) else {
        return Err(WorkflowError::NothingToRollBack {
            environment: env.name.clone(),
        });
    };
    let applies = history.applies(&env.name);
    let Some(previous) = applies
        .iter()
        .rev()
        .filter(|a| a.status() == Some(ApplyStatus::Succeeded) && a.digest != current.digest)
        .find(|a| a.start.seq < current.start.seq)
    else {
        return Err(WorkflowError::NoEarlierDeployment {
            environment: env.name.clone(),
            digest: current.digest.clone(),
        });
    };
    if env.helm.is_empty() {
        return Err(WorkflowError::NoReleasesToRollBack {
            environment: env.name.clone(),
            runbook: env.rollback.as_ref().map(|r| r.runbook.clone()),
        });
    }
    let helm = tools::helm_for(project)?;
    let wanted: Deployed = previous.deployed().unwrap_or_default();
    let now: Deployed = current.deployed().unwrap_or_default();
    let mut steps = Vec::new();
    let mut run = |what: String, result: Result<(), String>| {
        let ok = result.is_ok();
        let line = match result {
            Ok(()) => what,
            Err(e) => format!("{what}: {e}"),
        };
        steps.push(RollbackStep {
            step: line,
            ok,
            detail: None,
        });
        ok
    };
    for r in &env.helm {
        let back_to = |name: &str| wanted.helm_revisions.get(name).copied();
        match env.strategy {
            Strategy::Rolling => match back_to(&r.name) {
                Some(rev) => {
                    run(
                        format!("release {} back to revision {rev}", r.name),
                        helm.rollback(&r.name, &r.namespace, rev, r.timeout)
                            .map_err(|e| e.to_string()),
                    );
                }
                None => {
                    run(
                        format!("release {}", r.name),
                        Err("the earlier deployment recorded no revision for it".into()),
                    );
                }
            },
            Strategy::BlueGreen => {
                let (Some(old), Some(cur)) = (wanted.colors.get(&r.name), now.colors.get(&r.name))
                else {
                    run(
                        format!("release {}", r.name),
                        Err("the deployments recorded no colours".into()),
                    );
                    continue;
                };
                let workload = releases::workload_name(r, old);
                let restored = match back_to(&workload) {
                    Some(rev) => run(
                        format!("{workload} back to revision {rev}"),
                        helm.rollback(&workload, &r.namespace, rev, r.timeout)
                            .map_err(|e| e.to_string()),
                    ),
                    None => run(workload.clone(), Err("no recorded revision".into())),
                };
                if !restored {
                    continue;
                }
                let switched = match back_to(&r.name) {
                    Some(rev) => run(
                        format!("traffic of {} back to {old} (revision {rev})", r.name),
                        helm.rollback(&r.name, &r.namespace, rev, r.timeout)
                            .map_err(|e| e.to_string()),
                    ),
                    None => run(
                        format!("traffic of {}", r.name),
                        Err("no recorded revision".into()),
                    ),
                };
                if switched && old != cur {
                    let idle = releases::workload_name(r, cur);
                    run(
                        format!("retired {idle}"),
                        helm.uninstall(&idle, &r.namespace, r.timeout)
                            .map_err(|e| e.to_string()),
                    );
                }
            }
        }
    }
    if let Some(h) = &env.health {
        let url = match wanted.colors.values().next() {
            Some(c) => h.url.replace("{color}", c),
            None => h.url.clone(),
        };
        run(
            format!("health {url}"),
            health::wait_healthy(&url, h.expect_status, h.timeout, h.interval)
                .map(|_| ())
                .map_err(|e| e.to_string()),
        );
    }
    let ok = steps.iter().all(|s| s.ok);
    let not_rolled_back = vec![format!(
        "terraform changes and migrations of {} stay in place: opsdeploy does not revert them",
        short(&current.digest)
    )];
    let data = RollbackData {
        status: StepStatus::from_ok(ok),
        reason: None,
        from: Some(current.digest.clone()),
        // History reads this: the previous deployment is what runs now.
        restored: ok.then(|| previous.digest.clone()),
        steps: steps.clone(),
        not_rolled_back: not_rolled_back.clone(),
        apply_seq: None,
    };
    project.log(&env.name, &previous.digest, EntryData::Rollback(data))?;
    super::post_deploy::notify(
        project,
        env,
        &format!(
            ":rewind: {} {}: rolled back from {} to {} ({})",
            project.config.project,
            env.name,
            short(&current.digest),
            short(&previous.digest),
            if ok { "succeeded" } else { "FAILED" }
        ),
        json!({"event": "rollback", "environment": env.name, "from": current.digest, "to": previous.digest, "ok": ok}),
    );
    if ok {
        let _ = super::post_deploy::update_state_file(project);
    }
    Ok(RolledBack {
        environment: env.name.clone(),
        from: current.digest.clone(),
        restored: previous.digest.clone(),
        steps,
        not_rolled_back,
        ok,
    })
}
