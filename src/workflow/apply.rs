//! `opsdeploy apply ENV`: under the environment's lock, check that the bundle
//! is what was planned and approved (and never applied before), re-evaluate
//! the policies, then run the deploy steps in order; on failure undo what it
//! changed (`undo`) and say exactly what was and was not undone.

use std::time::Duration;

use policy_sdk::Section;
use policy_sdk::input::{Approval, Approvals, Override};
use policy_sdk::migration::Phase;
use serde::Serialize;
use serde_json::json;

use super::approve::{check_approved, counted_overrides, resolve_bundle};
use super::continuity::{self, Incident};
use super::plan::environment_section;
use super::policies;
use super::releases;
use super::tools::{helm_for, policy_engine, terraform_for};
use super::undo::{Change, Undone};
use super::{History, Project, Stage, WorkflowError};
use crate::adapters::health;
use crate::adapters::helm::{Helm, ReleaseSpec};
use crate::config::{Environment, Strategy, effective};
use crate::input::InputDocument;
use crate::store::bundle::Bundle;
use crate::store::records::{
    ApplyFinishData, ApplyStartData, ApplyStatus, ApprovalRecord, Deployed, DeployedChart,
    DeployedImage, EvaluatedAt, Health, IncidentData, LockTakeoverData, OverrideRecord,
    PolicyResultsData, RollbackData, StepData, StepStatus,
};
use crate::store::results::Results;
use crate::store::{EntryData, LockGuard, LockHolder, NewEntry, now_rfc3339};

pub struct ApplyRequest<'a> {
    pub environment: &'a str,
    pub digest: Option<&'a str>,
    /// Asked once every check passed, before anything changes; `false` stops.
    pub confirm: &'a dyn Fn(&Bundle) -> bool,
}

/// One deploy step's result, as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub step: String,
    pub ok: bool,
    pub detail: String,
}

/// What an apply did; also its `--format json`.
#[derive(Debug, Serialize)]
pub struct Applied {
    pub digest: String,
    pub environment: String,
    pub status: ApplyStatus,
    pub steps: Vec<StepReport>,
    /// What failed.
    pub failure: Option<String>,
    /// What undoing the failed deploy did (empty when it succeeded).
    #[serde(flatten)]
    pub undone: Undone,
}

