//! `opsdeploy plan ENV`: run the tools, build the input document, evaluate
//! every policy and seal it all in a plan bundle named by its digest.

use std::collections::BTreeMap;

use policy_sdk::Section;
use policy_sdk::input::{Approvals, Deployments, Environment as EnvSection, Git};
use policy_sdk::migration::Phase;
use serde::Serialize;

use super::history::ApplyRecord;
use super::policies;
pub use super::preflight::Warning;
use super::tools::{policy_engine, terraform_for};
use super::{History, Project, Stage, WorkflowError, sources};
use crate::adapters::terraform::PlanJson;
use crate::config::{Environment, effective};
use crate::input::InputDocument;
use crate::report::rollout::PolicyChange;
use crate::store::bundle::{Bundle, BundleBuilder, ConfigHashes, Manifest};
use crate::store::records::{EvaluatedAt, PlanData, PolicyResultsData};
use crate::store::results::{self, Decision, Results};
use crate::store::summary::{MigrationSummary, PlanSummary, TerraformCounts};
use crate::store::{EntryData, now_rfc3339};

/// What `plan` produced.
pub struct Planned {
    pub bundle: Bundle,
    pub results: Results,
    /// Incidents from the continuity file that concern this environment.
    pub incidents: Vec<String>,
    /// What the configuration lacks that the deploy would want (no monitor
    /// window for production, ...): shown, never blocking.
    pub warnings: Vec<Warning>,
    /// How approvals of it are judged (signed by whom, or unsigned), then
    /// what it changes about who signs.
    pub trust: Vec<String>,
    /// Policies whose module is not the one in force at the environment's
    /// last deployment.
    pub policy_changes: Vec<PolicyChange>,
}

impl Planned {
    pub fn blocked(&self) -> bool {
        !self.results.blocking().is_empty()
    }

    /// The plan as a report (no approvals yet), resource findings placed at
    /// their declarations in the project.
    pub fn report(
        &self,
        project_dir: &std::path::Path,
    ) -> Result<crate::report::Report, WorkflowError> {
        let stored = crate::report::bundle::StoredPlan::open(self.bundle.clone())?;
        Ok(stored.report(&[], &[], &self.trust, Some(project_dir))?)
    }

    /// What `plan` and `promote` warn about: production approved on the
    /// honour system.
    pub fn unsigned_warning(&self) -> Option<String> {
        let env = &self.bundle.manifest.environment;
        let unsigned = self.trust.first().map(String::as_str) == Some(super::signing::UNSIGNED);
        (env == "production" && unsigned).then(|| format!("{} for {env}", super::signing::UNSIGNED))
    }

    /// The refusal, when a mandatory policy blocks the plan.
    pub fn refusal(&self) -> Option<WorkflowError> {
        WorkflowError::blocked(&self.bundle.manifest.environment, &self.results)
    }

    /// `plan --format json`.
    pub fn output(&self) -> PlannedOutput<'_> {
        PlannedOutput {
            digest: &self.bundle.digest,
            environment: &self.bundle.manifest.environment,
            manifest: &self.bundle.manifest,
            decisions: &self.results.decisions,
            incidents: &self.incidents,
            approvals: &self.trust,
            policy_changes: &self.policy_changes,
            blocked: self.blocked(),
        }
    }
}

/// `plan --format json`: the sealed bundle's manifest and what each policy decided.
#[derive(Debug, Serialize)]
pub struct PlannedOutput<'a> {
    pub digest: &'a str,
    pub environment: &'a str,
    pub manifest: &'a Manifest,
    pub decisions: &'a [Decision],
    pub incidents: &'a [String],
    /// How approvals of it are judged, then what it changes about who signs.
    pub approvals: &'a [String],
    /// Policies whose module is not the one in force at the environment's
    /// last deployment.
    pub policy_changes: &'a [PolicyChange],
    /// A mandatory policy denies: the plan cannot be applied as it is.
    pub blocked: bool,
}

/// The environment section of the input document.
pub(crate) fn environment_section(
    project: &Project,
    env: &Environment,
    digest: Option<&str>,
) -> EnvSection<'static> {
    EnvSection {
        strategy: (!env.helm.is_empty()).then(|| env.strategy.as_str().into()),
        promote_from: env.promote_from.clone().map(Into::into),
        plan_digest: digest.map(|d| d.to_string().into()),
        rollback_runbook: env
            .rollback
            .as_ref()
            .map(|r| r.runbook.display().to_string().into()),
        allow_unverified: env.promote.allow_unverified,
        ..crate::input::environment_section(&env.name, &project.config.project, now_rfc3339())
    }
}

