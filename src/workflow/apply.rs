//! `opsdeploy apply ENV`: under the environment's lock, check that the bundle
//! is what was planned and approved, re-evaluate the policies, then run the
//! deploy steps in order; on failure roll back what can be rolled back.

use std::time::Duration;

use policy_sdk::Section;
use policy_sdk::input::{Approval, Approvals, Override};
use serde_json::json;

use super::approve::{check_approved, resolve_bundle};
use super::continuity::{self, Incident};
use super::history::{ApplyStatus, Deployed, DeployedChart, DeployedImage};
use super::plan::{environment_section, results_entry, terraform_for, tool_error};
use super::policies::{self, Results};
use super::releases;
use super::{ErrorClass, History, Project, WorkflowError, short};
use crate::adapters::health;
use crate::adapters::helm::{Helm, ReleaseSpec};
use crate::config::{Environment, Strategy, effective};
use crate::engine::PolicyEngine;
use crate::input::InputDocument;
use crate::store::bundle::Bundle;
use crate::store::{EntryKind, LockGuard, LockHolder, NewEntry, now_rfc3339};

pub struct ApplyRequest<'a> {
    pub environment: &'a str,
    pub digest: Option<&'a str>,
    /// Asked once every check passed, before anything changes; `false` stops.
    pub confirm: &'a dyn Fn(&Bundle) -> bool,
}

/// One deploy step's result, as recorded.
#[derive(Debug, Clone)]
pub struct StepReport {
    pub step: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug)]
pub struct Applied {
    pub digest: String,
    pub status: ApplyStatus,
    pub steps: Vec<StepReport>,
    /// What failed and what was (or could not be) rolled back.
    pub failure: Option<String>,
    pub rollback: Vec<StepReport>,
    /// Changes that cannot be rolled back automatically (terraform, migrations).
    pub not_rolled_back: Vec<String>,
}

/// What has been changed so far, to undo in reverse on failure.
enum Undo {
    /// Terraform applied: reported, never guessed at.
    Terraform(String),
    /// A migration ran: reported (schema changes are rolled forward).
    Migration(String),
    /// A release was upgraded or installed: back to its previous revision,
    /// or removed when there was none.
    Release {
        name: String,
        namespace: String,
        timeout: Duration,
        previous: Option<u64>,
    },
}