impl Applied {
    /// The error a failed deploy ends with; `None` when it succeeded.
    pub fn failure_error(&self) -> Option<WorkflowError> {
        let (environment, digest, failure) = (
            self.environment.clone(),
            self.digest.clone(),
            self.failure.clone(),
        );
        let u = &self.undone;
        match self.status {
            ApplyStatus::Succeeded => None,
            ApplyStatus::Failed => Some(WorkflowError::DeployFailed {
                environment,
                digest,
                failure,
            }),
            ApplyStatus::RolledBack => Some(WorkflowError::RolledBack {
                environment,
                digest,
                failure,
                undone: u.undone.len(),
                kept: u.kept.len(),
            }),
            ApplyStatus::RollbackFailed => Some(WorkflowError::DeployRollbackFailed {
                environment,
                digest,
                failure,
                not_undone: u.not_undone.clone(),
            }),
        }
    }
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
        let takeover = LockTakeoverData {
            previous: dead.describe(),
            since: dead.since.clone(),
        };
        project.record(NewEntry::new(
            &project.actor,
            &env.name,
            EntryData::LockTakeover(takeover),
        ))?;
    }
    // Read the past only now: another apply may have finished while we waited.
    let history = project.history()?;
    let bundle = resolve_bundle(project, &history, &env.name, req.digest)?;
    refuse_applied_before(&history, &env.name, &bundle)?;
    bundle.verify()?;
    let changed = bundle.changed_sources(project.dir());
    if let Some(first) = changed.first() {
        return Err(WorkflowError::SourcesChanged {
            environment: env.name.clone(),
            digest: bundle.digest.clone(),
            path: first.path.clone(),
            removed: first.removed,
            more: changed.len() - 1,
        });
    }
    check_effective_config(project, env, &bundle)?;
    let approvals = check_approved(project, env, &history, &bundle)?;
    // What apply needs can have gone since the plan: say so before changing anything.
    super::preflight::check(project, env)?;
    let results = reevaluate(project, env, &history, &bundle, &approvals)?;
    if let Some(refusal) = WorkflowError::blocked(&env.name, &results) {
        return Err(refusal);
    }
    if !(req.confirm)(&bundle) {
        return Err(WorkflowError::Cancelled {
            environment: env.name.clone(),
            digest: bundle.digest.clone(),
        });
    }
    let start_data = ApplyStartData {
        summary: bundle.manifest.summary.to_string(),
        // Which configuration this apply tried, for promotion's account.
        terraform_config: super::tfconfig::read(&bundle)?.map(|s| s.fingerprint.digest),
    };
    let start = project.log(&env.name, &bundle.digest, EntryData::ApplyStart(start_data))?;
    let mut run = Run {
        project,
        env,
        lock: &mut *lock,
        bundle: &bundle,
        apply_seq: start.seq,
        last_good: history.current(&env.name).map(|c| c.digest.clone()),
        steps: Vec::new(),
        changes: Vec::new(),
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

/// A bundle is applied once: applying it again would repeat (or, after an
/// interruption, resume blindly) what it already did to the environment.
fn refuse_applied_before(
    history: &History,
    env: &str,
    bundle: &Bundle,
) -> Result<(), WorkflowError> {
    let Some(before) = history
        .applies(env)
        .into_iter()
        .rfind(|a| a.digest == bundle.digest)
    else {
        return Ok(());
    };
    let how = match before.status() {
        Some(status) => format!(
            "finished {} at {}",
            status.as_str(),
            before.finish.map(|f| f.at.as_str()).unwrap_or("-")
        ),
        None => "was interrupted".to_string(),
    };
    Err(WorkflowError::AlreadyApplied {
        environment: env.to_string(),
        digest: bundle.digest.clone(),
        at: before.start.at.clone(),
        how,
    })
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
    Err(WorkflowError::ConfigChanged {
        environment: env.name.clone(),
        digest: bundle.digest.clone(),
        setting,
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
    approvals: &[ApprovalRecord],
) -> Result<Results, WorkflowError> {
    let input = bundle.read("input.json")?;
    let mut doc = InputDocument::from_slice("input.json of the bundle", &input)
        .map_err(|e| WorkflowError::tool(Stage::BundleInput, e))?;
    doc.set_environment(&environment_section(project, env, Some(&bundle.digest)));
    let (overrides, refused) = counted_overrides(project, env, history, &bundle.digest);
    for why in &refused {
        tracing::warn!("{why}");
    }
    set_approvals(&mut doc, env, bundle, approvals, &overrides);
    let engine = policy_engine()?;
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
    let verdicts = PolicyResultsData::of(&results.decisions, EvaluatedAt::Apply);
    project.log(
        &env.name,
        &bundle.digest,
        EntryData::PolicyResults(verdicts),
    )?;
    Ok(results)
}

/// The approvals section of a document judged for `bundle`: its approvals
/// and the overrides that count.
pub(crate) fn set_approvals(
    doc: &mut InputDocument,
    env: &Environment,
    bundle: &Bundle,
    approvals: &[ApprovalRecord],
    overrides: &[OverrideRecord],
) {
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
            signed: env.approval.signers.is_some(),
        },
    );
}

struct Run<'a> {
    project: &'a Project,
    env: &'a Environment,
    lock: &'a mut dyn LockGuard,
    bundle: &'a Bundle,
    apply_seq: u64,
    /// The deployment that ran before this apply: what a failure returns to.
    last_good: Option<String>,
    steps: Vec<StepReport>,
    /// What this apply changed so far, in order.
    changes: Vec<Change>,
    deployed: Deployed,
}

