//! `opsdeploy rollback ENV [--to DIGEST]`: return an environment to its
//! previous (or a named earlier) successful deployment — terraform to that
//! deployment's configuration (planned against the live state and judged by
//! the environment's policies, `tfreturn`), helm releases to the revisions it
//! recorded (blue-green: its colour back in service) — with the plan shown
//! first and health checks after. Migrations are not reverted: expands are
//! kept (compatible with the earlier version by design), contracts listed.

use serde::Serialize;
use serde_json::json;

use super::apply::StepReport;
use super::continuity::{self, Incident};
use super::tfreturn::{self, ReturnPlan, Target};
use super::{History, Project, WorkflowError, releases, short, tools};
use crate::adapters::health;
use crate::config::{Environment, Strategy};
use crate::store::bundle::Bundle;
use crate::store::records::{
    ApplyStatus, Deployed, Health, IncidentData, LiveReleases, RollbackData, RollbackStep,
    StepStatus,
};
use crate::store::{EntryData, LockHolder, now_rfc3339};

pub struct RollbackRequest<'a> {
    pub environment: &'a str,
    /// `--to`: a digest (or prefix) of an earlier successful deployment.
    pub to: Option<&'a str>,
    /// Shown the plan before anything changes.
    pub show: &'a dyn Fn(&Plan),
}

/// What the rollback will do, shown before it does it.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub environment: String,
    pub from: String,
    pub to: String,
    /// How the rollback is approved (the target's approvals, reused).
    pub approval: String,
    /// The terraform return plan's summary, when there is terraform.
    pub terraform: Option<String>,
    /// What happens to each helm release.
    pub helm: Vec<String>,
    /// Migrations that ran since `to`, left in place as compatible by design.
    pub kept: Vec<String>,
    /// Migrations that ran since `to` and cannot be undone.
    pub not_undone: Vec<String>,
}

/// What a rollback did.
#[derive(Debug)]
pub struct RolledBack {
    pub plan: Plan,
    pub steps: Vec<StepReport>,
    pub undone: Vec<String>,
    pub not_undone: Vec<String>,
    pub health: Health,
    pub ok: bool,
}

/// `rollback --format json`.
#[derive(Debug, Serialize)]
pub struct RolledBackOutput<'a> {
    pub environment: &'a str,
    /// The deployment rolled back from, and the one returned to.
    pub from: &'a str,
    pub restored: &'a str,
    pub ok: bool,
    pub steps: &'a [StepReport],
    pub approval: &'a str,
    pub undone: &'a [String],
    pub kept: &'a [String],
    pub not_rolled_back: &'a [String],
    pub health: Health,
}

impl RolledBack {
    pub fn output(&self) -> RolledBackOutput<'_> {
        RolledBackOutput {
            environment: &self.plan.environment,
            from: &self.plan.from,
            restored: &self.plan.to,
            ok: self.ok,
            steps: &self.steps,
            approval: &self.plan.approval,
            undone: &self.undone,
            kept: &self.plan.kept,
            not_rolled_back: &self.not_undone,
            health: self.health,
        }
    }

    /// The error an incomplete rollback ends with; `None` when it completed.
    pub fn failure_error(&self) -> Option<WorkflowError> {
        (!self.ok).then(|| WorkflowError::RollbackIncomplete {
            environment: self.plan.environment.clone(),
        })
    }
}

