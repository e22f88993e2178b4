//! Returning terraform to an earlier deployment: the configuration that
//! deployment's bundle keeps (`tfconfig`) is written to a scratch directory,
//! planned there against the live state, judged by the environment's
//! policies like any plan, and applied. The live state stays where it is: a
//! root module without a backend (or with the local one) gets a backend
//! pointing at the real state file, any other backend reads the same remote
//! state it always does. The project's own files are never touched.

use std::path::{Path, PathBuf};

use policy_sdk::Section;

use super::plan::terraform_summary;
use super::policies;
use super::tfconfig::{self, CONFIG_DIR, Snapshot};
use super::{History, Project, Stage, WorkflowError, tools};
use crate::adapters::terraform::PlanJson;
use crate::adapters::terraform::{Terraform, TerraformOptions, parse_plan_json};
use crate::config::Environment;
use crate::input::InputDocument;
use crate::store::EntryData;
use crate::store::bundle::Bundle;
use crate::store::records::{EvaluatedAt, PolicyResultsData};
use crate::store::results::Decision;
use crate::store::summary::TerraformCounts;

/// Where terraform goes back to.
pub enum Target<'a> {
    /// The configuration this deployment's bundle keeps.
    Deployment(&'a Bundle),
    /// Nothing: what this bundle's configuration manages is destroyed (a
    /// first deploy undone, when nothing existed before it).
    Nothing(&'a Bundle),
}

/// A plan that returns the live infrastructure to an earlier configuration.
pub struct ReturnPlan {
    /// The scratch directory; removed when the plan is dropped.
    _work: tempfile::TempDir,
    tf: Terraform,
    planfile: PathBuf,
    pub plan_json: PlanJson,
    /// Counts by action, as a plan's summary has them.
    pub counts: TerraformCounts,
}

impl ReturnPlan {
    /// Whether applying it changes anything.
    pub fn changes(&self) -> bool {
        self.counts.changes_anything()
    }

    /// `0 to add, 1 to change, 0 to replace, 0 to destroy`.
    pub fn summary(&self) -> String {
        self.counts.to_string()
    }

    /// Applies exactly this plan.
    pub fn apply(&self) -> Result<(), String> {
        self.tf.apply(&self.planfile).map_err(|e| e.to_string())
    }
}

fn refuse(reason: String, digest: &str) -> WorkflowError {
    WorkflowError::ReturnImpossible {
        digest: digest.to_string(),
        reason,
    }
}

/// Plans the return to `target` against the live state.
pub fn plan(
    project: &Project,
    env: &Environment,
    target: Target,
) -> Result<ReturnPlan, WorkflowError> {
    let (bundle, destroy) = match target {
        Target::Deployment(b) => (b, false),
        Target::Nothing(b) => (b, true),
    };
    let snapshot = tfconfig::read(bundle)?.ok_or_else(|| {
        refuse(
            format!(
                "plan bundle {} keeps no copy of its terraform configuration (it was made by an older opsdeploy)",
                super::short(&bundle.digest)
            ),
            &bundle.digest,
        )
    })?;
    let work = tempfile::Builder::new()
        .prefix("opsdeploy-return-")
        .tempdir()
        .map_err(|e| {
            refuse(
                format!("could not create a scratch directory: {e}"),
                &bundle.digest,
            )
        })?;
    for f in &snapshot.files {
        let bytes = bundle.read(&format!("{CONFIG_DIR}/{}", f.path))?;
        let to = work.path().join(&f.path);
        crate::fsutil::write_atomic(&to, &bytes).map_err(|e| {
            refuse(
                format!("could not write {}: {e}", to.display()),
                &bundle.digest,
            )
        })?;
    }
    let root = work.path().join(&snapshot.dir);
    let live_root = project.config.resolve(Path::new(&snapshot.dir));
    point_at_live_state(&root, &live_root).map_err(|e| {
        refuse(
            format!("could not write the backend override: {e}"),
            &bundle.digest,
        )
    })?;
    let tf = Terraform::new(options(project, env, &snapshot, root.clone()))
        .map_err(|e| WorkflowError::tool(Stage::FindTerraform, e))?;
    let fail = |e| WorkflowError::tool(Stage::TerraformReturn, e);
    tf.init().map_err(fail)?;
    let planfile = work.path().join("return.tfplan");
    tf.plan_to(&planfile, destroy).map_err(fail)?;
    let bytes = tf.show_json(&planfile).map_err(fail)?;
    let plan_json = parse_plan_json("terraform show -json (return plan)", bytes)
        .map_err(|e| WorkflowError::tool(Stage::TerraformReturn, e))?;
    Ok(ReturnPlan {
        counts: terraform_summary(&plan_json),
        plan_json,
        tf,
        planfile,
        _work: work,
    })
}

fn options(project: &Project, env: &Environment, s: &Snapshot, dir: PathBuf) -> TerraformOptions {
    TerraformOptions {
        binary: env
            .terraform
            .as_ref()
            .and_then(|t| t.binary.clone())
            .or_else(|| project.config.tools.terraform.clone()),
        dir,
        workspace: s.workspace.clone(),
        var_files: s.var_files.iter().map(PathBuf::from).collect(),
        vars: s.vars.clone(),
    }
}

/// The backend of the root module in `dir`: `None` when it declares none.
fn declared_backend(dir: &Path) -> Option<(String, Option<String>)> {
    let entries = std::fs::read_dir(dir).ok()?;
    for e in entries.flatten() {
        let path = e.path();
        let name = path.file_name()?.to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if name.ends_with(".tf.json") {
            let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            if let Some(backends) = json["terraform"]["backend"].as_object() {
                return backends.keys().next().map(|k| (k.clone(), None));
            }
            if !json["terraform"]["cloud"].is_null() {
                return Some(("cloud".into(), None));
            }
        } else if name.ends_with(".tf") {
            let Ok(body) = hcl::parse(&text) else {
                continue;
            };
            for t in body.blocks().filter(|b| b.identifier() == "terraform") {
                for b in t.body().blocks() {
                    match b.identifier() {
                        "backend" => {
                            let kind = b.labels().first().map(|l| l.as_str().to_string());
                            let path = b.body().attributes().find_map(|a| match a.expr() {
                                hcl::Expression::String(s) if a.key() == "path" => Some(s.clone()),
                                _ => None,
                            });
                            return Some((kind.unwrap_or_default(), path));
                        }
                        "cloud" => return Some(("cloud".into(), None)),
                        _ => {}
                    }
                }
            }
        }
    }
    None
}

/// Makes the copy in `root` read and write the live state of `live_root`:
/// the local backend's files there (a remote backend already names its state).
fn point_at_live_state(root: &Path, live_root: &Path) -> std::io::Result<()> {
    let (file, path) = match declared_backend(root) {
        None => (
            "opsdeploy_return_backend.tf",
            "terraform.tfstate".to_string(),
        ),
        // An override file replaces the declared backend block (terraform's override rules).
        Some((kind, path)) if kind == "local" => (
            "opsdeploy_return_override.tf",
            path.unwrap_or_else(|| "terraform.tfstate".into()),
        ),
        Some(_) => return Ok(()),
    };
    let quoted = |p: &Path| serde_json::to_string(&p.display().to_string()).expect("a string");
    let text = format!(
        "terraform {{\n  backend \"local\" {{\n    path          = {}\n    workspace_dir = {}\n  }}\n}}\n",
        quoted(&live_root.join(path)),
        quoted(&live_root.join("terraform.tfstate.d")),
    );
    std::fs::write(root.join(file), text)
}

/// The first policy that blocks a return, and its first denial.
pub fn blocking(decisions: &[Decision]) -> Option<(&str, String)> {
    let d = decisions.iter().find(|d| d.blocks)?;
    let why = d
        .violations
        .iter()
        .find(|v| v.severity == policy_sdk::Severity::Deny)
        .map(|v| v.message.clone())
        .unwrap_or_else(|| "the policy could not run".into());
    Some((&d.policy, why))
}

/// The environment's policies on the return plan, in the context `context`
/// (the bundle whose deploy is undone, or the one returned to) was planned
/// in: its environment, approvals, gates and deployments — only the change
/// differs. Overrides do not carry over: they were given for another change.
pub fn judge(
    project: &Project,
    env: &Environment,
    history: &History,
    context: &Bundle,
    plan: &ReturnPlan,
) -> Result<Vec<Decision>, WorkflowError> {
    let input = context.read("input.json")?;
    let planned = InputDocument::from_slice("input.json of the bundle", &input)
        .map_err(|e| WorkflowError::tool(Stage::BundleInput, e))?;
    let mut doc = InputDocument::new(&super::plan::environment_section(
        project,
        env,
        Some(&context.digest),
    ));
    for section in Section::ALL {
        if matches!(
            section,
            Section::Terraform | Section::Helm | Section::Scans | Section::Migrations
        ) {
            continue;
        }
        if let Some(raw) = planned.section(section) {
            doc.set_raw(section, raw.to_owned());
        }
    }
    let dir = env
        .terraform
        .as_ref()
        .map(|t| t.dir.display().to_string())
        .unwrap_or_default();
    doc.set_terraform(&dir, plan.plan_json.clone());
    // With signers, only approvals whose signatures count.
    let (approvals, _) = super::approve::counted_approvals(project, env, history, &context.digest);
    let valid: Vec<_> =
        super::approve::valid_approvals(env, &context.manifest.planned_by, &approvals)
            .into_iter()
            .cloned()
            .collect();
    super::apply::set_approvals(&mut doc, env, context, &valid, &[]);
    let engine = tools::policy_engine()?;
    let loaded = policies::load(&project.config, &engine, &env.name)?;
    let decisions = policies::scrubbed(context, policies::evaluate(&engine, &loaded, &doc, &[]))?;
    let verdicts = PolicyResultsData::of(&decisions, EvaluatedAt::Rollback);
    project.log(
        &env.name,
        &context.digest,
        EntryData::PolicyResults(verdicts),
    )?;
    Ok(decisions)
}