/// What a deployment record looks like to policies.
fn deployment_section(record: &ApplyRecord) -> policy_sdk::input::Deployment<'static> {
    let deployed = record.deployed().unwrap_or_default();
    policy_sdk::input::Deployment {
        environment: record.environment.clone().into(),
        digest: record.digest.clone().into(),
        at: record
            .finish
            .map(|f| f.at.clone())
            .unwrap_or_default()
            .into(),
        status: record
            .status()
            .map(|s| s.as_str())
            .unwrap_or("interrupted")
            .into(),
        healthy: record.healthy(),
        health: Some(record.finished_health().as_str().into()),
        terraform_config: deployed.terraform_config.map(Into::into),
        images: deployed
            .images
            .into_iter()
            .map(|i| policy_sdk::input::Image {
                reference: i.reference.into(),
                digest: i.digest.map(Into::into),
            })
            .collect(),
        charts: deployed
            .charts
            .into_iter()
            .map(|c| policy_sdk::input::ChartVersion {
                release: c.release.into(),
                chart: c.chart.into(),
                version: c.version.map(Into::into),
            })
            .collect(),
        migrations: deployed.migrations.into_iter().map(Into::into).collect(),
    }
}

pub(crate) fn deployments_section(
    project: &Project,
    history: &History,
    env: &str,
) -> Deployments<'static> {
    let mut by_environment = BTreeMap::new();
    for e in &project.config.environments {
        if let Some(current) = history.current(&e.name) {
            by_environment.insert(e.name.clone().into(), deployment_section(&current));
        }
    }
    Deployments {
        previous: history.current(env).map(|c| deployment_section(&c)),
        by_environment,
    }
}

fn git_section(project: &Project) -> Option<Git<'static>> {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(project.dir())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let revision = git(&["rev-parse", "HEAD"])?;
    Some(Git {
        revision: revision.into(),
        branch: git(&["rev-parse", "--abbrev-ref", "HEAD"]).map(Into::into),
        dirty: git(&["status", "--porcelain"]).is_some_and(|s| !s.is_empty()),
    })
}

/// Where each migration ran, from the audit log, as the migrations reader wants it.
fn ran_on(history: &History) -> crate::adapters::migrations::RanOn {
    history
        .migration_runs()
        .into_iter()
        .map(|(id, runs)| {
            let runs = runs
                .into_iter()
                .map(|r| policy_sdk::migration::Run {
                    release_healthy: Some(history.release_healthy(&r)),
                    environment: r.environment.into(),
                    sha256: r.sha256.into(),
                    bundle: Some(r.bundle.into()),
                    at: Some(r.at.into()),
                })
                .collect();
            (id, runs)
        })
        .collect()
}

/// The project's SDLC state (gates), when it keeps a state file.
fn gates_section(
    project: &Project,
    env: &Environment,
) -> Result<Option<policy_sdk::input::Gates<'static>>, WorkflowError> {
    let files = &project.config.files;
    if !project.config.resolve(&files.state_file).is_file() {
        return Ok(None);
    }
    let state_file = files.state_file.display().to_string();
    let checklist = files.security_checklist.display().to_string();
    let runbook = env
        .rollback
        .as_ref()
        .map(|r| r.runbook.display().to_string());
    let state = crate::adapters::project_state::StateFiles {
        state_file: &state_file,
        security_checklist: project
            .config
            .resolve(&files.security_checklist)
            .is_file()
            .then_some(checklist.as_str()),
        rollback_runbook: runbook.as_deref(),
    };
    crate::adapters::project_state::read_project_state(project.dir(), &state, &env.name)
        .map(Some)
        .map_err(|e| WorkflowError::tool(Stage::ProjectState, e))
}

/// Resource counts by action, and each resource changed, for summaries.
pub(crate) fn terraform_summary(plan: &PlanJson) -> TerraformCounts {
    let n = |action: &str| plan.counts.get(action).copied().unwrap_or(0);
    TerraformCounts {
        add: n("create"),
        change: n("update"),
        replace: n("replace"),
        destroy: n("delete"),
        forget: n("forget"),
        unchanged: n("no-op"),
        drifted: plan.drifted,
        terraform_version: plan.terraform_version.clone(),
        // For the approver: a typed pass over the plan's text, not a tree.
        resources: serde_json::from_str::<policy_sdk::terraform::Plan>(plan.text())
            .map(|p| super::changes::resource_changes(&p))
            .unwrap_or_default(),
    }
}