pub fn rollback(project: &Project, req: &RollbackRequest) -> Result<RolledBack, WorkflowError> {
    let env = project.config.require_environment(req.environment)?;
    let holder = LockHolder {
        actor: project.actor.clone(),
        host: std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into()),
        pid: std::process::id(),
        since: now_rfc3339(),
        purpose: "rollback".into(),
    };
    let mut lock = project.store.lock(&env.name, &holder, env.lock_timeout)?;
    let history = project.history()?;
    let Some(current) = history.current(&env.name) else {
        return Err(WorkflowError::NothingToRollBack {
            environment: env.name.clone(),
        });
    };
    let target = target(
        &history,
        &env.name,
        &current.digest,
        current.start.seq,
        req.to,
    )?;
    project.store.fetch_bundle(&target.digest)?;
    let bundle = Bundle::open(&project.store.bundles_dir(), &target.digest)?;
    bundle.verify()?;
    // The target was approved for this environment when it was deployed;
    // those approvals count again when they still satisfy its rules.
    let approvals =
        super::approve::check_approved(project, env, &history, &bundle).map_err(|e| {
            WorkflowError::RollbackNotApproved {
                environment: env.name.clone(),
                digest: bundle.digest.clone(),
                source: Box::new(e),
            }
        })?;
    let approval = format!(
        "plan {} was already approved for {} by {}; those approvals are reused",
        short(&bundle.digest),
        env.name,
        approvals
            .iter()
            .map(|a| format!("{} at {}", a.approver, a.at))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let return_plan = match &env.terraform {
        Some(_) => Some(tfreturn::plan(project, env, Target::Deployment(&bundle))?),
        None => None,
    };
    if let Some(p) = &return_plan {
        let decisions = tfreturn::judge(project, env, &history, &bundle, p)?;
        if let Some((policy, why)) = tfreturn::blocking(&decisions) {
            return Err(WorkflowError::ReturnBlocked {
                environment: env.name.clone(),
                target: format!("plan {} ({})", short(&bundle.digest), p.summary()),
                policy: policy.to_string(),
                why,
            });
        }
    }
    let wanted: Deployed = target.deployed().unwrap_or_default();
    let live = history.live_releases(&env.name).unwrap_or_default();
    let (kept, migrations_not_undone) = migrations_since(&history, &env.name, target.start.seq);
    let plan = Plan {
        environment: env.name.clone(),
        from: current.digest.clone(),
        to: bundle.digest.clone(),
        approval,
        terraform: return_plan.as_ref().map(ReturnPlan::summary),
        helm: env
            .helm
            .iter()
            .map(|r| helm_intent(env, r, &wanted, &live))
            .collect(),
        kept,
        not_undone: migrations_not_undone,
    };
    (req.show)(&plan);
    lock.still_held()?;

    let mut steps = Vec::new();
    let mut undone = Vec::new();
    let mut not_undone = plan.not_undone.clone();
    if let Some(p) = &return_plan {
        let to = format!("plan {}", short(&bundle.digest));
        let (ok, detail) = if !p.changes() {
            (true, format!("nothing to change: already at {to}"))
        } else {
            match p.apply() {
                Ok(()) => (true, format!("returned to {to}: {}", p.summary())),
                Err(e) => (false, format!("the return to {to} failed: {e}")),
            }
        };
        if ok {
            undone.push(format!("terraform: {detail}"));
        } else {
            not_undone.push(format!("terraform: {detail}"));
        }
        steps.push(StepReport {
            step: "terraform".into(),
            ok,
            detail,
        });
    }
    let live = roll_back_releases(project, env, &wanted, live, &mut steps, &mut undone)?;
    let back = steps.iter().all(|s| s.ok);
    let color = env
        .helm
        .iter()
        .find_map(|r| live.colors.get(&r.name).cloned());
    let health = super::undo::check_health(env, &color);
    steps.push(StepReport {
        step: "health".into(),
        ok: health != Health::Unhealthy,
        detail: format!("{} is {}", env.name, health.as_str()),
    });
    if let Some(s) = &env.smoke_test {
        let result = health::run_command(project.dir(), &s.command, s.timeout);
        steps.push(StepReport {
            step: "smoke_test".into(),
            ok: result.is_ok(),
            detail: match result {
                Ok(_) => format!("`{}` passed", s.command.join(" ")),
                Err(e) => e.to_string(),
            },
        });
    }
    let ok = steps.iter().all(|s| s.ok) && not_undone.is_empty();
    let data = RollbackData {
        status: StepStatus::from_ok(ok),
        reason: None,
        from: Some(current.digest.clone()),
        // History reads this: the earlier deployment is what runs now.
        restored: back.then(|| bundle.digest.clone()),
        steps: rollback_steps(&steps),
        not_rolled_back: Vec::new(),
        undone: undone.clone(),
        kept: plan.kept.clone(),
        not_undone: not_undone.clone(),
        health: Some(health),
        live: Some(live),
        approval: Some(plan.approval.clone()),
        apply_seq: None,
    };
    project.log(&env.name, &bundle.digest, EntryData::Rollback(data))?;
    record_incident(project, env, &plan, &steps, &undone, &not_undone, ok)?;
    super::post_deploy::notify(
        project,
        env,
        &format!(
            ":rewind: {} {}: rolled back from {} to {} ({}); undone: {}{}",
            project.config.project,
            env.name,
            short(&current.digest),
            short(&bundle.digest),
            if ok { "succeeded" } else { "INCOMPLETE" },
            if undone.is_empty() {
                "nothing".to_string()
            } else {
                undone.join("; ")
            },
            if not_undone.is_empty() {
                String::new()
            } else {
                format!("; NOT undone: {}", not_undone.join("; "))
            }
        ),
        json!({"event": "rollback", "environment": env.name, "from": current.digest, "to": bundle.digest,
               "ok": ok, "undone": undone, "kept": plan.kept, "not_undone": not_undone}),
    );
    if let Err(e) = super::post_deploy::update_state_file(project) {
        tracing::warn!("could not update the project state file: {e}");
    }
    Ok(RolledBack {
        plan,
        steps,
        undone,
        not_undone,
        health,
        ok,
    })
}