pub fn apply(project: &Project, req: &ApplyRequest) -> Result<Applied, WorkflowError> {
    let env = project.config.require_environment(req.environment)?;
    let holder = LockHolder {
        actor: project.actor.clone(),
        host: hostname(),
        pid: std::process::id(),
        since: now_rfc3339(),
        purpose: format!("apply {}", req.digest.unwrap_or("latest plan")),
    };
    let mut lock = project.store.lock(&env.name, &holder, env.lock_timeout)?;
    if let Some(dead) = lock.took_over_from() {
        tracing::warn!(
            "took over the lock on \"{}\" left by {} (since {}); its apply was interrupted",
            env.name,
            dead.describe(),
            dead.since
        );
        project.store.append(
            NewEntry::new(EntryKind::LockTakeover, &project.actor, &env.name)
                .data(json!({"previous": dead.describe(), "since": dead.since})),
        )?;
    }
    // Read the past only now: another apply may have finished while we waited.
    let history = project.history()?;
    let bundle = resolve_bundle(project, &history, &env.name, req.digest)?;
    bundle.verify()?;
    let changed = bundle.changed_sources(project.dir());
    if let Some(first) = changed.first() {
        let others = if changed.len() > 1 {
            format!(" (and {} more)", changed.len() - 1)
        } else {
            String::new()
        };
        return Err(WorkflowError::Other {
            what: format!(
                "plan bundle {} does not match the files on disk",
                short(&bundle.digest)
            ),
            location: Some(format!(
                "{} {} after the plan was made{others}",
                first.path,
                if first.removed {
                    "was removed"
                } else {
                    "changed"
                }
            )),
            hint: Some(format!(
                "run `opsdeploy plan {}` and ask for a new approval",
                env.name
            )),
            class: ErrorClass::ApprovalMissing,
        });
    }
    check_effective_config(project, env, &bundle)?;
    let approvals = check_approved(env, &history, &bundle)?;
    let results = reevaluate(project, env, &history, &bundle, &approvals)?;
    let blocking = results.blocking();
    if !blocking.is_empty() {
        let names: Vec<&str> = blocking.iter().map(|d| d.policy.as_str()).collect();
        return Err(WorkflowError::Other {
            what: format!(
                "plan {} is blocked by policy: {}",
                short(&bundle.digest),
                names.join(", ")
            ),
            location: blocking
                .first()
                .and_then(|d| d.violations.first())
                .map(|v| format!("{}: {}", v.rule, v.message)),
            hint: Some(format!(
                "change the plan so it passes (`opsdeploy plan {}`), or for a soft-mandatory policy have an approver run `opsdeploy approve {} --plan {} --override POLICY --reason \"...\"`",
                env.name,
                env.name,
                short(&bundle.digest)
            )),
            class: ErrorClass::BlockedByPolicy,
        });
    }
    if !(req.confirm)(&bundle) {
        return Err(WorkflowError::Other {
            what: "apply cancelled; nothing was changed".into(),
            location: None,
            hint: Some(format!(
                "run `opsdeploy apply {} --plan {} --yes` to apply without asking",
                env.name,
                short(&bundle.digest)
            )),
            class: ErrorClass::Error,
        });
    }
    let start = project.store.append(
        NewEntry::new(EntryKind::ApplyStart, &project.actor, &env.name)
            .digest(&bundle.digest)
            .data(json!({"summary": super::plan::summary_line(&bundle.manifest.summary)})),
    )?;
    let mut run = Run {
        project,
        env,
        lock: &mut *lock,
        bundle: &bundle,
        apply_seq: start.seq,
        steps: Vec::new(),
        undo: Vec::new(),
        deployed: Deployed::default(),
    };
    let outcome = run.steps(&history);
    let applied = match outcome {
        Ok(()) => run.succeed()?,
        Err(failure) => run.roll_back(failure)?,
    };
    drop(lock);
    Ok(applied)
}