/// The phase of a migration file that declares none: expand-contract's
/// `default_phase` setting (expand unless it says contract).
pub fn default_phase(config: &crate::config::Config, env: &str) -> Phase {
    config
        .policies_for(env)
        .find(|p| p.name == "expand-contract" && p.source == crate::config::PolicySource::Builtin)
        .and_then(|p| p.settings.as_ref())
        .and_then(|s| s.get("default_phase"))
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or(Phase::Expand)
}

/// Variations of a plan.
#[derive(Debug, Default)]
pub(crate) struct PlanOptions {
    /// `promote FROM TO`: the environment whose deployment this repeats.
    pub(crate) promoted_from: Option<String>,
}

pub fn plan(project: &Project, env_name: &str) -> Result<Planned, WorkflowError> {
    plan_with(project, env_name, &PlanOptions::default())
}

pub(crate) fn plan_with(
    project: &Project,
    env_name: &str,
    opts: &PlanOptions,
) -> Result<Planned, WorkflowError> {
    let env = project.config.require_environment(env_name)?;
    // First: a symlink out of the project stops the plan before any tool reads it.
    let files = sources::collect(&project.config, env)?;
    let warnings = super::preflight::check(project, env)?;
    let history = project.history()?;
    project.store.check_bundle_storage()?;
    let mut builder = BundleBuilder::new(&project.store.bundles_dir())?;
    let mut doc = InputDocument::new(&environment_section(project, env, None));
    let mut summary = PlanSummary::default();
    let mut tool_versions = BTreeMap::new();

    if let Some(tf) = terraform_for(project, env) {
        let tf = tf?;
        let tf_cfg = env.terraform.as_ref().expect("terraform_for checked");
        tracing::info!("terraform plan in {}", tf_cfg.dir.display());
        let fail = |e| WorkflowError::tool(Stage::TerraformPlan, e);
        tf.init().map_err(fail)?;
        let planfile = builder.path().join("tfplan");
        tf.plan(&planfile).map_err(fail)?;
        builder.adopt_file("tfplan")?;
        let json_bytes = tf.show_json(&planfile).map_err(fail)?;
        let plan = crate::adapters::terraform::parse_plan_json("terraform show -json", json_bytes)
            .map_err(|e| WorkflowError::tool(Stage::TerraformPlan, e))?;
        builder.add_file("plan.json", plan.text().as_bytes())?;
        summary.terraform = Some(terraform_summary(&plan));
        if let Ok(v) = tf.version() {
            tool_versions.insert("terraform".to_string(), v);
        }
        // What a later rollback to this deployment plans again.
        let kept = super::tfconfig::keep(project, env, tf_cfg, plan.text(), &mut builder)?;
        doc.set_configured_terraform(
            &tf_cfg.dir.display().to_string(),
            Some(&kept.fingerprint.digest),
            plan,
        );
    }

    let releases = super::releases::render(project, env, &mut builder)?;
    if !releases.is_empty() {
        doc.set(Section::Helm, &super::releases::input_section(&releases));
        summary.helm = Some(releases.iter().map(|r| r.summary()).collect());
        if let Ok(v) = super::tools::helm_for(project).and_then(|h| {
            h.version()
                .map_err(|e| WorkflowError::tool(Stage::FindHelm, e))
        }) {
            tool_versions.insert("helm".to_string(), v);
        }
    }
    if let Some(cfg) = &env.scan {
        let scanned = super::scans::run(&(&project.config).into(), &cfg.into())?;
        for (file, bytes) in &scanned.files {
            builder.add_file(file, bytes)?;
        }
        doc.set_raw(Section::Scans, scanned.section);
        summary.images = Some(scanned.summary);
        if let Some(v) = scanned.trivy_version {
            tool_versions.insert("trivy".to_string(), v);
        }
    }

    if let Some(m) = &env.migrations {
        let ran_on = ran_on(&history);
        let dir = m.dir.display().to_string();
        let mut migrations =
            crate::adapters::migrations::read_migrations(project.dir(), &dir, &ran_on)
                .map_err(|e| WorkflowError::tool(Stage::Migrations, e))?;
        // The phase every migration runs in is decided here, once: apply runs
        // by it and policies judge it from the same input document.
        let default = default_phase(&project.config, &env.name);
        for m in migrations.iter_mut().filter(|m| m.phase.is_none()) {
            m.phase = Some(default);
            m.phase_default = true;
        }
        for mig in &migrations {
            let name = mig.path.rsplit('/').next().unwrap_or(&mig.path).to_string();
            builder.add_file(&format!("migrations/{name}"), mig.sql.as_bytes())?;
        }
        summary.migrations = Some(
            migrations
                .iter()
                .filter(|m| !m.ran_on.iter().any(|r| r.environment == env.name))
                .map(|m| MigrationSummary {
                    id: m.id.to_string(),
                    phase: m.phase,
                })
                .collect(),
        );
        doc.set(Section::Migrations, &migrations);
    }
    if let Some(gates) = gates_section(project, env)? {
        doc.set(Section::Gates, &gates);
    }

    let signers = super::signing::read_planned(project, env)?;
    let trust = super::signing::plan_trust(project, &history, env, signers.as_ref());
    for f in &files {
        builder.add_source(&f.rel, &f.bytes, f.without_generated);
    }
    let project_files: Vec<_> = files.iter().filter_map(|f| f.project_file()).collect();
    doc.set(Section::Files, &project_files);
    doc.set(
        Section::Approvals,
        &Approvals {
            approvals: Vec::new(),
            overrides: Vec::new(),
            planned_by: Some(project.actor.clone().into()),
            required: env.approval.min,
            self_approve: env.approval.self_approve,
            signed: env.approval.signers.is_some(),
        },
    );
    doc.set(
        Section::Deployments,
        &deployments_section(project, &history, &env.name),
    );
    if let Some(git) = git_section(project) {
        doc.set(Section::Git, &git);
    }
    builder.add_file("input.json", &doc.to_json())?;

    let engine = policy_engine()?;
    let loaded = policies::load(&project.config, &engine, &env.name)?;
    tool_versions.insert("opsdeploy".into(), env!("CARGO_PKG_VERSION").into());
    let manifest = Manifest {
        schema: 1,
        project: project.config.project.clone(),
        environment: env.name.clone(),
        created_at: now_rfc3339(),
        planned_by: project.actor.clone(),
        git_revision: doc
            .section(Section::Git)
            .and_then(|g| serde_json::from_str::<serde_json::Value>(g.get()).ok())
            .and_then(|g| g["revision"].as_str().map(String::from)),
        promoted_from: opts.promoted_from.clone(),
        tool_versions,
        files: Vec::new(),
        sources: Vec::new(),
        policies: loaded.iter().map(|l| l.manifest_entry()).collect(),
        summary,
        policies_off: project.config.policies_off_for(&env.name),
        config: Some(ConfigHashes::new(&effective::settings(
            &project.config,
            env,
        ))),
    };

    // No plan digest at plan time: approvals are for the sealed bundle and
    // policies (gates) only demand them at apply, when the digest is known.
    // Scrubbed of what the plan marks sensitive, known from reading it.
    let redactor = doc.redactor();
    // The results are sealed with the rest, so a report can trust them.
    let mut results = Results {
        digest: String::new(),
        evaluated_at: now_rfc3339(),
        decisions: results::scrubbed(&policies::evaluate(&engine, &loaded, &doc, &[]), &redactor),
    };
    builder.add_results(&results)?;
    let bundle = builder.finish(manifest)?;
    results.digest = bundle.digest.clone();
    project.store.publish_bundle(&bundle.dir, &bundle.digest)?;

    let plan = PlanData {
        summary: bundle.manifest.summary.to_string(),
        counts: bundle.manifest.summary.clone(),
        git_revision: bundle.manifest.git_revision.clone(),
        signers,
        policies_off: bundle.manifest.policies_off.clone(),
    };
    project.log(&env.name, &bundle.digest, EntryData::Plan(plan))?;
    let policy_changes = super::rollout::changes_since_deploy(&history, &env.name, &loaded);
    let mut verdicts = PolicyResultsData::of(&results.decisions, EvaluatedAt::Plan);
    // Both hashes: the module evaluated now, and the one in force at the last deploy.
    for v in &mut verdicts.policies {
        if let Some(c) = policy_changes.iter().find(|c| c.policy == v.policy) {
            v.deployed_sha256.clone_from(&c.deployed_sha256);
        }
    }
    project.log(
        &env.name,
        &bundle.digest,
        EntryData::PolicyResults(verdicts),
    )?;
    Ok(Planned {
        trust,
        incidents: super::continuity::incidents_for(project, &env.name),
        bundle,
        results,
        warnings,
        policy_changes,
    })
}