impl Run<'_> {
    fn record(
        &mut self,
        step: &str,
        ok: bool,
        detail: String,
        extra: impl FnOnce(&mut StepData),
    ) -> Result<(), WorkflowError> {
        let mut data = StepData::new(step, ok, detail.clone(), self.apply_seq);
        extra(&mut data);
        // Checks of the running deployment are health results in the log.
        let data = if matches!(step, "health" | "smoke_test" | "monitor") {
            data.check = Some(step.to_string());
            EntryData::Health(data)
        } else {
            EntryData::ApplyStep(data)
        };
        self.project
            .log(&self.env.name, &self.bundle.digest, data)?;
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
        extra: impl FnOnce(&mut StepData),
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
            let summary = self.bundle.manifest.summary.to_string();
            let applying = std::cell::Cell::new(false);
            let shown = summary.clone();
            let result = self.step(
                "terraform",
                |_| {},
                || {
                    tf.init().map_err(|e| e.to_string())?;
                    applying.set(true);
                    tf.apply(&planfile).map_err(|e| e.to_string())?;
                    Ok(format!("applied the saved plan: {shown}"))
                },
            );
            // A failed apply may have changed part of the plan; a stale plan,
            // a failed init or a plan without changes changed nothing.
            let stale =
                matches!(&result, Err(Failure::Step(m)) if m.contains("Saved plan is stale"));
            let changes = self
                .bundle
                .manifest
                .summary
                .terraform
                .as_ref()
                .is_some_and(|t| t.changes_anything());
            if applying.get() && !stale && changes {
                self.changes.push(Change::Terraform { summary });
            }
            result?;
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
        let helm = helm_for(self.project).map_err(|e| Failure::Step(e.to_string()))?;
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
        let result = self.step(
            "helm",
            |d| {
                d.release = Some(name.clone());
                d.previous_revision = previous;
            },
            || {
                helm.upgrade_install(&spec).map_err(|e| e.to_string())?;
                Ok(format!(
                    "release {name} upgraded (namespace {})",
                    spec.namespace
                ))
            },
        );
        if matches!(result, Err(Failure::Step(_))) && previous.is_some() {
            self.changes.push(Change::ReleaseRestoredByHelm {
                name: name.clone(),
                namespace: spec.namespace.clone(),
            });
        }
        result?;
        self.changes.push(Change::Release {
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
        let at = url.clone();
        let shade = color.to_string();
        let extra = |d: &mut StepData| {
            d.url = Some(at);
            d.color = Some(shade);
        };
        self.step("health", extra, || {
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
        let Ok(helm) = helm_for(self.project) else {
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
            let at = release.clone();
            if let Err(e) = self.record("retire", ok, detail, |d| d.release = Some(at)) {
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
        let Some(command) = self.env.migrations.as_ref().map(|c| c.command.clone()) else {
            return Err(Failure::Step(format!(
                "migration {} is pending but \"{}\" has no `migrations` block to run it",
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
        let result = self.step(
            "migration",
            |d| {
                d.migration = Some(m.id.clone());
                d.sha256 = Some(m.sha256.clone());
                d.phase = m.phase;
            },
            || {
                health::run_command(&dir, &argv, Duration::from_secs(3600))
                    .map(|_| format!("ran {id}"))
                    .map_err(|e| e.to_string())
            },
        );
        if !matches!(result, Err(Failure::Store(_))) {
            self.changes.push(Change::Migration {
                id: m.id.clone(),
                phase: m.phase.unwrap_or(Phase::Expand),
                completed: result.is_ok(),
            });
        }
        result?;
        self.deployed.migrations.push(m.id.clone());
        Ok(())
    }

    fn verify_health(&mut self) -> Result<(), Failure> {
        let dir = self.project.dir().to_path_buf();
        if let Some(mut h) = self.env.health.clone() {
            if let Some(color) = self.deployed.colors.values().next() {
                h.url = h.url.replace("{color}", color);
            }
            let url = h.url.clone();
            self.step(
                "health",
                |d| d.url = Some(url),
                || {
                    health::wait_healthy(&h.url, h.expect_status, h.timeout, h.interval)
                        .map(|n| {
                            format!(
                                "{} answered {} after {n} attempt(s)",
                                h.url, h.expect_status
                            )
                        })
                        .map_err(|e| e.to_string())
                },
            )?;
        }
        if let Some(s) = self.env.smoke_test.clone() {
            self.step(
                "smoke_test",
                |_| {},
                || {
                    health::run_command(&dir, &s.command, s.timeout)
                        .map(|_| format!("`{}` passed", s.command.join(" ")))
                        .map_err(|e| e.to_string())
                },
            )?;
        }
        if let Some(m) = self.env.monitor.clone() {
            self.step(
                "monitor",
                |d| d.window_secs = Some(m.window.as_secs()),
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
        self.lock
            .still_held()
            .map_err(|source| WorkflowError::LockLost {
                environment: self.env.name.clone(),
                when: when.to_string(),
                source: Box::new(source),
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
        self.deployed.terraform_config = super::tfconfig::read(self.bundle)
            .ok()
            .flatten()
            .map(|s| s.fingerprint.digest);
        // Only a health check verifies a deployment; without one it is unverified.
        let health = if self.env.health.is_some() {
            Health::Healthy
        } else {
            Health::Unverified
        };
        let finish = ApplyFinishData {
            status: ApplyStatus::Succeeded,
            healthy: health == Health::Healthy,
            health: Some(health),
            apply_seq: Some(self.apply_seq),
            deployed: Some(self.deployed.clone()),
            failure: None,
        };
        self.project.log(
            &self.env.name,
            &self.bundle.digest,
            EntryData::ApplyFinish(finish),
        )?;
        super::post_deploy::after_success(self.project, self.env, self.bundle);
        Ok(Applied {
            digest: self.bundle.digest.clone(),
            environment: self.env.name.clone(),
            status: ApplyStatus::Succeeded,
            steps: self.steps,
            failure: None,
            undone: Undone::default(),
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
        let undone = super::undo::undo(
            self.project,
            self.env,
            self.bundle,
            self.last_good.as_deref(),
            &self.changes,
        )?;
        let status = if self.changes.is_empty() {
            ApplyStatus::Failed
        } else if undone.complete() {
            ApplyStatus::RolledBack
        } else {
            ApplyStatus::RollbackFailed
        };
        if !self.changes.is_empty() {
            let record = RollbackData {
                status: StepStatus::from_ok(status == ApplyStatus::RolledBack),
                reason: Some(message.clone()),
                from: None,
                // History reads these: what runs now, how it answered, what helm holds.
                restored: undone.restored.clone(),
                steps: super::rollback::rollback_steps(&undone.steps),
                not_rolled_back: Vec::new(),
                undone: undone.undone.clone(),
                kept: undone.kept.clone(),
                not_undone: undone.not_undone.clone(),
                health: undone.health,
                live: undone.live.clone(),
                approval: None,
                apply_seq: Some(self.apply_seq),
            };
            self.project.log(
                &self.env.name,
                &self.bundle.digest,
                EntryData::Rollback(record),
            )?;
        }
        let finish = ApplyFinishData {
            status,
            healthy: false,
            health: None,
            apply_seq: Some(self.apply_seq),
            deployed: None,
            failure: Some(message.clone()),
        };
        self.project.log(
            &self.env.name,
            &self.bundle.digest,
            EntryData::ApplyFinish(finish),
        )?;
        let title = match status {
            ApplyStatus::Failed => "deploy failed before changing anything",
            ApplyStatus::RolledBack => "deploy failed, rolled back",
            _ => "deploy failed, rollback incomplete: manual action needed",
        };
        let mut details = vec![format!("failed: {message}")];
        details.extend(undone.undone.iter().map(|u| format!("undone: {u}")));
        details.extend(undone.kept.iter().map(|k| format!("kept: {k}")));
        details.extend(undone.not_undone.iter().map(|n| format!("NOT undone: {n}")));
        if let Some(h) = undone.health {
            details.push(format!("after the rollback: {}", h.as_str()));
        }
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
        let incident = IncidentData {
            what: title.to_string(),
            details,
        };
        self.project.log(
            &self.env.name,
            &self.bundle.digest,
            EntryData::Incident(incident),
        )?;
        super::post_deploy::notify(
            self.project,
            self.env,
            &format!(
                ":x: {} {}: {title} ({message}){}",
                self.project.config.project,
                self.env.name,
                account(&undone)
            ),
            json!({
                "event": "deploy_failed",
                "environment": self.env.name,
                "digest": self.bundle.digest,
                "status": status,
                "failure": message,
                "undone": undone.undone,
                "kept": undone.kept,
                "not_undone": undone.not_undone,
            }),
        );
        Ok(Applied {
            digest: self.bundle.digest.clone(),
            environment: self.env.name.clone(),
            status,
            steps: self.steps,
            failure: Some(message),
            undone,
        })
    }
}

/// `; undone: ...; kept: ...; NOT undone: ...` for one-line messages.
fn account(u: &Undone) -> String {
    let mut out = String::new();
    for (label, list) in [
        ("undone", &u.undone),
        ("kept", &u.kept),
        ("NOT undone", &u.not_undone),
    ] {
        if !list.is_empty() {
            out.push_str(&format!("; {label}: {}", list.join("; ")));
        }
    }
    out
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