/// The configuration in effect now (after `env()` and defaults) must be the
/// one the plan was made and approved with, setting by setting.
fn check_effective_config(
    project: &Project,
    env: &Environment,
    bundle: &Bundle,
) -> Result<(), WorkflowError> {
    let differs = match &bundle.manifest.config {
        Some(planned) => planned.first_difference(&effective::settings(&project.config, env)),
        None => Some("(not recorded: the plan was made by an older opsdeploy)".into()),
    };
    let Some(setting) = differs else {
        return Ok(());
    };
    Err(WorkflowError::Other {
        what: format!(
            "plan bundle {} was made with another configuration than the one in effect now",
            short(&bundle.digest)
        ),
        location: Some(format!(
            "{}: {setting} differs from the plan (a value read through env(), or a default)",
            crate::config::CONFIG_FILE
        )),
        hint: Some(format!(
            "apply with the environment the plan was made with, or run `opsdeploy plan {}` and ask for a new approval",
            env.name
        )),
        class: ErrorClass::ApprovalMissing,
    })
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// Re-evaluates every policy on the bundle's input document, now with the
/// plan digest, the approvals and overrides logged for it.
fn reevaluate(
    project: &Project,
    env: &Environment,
    history: &History,
    bundle: &Bundle,
    approvals: &[super::history::ApprovalRecord],
) -> Result<Results, WorkflowError> {
    let input = bundle.read("input.json")?;
    let mut doc = InputDocument::from_slice("input.json of the bundle", &input)
        .map_err(|e| tool_error(e, "plan again"))?;
    doc.set_environment(&environment_section(project, env, Some(&bundle.digest)));
    let overrides = history.overrides(&bundle.digest);
    doc.set(
        Section::Approvals,
        &Approvals {
            approvals: approvals
                .iter()
                .map(|a| Approval {
                    approver: a.approver.clone().into(),
                    digest: bundle.digest.clone().into(),
                    at: a.at.clone().into(),
                    comment: a.comment.clone().map(Into::into),
                })
                .collect(),
            overrides: overrides
                .iter()
                .map(|o| Override {
                    policy: o.policy.clone().into(),
                    approver: o.approver.clone().into(),
                    digest: bundle.digest.clone().into(),
                    reason: o.reason.clone().into(),
                    at: o.at.clone().into(),
                })
                .collect(),
            planned_by: Some(bundle.manifest.planned_by.clone().into()),
            required: env.approval.min,
            self_approve: env.approval.self_approve,
        },
    );
    let engine = PolicyEngine::with_default_cache()
        .map_err(|e| tool_error(e, "check the cache directory (OPSDEPLOY_CACHE_DIR)"))?;
    let loaded = policies::load(&project.config, &engine, &env.name)?;
    for l in &loaded {
        let planned = bundle
            .manifest
            .policies
            .iter()
            .find(|p| p.name == l.config.name);
        if planned.is_none_or(|p| p.sha256 != l.sha256()) {
            tracing::warn!(
                "policy \"{}\" changed since the plan; its verdict comes from the module in use now",
                l.config.name
            );
        }
    }
    let results = Results {
        digest: bundle.digest.clone(),
        evaluated_at: now_rfc3339(),
        decisions: policies::scrubbed(
            bundle,
            policies::evaluate(&engine, &loaded, &doc, &overrides),
        )?,
    };
    project.store.append(
        NewEntry::new(EntryKind::PolicyResults, &project.actor, &env.name)
            .digest(&bundle.digest)
            .data(results_entry(&results.decisions, "apply")),
    )?;
    Ok(results)
}

struct Run<'a> {
    project: &'a Project,
    env: &'a Environment,
    lock: &'a mut dyn LockGuard,
    bundle: &'a Bundle,
    apply_seq: u64,
    steps: Vec<StepReport>,
    undo: Vec<Undo>,
    deployed: Deployed,
}