/// The deployment to return to: `--to`, or the last successful one before
/// the current one.
fn target<'h>(
    history: &'h History,
    env: &'h str,
    current: &str,
    current_seq: u64,
    to: Option<&str>,
) -> Result<super::history::ApplyRecord<'h>, WorkflowError> {
    let earlier: Vec<_> = history
        .applies(env)
        .into_iter()
        .filter(|a| a.status() == Some(ApplyStatus::Succeeded) && a.digest != current)
        .collect();
    let listed = || {
        earlier
            .iter()
            .map(|a| format!("{} ({})", short(&a.digest), a.start.at))
            .collect::<Vec<_>>()
    };
    match to {
        Some(prefix) => {
            let found: Vec<_> = earlier
                .iter()
                .filter(|a| a.digest.starts_with(prefix) && prefix.len() >= 6)
                .collect();
            match found.last() {
                Some(a) => Ok((*a).clone()),
                None => Err(WorkflowError::NotAnEarlierDeployment {
                    environment: env.to_string(),
                    prefix: prefix.to_string(),
                    current: current.to_string(),
                    earlier: listed(),
                }),
            }
        }
        None => earlier
            .iter()
            .rfind(|a| a.start.seq < current_seq)
            .cloned()
            .ok_or_else(|| WorkflowError::NoEarlierDeployment {
                environment: env.to_string(),
                digest: current.to_string(),
            }),
    }
}

/// Migrations that ran on `env` in applies after the one that started at
/// `since`: (kept, not undone).
fn migrations_since(history: &History, env: &str, since: u64) -> (Vec<String>, Vec<String>) {
    let mut kept = Vec::new();
    let mut not_undone = Vec::new();
    let steps = history.entries().iter().filter_map(|e| match &e.data {
        EntryData::ApplyStep(s) if e.environment.as_deref() == Some(env) => Some(s),
        _ => None,
    });
    for s in steps.filter(|s| {
        s.apply_seq.is_some_and(|seq| seq > since)
            && s.step == "migration"
            && s.status == StepStatus::Succeeded
    }) {
        let id = s.migration.as_deref().unwrap_or_default();
        if s.phase == Some(policy_sdk::migration::Phase::Contract) {
            not_undone.push(format!(
                "migration {id} (contract) ran since and cannot be undone: the earlier version may need what it removed"
            ));
        } else {
            kept.push(format!(
                "migration {id} (expand): compatible with the previous version by design"
            ));
        }
    }
    (kept, not_undone)
}