impl Run<'_> {
    fn record(
        &mut self,
        step: &str,
        ok: bool,
        detail: String,
        extra: serde_json::Value,
    ) -> Result<(), WorkflowError> {
        let mut data = json!({
            "step": step,
            "status": if ok { "succeeded" } else { "failed" },
            "detail": detail,
            "apply_seq": self.apply_seq,
        });
        if let (Some(d), Some(e)) = (data.as_object_mut(), extra.as_object()) {
            d.extend(e.clone());
        }
        // Checks of the running deployment are health results in the log.
        let kind = if matches!(step, "health" | "smoke_test" | "monitor") {
            data["check"] = json!(step);
            EntryKind::Health
        } else {
            EntryKind::ApplyStep
        };
        self.project.store.append(
            NewEntry::new(kind, &self.project.actor, &self.env.name)
                .digest(&self.bundle.digest)
                .data(data),
        )?;
        // The detail may end in a line of the step's own output: recorded
        // and shown in the result, not logged.
        tracing::info!(step, ok, "step finished");
        self.steps.push(StepReport {
            step: step.to_string(),
            ok,
            detail,
        });
        Ok(())
    }

    /// Runs one step; its failure ends the deploy with the returned message.
    fn step(
        &mut self,
        step: &str,
        extra: serde_json::Value,
        f: impl FnOnce() -> Result<String, String>,
    ) -> Result<(), Failure> {
        self.ensure_locked(&format!("before the {step} step"))
            .map_err(Failure::Store)?;
        let result = f();
        let ok = result.is_ok();
        let detail = match &result {
            Ok(d) | Err(d) => d.clone(),
        };
        self.record(step, ok, detail.clone(), extra)
            .map_err(Failure::Store)?;
        result
            .map(|_| ())
            .map_err(|e| Failure::Step(format!("{step}: {e}")))
    }

    fn steps(&mut self, history: &History) -> Result<(), Failure> {
        let migrations = self.pending_migrations(history);
        for m in migrations
            .iter()
            .filter(|m| m.phase != Some(policy_sdk::migration::Phase::Contract))
        {
            self.migrate(m)?;
        }
        if let Some(tf) = terraform_for(self.project, self.env) {
            let tf = tf.map_err(|e| Failure::Step(e.to_string()))?;
            let planfile = self.bundle.path("tfplan");
            let summary = super::plan::summary_line(&self.bundle.manifest.summary);
            self.step("terraform", json!({}), || {
                tf.init().map_err(|e| e.to_string())?;
                tf.apply(&planfile).map_err(|e| e.to_string())?;
                Ok(format!("applied the saved plan: {summary}"))
            })?;
            self.undo.push(Undo::Terraform(summary));
        }
        let retire = self.deploy_releases(history)?;
        for m in migrations
            .iter()
            .filter(|m| m.phase == Some(policy_sdk::migration::Phase::Contract))
        {
            self.migrate(m)?;
        }
        self.verify_health()?;
        if !retire.is_empty() {
            self.ensure_locked("before retiring the old colour")
                .map_err(Failure::Store)?;
            self.retire(retire);
        }
        Ok(())
    }

    /// Deploys every helm release by the environment's strategy; returns the
    /// blue-green colours to retire once every check has passed.
    fn deploy_releases(
        &mut self,
        history: &History,
    ) -> Result<Vec<(String, String, Duration)>, Failure> {
        if self.env.helm.is_empty() {
            return Ok(Vec::new());
        }
        let helm = releases::helm_for(self.project).map_err(|e| Failure::Step(e.to_string()))?;
        let live: Deployed = history
            .current(&self.env.name)
            .and_then(|c| c.deployed())
            .unwrap_or_default();
        let mut retire = Vec::new();
        for r in &self.env.helm.clone() {
            self.deployed.charts.push(DeployedChart {
                release: r.name.clone(),
                chart: r.chart.clone(),
                version: releases::chart_version(self.project.dir(), r),
            });
            match self.env.strategy {
                Strategy::Rolling => {
                    self.install(&helm, releases::spec(r, r.name.clone(), &[]))?;
                }
                Strategy::BlueGreen => {
                    let old = live.colors.get(&r.name).cloned();
                    let new = releases::other_color(old.as_deref());
                    self.install(
                        &helm,
                        releases::spec(
                            r,
                            releases::workload_name(r, new),
                            &[("opsdeploy.role", "workload"), ("opsdeploy.color", new)],
                        ),
                    )?;
                    self.check_color(new)?;
                    self.install(
                        &helm,
                        releases::spec(
                            r,
                            r.name.clone(),
                            &[
                                ("opsdeploy.role", "traffic"),
                                ("opsdeploy.activeColor", new),
                            ],
                        ),
                    )?;
                    self.deployed.colors.insert(r.name.clone(), new.to_string());
                    if let Some(old) = old {
                        retire.push((
                            releases::workload_name(r, &old),
                            r.namespace.clone(),
                            r.timeout,
                        ));
                    }
                }
            }
        }
        Ok(retire)
    }

    /// `helm upgrade --install --atomic`, remembering how to undo it.
    fn install(&mut self, helm: &Helm, spec: ReleaseSpec) -> Result<(), Failure> {
        let previous = helm
            .deployed_revision(&spec.name, &spec.namespace)
            .map_err(|e| Failure::Step(format!("helm: {e}")))?;
        let name = spec.name.clone();
        self.step(
            "helm",
            json!({"release": name, "previous_revision": previous}),
            || {
                helm.upgrade_install(&spec).map_err(|e| e.to_string())?;
                Ok(format!(
                    "release {name} upgraded (namespace {})",
                    spec.namespace
                ))
            },
        )?;
        self.undo.push(Undo::Release {
            name: name.clone(),
            namespace: spec.namespace.clone(),
            timeout: spec.timeout,
            previous,
        });
        if let Ok(Some(rev)) = helm.deployed_revision(&name, &spec.namespace) {
            self.deployed.helm_revisions.insert(name, rev);
        }
        Ok(())
    }

    /// Blue-green: the new colour answers before it gets traffic, when the
    /// health URL names the colour (`{color}`).
    fn check_color(&mut self, color: &str) -> Result<(), Failure> {
        let Some(h) = self
            .env
            .health
            .clone()
            .filter(|h| h.url.contains("{color}"))
        else {
            return Ok(());
        };
        let url = h.url.replace("{color}", color);
        self.step("health", json!({"url": url, "color": color}), || {
            health::wait_healthy(&url, h.expect_status, h.timeout, h.interval)
                .map(|n| {
                    format!(
                        "{color} answered {} at {url} after {n} attempt(s), before the switch",
                        h.expect_status
                    )
                })
                .map_err(|e| e.to_string())
        })
    }

    /// Removes the colours that no longer serve; a failure only warns (the
    /// deploy succeeded, the idle colour keeps running).
    fn retire(&mut self, colors: Vec<(String, String, Duration)>) {
        let Ok(helm) = releases::helm_for(self.project) else {
            return;
        };
        for (release, namespace, timeout) in colors {
            let result = helm.uninstall(&release, &namespace, timeout);
            let (ok, detail) = match &result {
                Ok(()) => (
                    true,
                    format!("retired {release} (history kept for rollback)"),
                ),
                Err(e) => (false, format!("could not retire {release}: {e}")),
            };
            if !ok {
                tracing::warn!("{detail}");
            }
            if let Err(e) = self.record("retire", ok, detail, json!({"release": release})) {
                tracing::warn!("could not record retiring {release}: {e}");
            }
        }
    }

    fn pending_migrations(&self, history: &History) -> Vec<PendingMigration> {
        let Ok(input) = self.bundle.read("input.json") else {
            return Vec::new();
        };
        let Ok(doc) = policy_sdk::Input::from_slice(&input) else {
            return Vec::new();
        };
        let runs = history.migration_runs();
        doc.migrations
            .iter()
            .filter(|m| {
                !runs
                    .get(m.id.as_ref())
                    .is_some_and(|r| r.iter().any(|r| r.environment == self.env.name))
            })
            .map(|m| PendingMigration {
                id: m.id.to_string(),
                path: m.path.to_string(),
                sha256: m.sha256.to_string(),
                phase: m.phase,
            })
            .collect()
    }

    fn migrate(&mut self, m: &PendingMigration) -> Result<(), Failure> {
        let Some(command) = self.env.migrations.as_ref().and_then(|c| c.command.clone()) else {
            return Err(Failure::Step(format!(
                "migration {} is pending but `migrations {{ command = [...] }}` is not configured for \"{}\"",
                m.id, self.env.name
            )));
        };
        // Run the bundle's copy: exactly what was planned and approved.
        let file = self
            .bundle
            .path(&format!("migrations/{}", file_name(&m.path)));
        let file = if file.is_file() {
            file
        } else {
            self.project.config.resolve(std::path::Path::new(&m.path))
        };
        let argv: Vec<String> = command
            .iter()
            .map(|a| a.replace("{file}", &file.display().to_string()))
            .collect();
        let dir = self.project.dir().to_path_buf();
        let id = m.id.clone();
        self.step(
            "migration",
            json!({"migration": m.id, "sha256": m.sha256, "phase": m.phase}),
            || {
                health::run_command(&dir, &argv, Duration::from_secs(3600))
                    .map(|_| format!("ran {id}"))
                    .map_err(|e| e.to_string())
            },
        )?;
        self.undo.push(Undo::Migration(m.id.clone()));
        self.deployed.migrations.push(m.id.clone());
        Ok(())
    }

    fn verify_health(&mut self) -> Result<(), Failure> {
        let dir = self.project.dir().to_path_buf();
        if let Some(mut h) = self.env.health.clone() {
            if let Some(color) = self.deployed.colors.values().next() {
                h.url = h.url.replace("{color}", color);
            }
            self.step("health", json!({"url": h.url}), || {
                health::wait_healthy(&h.url, h.expect_status, h.timeout, h.interval)
                    .map(|n| {
                        format!(
                            "{} answered {} after {n} attempt(s)",
                            h.url, h.expect_status
                        )
                    })
                    .map_err(|e| e.to_string())
            })?;
        }
        if let Some(s) = self.env.smoke_test.clone() {
            self.step("smoke_test", json!({}), || {
                health::run_command(&dir, &s.command, s.timeout)
                    .map(|_| format!("`{}` passed", s.command.join(" ")))
                    .map_err(|e| e.to_string())
            })?;
        }
        if let Some(m) = self.env.monitor.clone() {
            self.step(
                "monitor",
                json!({"window_secs": m.window.as_secs()}),
                || {
                    health::watch_error_rate(
                        &dir,
                        &m.error_rate_query,
                        m.window,
                        m.interval,
                        m.max_error_rate,
                    )
                    .map(|r| {
                        let worst = r.iter().cloned().fold(0.0, f64::max);
                        format!(
                            "error rate stayed at or below {worst} over {:?} ({} readings)",
                            m.window,
                            r.len()
                        )
                    })
                    .map_err(|e| e.to_string())
                },
            )?;
        }
        Ok(())
    }

    /// Stops the apply when its lock was lost: another apply may be running,
    /// so nothing more is changed, not even rolled back.
    fn ensure_locked(&mut self, when: &str) -> Result<(), WorkflowError> {
        self.lock.still_held().map_err(|e| WorkflowError::Other {
            what: format!("{e}; the apply stopped {when} and nothing was rolled back"),
            location: None,
            hint: Some(format!(
                "run `opsdeploy status {}` to see which steps ran, then apply again once no other apply runs",
                self.env.name
            )),
            class: ErrorClass::RollbackFailed,
        })
    }

    fn succeed(mut self) -> Result<Applied, WorkflowError> {
        self.ensure_locked("before recording it as deployed")?;
        let history = self.project.history()?;
        // Everything that has run on this environment so far, for promotion checks.
        let mut ran: Vec<String> = history
            .migration_runs()
            .into_iter()
            .filter(|(_, runs)| runs.iter().any(|r| r.environment == self.env.name))
            .map(|(id, _)| id)
            .collect();
        ran.sort();
        self.deployed.migrations = ran;
        self.deployed.images = deployed_images(self.bundle);
        self.project.store.append(
            NewEntry::new(EntryKind::ApplyFinish, &self.project.actor, &self.env.name)
                .digest(&self.bundle.digest)
                .data(json!({
                    "status": ApplyStatus::Succeeded,
                    "healthy": true,
                    "apply_seq": self.apply_seq,
                    "deployed": self.deployed,
                })),
        )?;
        super::post_deploy::after_success(self.project, self.env, self.bundle);
        Ok(Applied {
            digest: self.bundle.digest.clone(),
            status: ApplyStatus::Succeeded,
            steps: self.steps,
            failure: None,
            rollback: Vec::new(),
            not_rolled_back: Vec::new(),
        })
    }

    fn roll_back(mut self, failure: Failure) -> Result<Applied, WorkflowError> {
        let message = match failure {
            Failure::Step(m) => m,
            // The store itself failed: record nothing more, report as an error.
            Failure::Store(e) => return Err(e),
        };
        // Undoing without the lock could undo another apply's work.
        self.ensure_locked(&format!("after `{message}`, before rolling back"))?;
        let mut rollback: Vec<StepReport> = Vec::new();
        let mut not_rolled_back = Vec::new();
        let helm = releases::helm_for(self.project);
        for undo in self.undo.iter().rev() {
            match undo {
                Undo::Release {
                    name,
                    namespace,
                    timeout,
                    previous,
                } => {
                    let result = helm.as_ref().map_err(|e| e.to_string()).and_then(|h| match previous {
                        Some(rev) => h
                            .rollback(name, namespace, *rev, *timeout)
                            .map(|()| format!("release {name} rolled back to revision {rev}"))
                            .map_err(|e| e.to_string()),
                        None => h
                            .uninstall(name, namespace, *timeout)
                            .map(|()| format!("release {name} removed (it was new)"))
                            .map_err(|e| e.to_string()),
                    });
                    let (ok, detail) = match result {
                        Ok(d) => (true, d),
                        Err(e) => (false, e),
                    };
                    rollback.push(StepReport {
                        step: "helm".into(),
                        ok,
                        detail,
                    });
                }
                Undo::Terraform(summary) => not_rolled_back.push(format!(
                    "terraform changes were applied and are not rolled back automatically: {summary}"
                )),
                Undo::Migration(id) => not_rolled_back.push(format!(
                    "migration {id} ran; schema changes are rolled forward, not back"
                )),
            }
        }
        let rollback_ok = rollback.iter().all(|s| s.ok);
        let status = if rollback_ok {
            ApplyStatus::RolledBack
        } else {
            ApplyStatus::RollbackFailed
        };
        self.project.store.append(
            NewEntry::new(EntryKind::Rollback, &self.project.actor, &self.env.name)
                .digest(&self.bundle.digest)
                .data(json!({
                    "status": if rollback_ok { "succeeded" } else { "failed" },
                    "reason": message,
                    "steps": rollback.iter().map(|s| json!({"step": s.step, "ok": s.ok, "detail": s.detail})).collect::<Vec<_>>(),
                    "not_rolled_back": not_rolled_back,
                    "apply_seq": self.apply_seq,
                })),
        )?;
        self.project.store.append(
            NewEntry::new(EntryKind::ApplyFinish, &self.project.actor, &self.env.name)
                .digest(&self.bundle.digest)
                .data(json!({
                    "status": status,
                    "healthy": false,
                    "apply_seq": self.apply_seq,
                    "failure": message,
                })),
        )?;
        let title = if rollback_ok {
            "deploy failed, rolled back"
        } else {
            "deploy failed, rollback failed: manual action needed"
        };
        let mut details = vec![format!("failed: {message}")];
        details.extend(
            rollback
                .iter()
                .map(|s| format!("rollback {}: {}", s.step, s.detail)),
        );
        details.extend(not_rolled_back.iter().cloned());
        let at = now_rfc3339();
        if let Err(e) = continuity::record(
            self.project,
            &Incident {
                at: &at,
                environment: &self.env.name,
                title,
                digest: &self.bundle.digest,
                details: details.clone(),
            },
        ) {
            tracing::warn!("could not record the incident in the continuity file: {e}");
        }
        self.project.store.append(
            NewEntry::new(EntryKind::Incident, &self.project.actor, &self.env.name)
                .digest(&self.bundle.digest)
                .data(json!({"what": title, "details": details})),
        )?;
        super::post_deploy::notify(
            self.project,
            self.env,
            &format!(
                ":x: {} {}: {title} ({message})",
                self.project.config.project, self.env.name
            ),
            json!({"event": "deploy_failed", "environment": self.env.name, "digest": self.bundle.digest, "status": status}),
        );
        Ok(Applied {
            digest: self.bundle.digest.clone(),
            status,
            steps: self.steps,
            failure: Some(message),
            rollback,
            not_rolled_back,
        })
    }
}

enum Failure {
    Step(String),
    Store(WorkflowError),
}

struct PendingMigration {
    id: String,
    path: String,
    sha256: String,
    phase: Option<policy_sdk::migration::Phase>,
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Images the bundle deploys, with the digests trivy resolved.
fn deployed_images(bundle: &Bundle) -> Vec<DeployedImage> {
    let Ok(input) = bundle.read("input.json") else {
        return Vec::new();
    };
    let Ok(doc) = policy_sdk::Input::from_slice(&input) else {
        return Vec::new();
    };
    doc.scans
        .iter()
        .flat_map(|s| s.reports.iter())
        .filter(|r| r.kind == policy_sdk::scan::ScanKind::Image)
        .map(|r| DeployedImage {
            reference: r.target.to_string(),
            digest: r
                .report
                .metadata
                .as_ref()
                .and_then(|m| m.repo_digests.first())
                .and_then(|d| d.split_once('@').map(|(_, d)| d.to_string())),
        })
        .collect()
}