/// What the rollback does to one release, for the plan.
fn helm_intent(
    env: &Environment,
    r: &crate::config::HelmRelease,
    wanted: &Deployed,
    live: &LiveReleases,
) -> String {
    match env.strategy {
        Strategy::Rolling => match wanted.helm_revisions.get(&r.name) {
            Some(rev) => format!("release {} back to revision {rev}", r.name),
            None => format!("release {}: no revision recorded to go back to", r.name),
        },
        Strategy::BlueGreen => match (wanted.colors.get(&r.name), live.colors.get(&r.name)) {
            (Some(old), Some(cur)) if old != cur => {
                format!("traffic of {} back to {old}, {cur} retired", r.name)
            }
            (Some(old), _) => format!("{} stays on {old}", r.name),
            _ => format!("release {}: no colour recorded to go back to", r.name),
        },
    }
}

/// Puts every release back as `wanted` recorded it; returns the releases as
/// left (recorded for drift).
fn roll_back_releases(
    project: &Project,
    env: &Environment,
    wanted: &Deployed,
    mut live: LiveReleases,
    steps: &mut Vec<StepReport>,
    undone: &mut Vec<String>,
) -> Result<LiveReleases, WorkflowError> {
    if env.helm.is_empty() {
        return Ok(live);
    }
    let helm = tools::helm_for(project)?;
    let mut run = |what: String, result: Result<(), String>| {
        let ok = result.is_ok();
        if ok {
            undone.push(format!("helm: {what}"));
        }
        steps.push(StepReport {
            step: "helm".into(),
            ok,
            detail: match result {
                Ok(()) => what,
                Err(e) => format!("{what}: {e}"),
            },
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
                let (Some(old), Some(cur)) = (
                    wanted.colors.get(&r.name),
                    live.colors.get(&r.name).cloned(),
                ) else {
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
                if switched {
                    live.colors.insert(r.name.clone(), old.clone());
                    if *old != cur {
                        let idle = releases::workload_name(r, &cur);
                        if run(
                            format!("retired {idle}"),
                            helm.uninstall(&idle, &r.namespace, r.timeout)
                                .map_err(|e| e.to_string()),
                        ) {
                            live.helm_revisions.remove(&idle);
                        }
                    }
                }
            }
        }
        // What helm holds now is what drift compares with next.
        let mut names = vec![r.name.clone()];
        if let Some(c) = live.colors.get(&r.name) {
            names.push(releases::workload_name(r, c));
        }
        for name in names {
            if let Ok(Some(rev)) = helm.deployed_revision(&name, &r.namespace) {
                live.helm_revisions.insert(name, rev);
            }
        }
    }
    Ok(live)
}

fn record_incident(
    project: &Project,
    env: &Environment,
    plan: &Plan,
    steps: &[StepReport],
    undone: &[String],
    not_undone: &[String],
    ok: bool,
) -> Result<(), WorkflowError> {
    let title = if ok {
        "rolled back"
    } else {
        "rollback incomplete: manual action needed"
    };
    let mut details = vec![format!("from {} to {}", short(&plan.from), short(&plan.to))];
    details.push(format!("approval: {}", plan.approval));
    details.extend(undone.iter().map(|u| format!("undone: {u}")));
    details.extend(plan.kept.iter().map(|k| format!("kept: {k}")));
    details.extend(not_undone.iter().map(|n| format!("NOT undone: {n}")));
    details.extend(
        steps
            .iter()
            .filter(|s| !s.ok)
            .map(|s| format!("failed: {} {}", s.step, s.detail)),
    );
    let at = now_rfc3339();
    if let Err(e) = continuity::record(
        project,
        &Incident {
            at: &at,
            environment: &env.name,
            title,
            digest: &plan.to,
            details: details.clone(),
        },
    ) {
        tracing::warn!("could not record the rollback in the continuity file: {e}");
    }
    let incident = IncidentData {
        what: title.to_string(),
        details,
    };
    project.log(&env.name, &plan.to, EntryData::Incident(incident))?;
    Ok(())
}

/// Steps as the audit entry records them.
pub(crate) fn rollback_steps(steps: &[StepReport]) -> Vec<RollbackStep> {
    steps
        .iter()
        .map(|s| RollbackStep {
            step: s.step.clone(),
            ok: s.ok,
            detail: Some(s.detail.clone()),
        })
        .collect()
}
