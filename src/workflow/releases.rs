//! Helm releases in the workflow: what `plan` renders, how `apply` deploys
//! them by strategy, and how they are put back.
//!
//! Rolling: `helm upgrade --install --atomic --wait` of the release itself.
//!
//! Blue-green: the chart serves two roles, chosen by values opsdeploy sets —
//! `opsdeploy.role=workload` with `opsdeploy.color=blue|green` renders the
//! workload labelled with its colour, `opsdeploy.role=traffic` with
//! `opsdeploy.activeColor=…` renders the Service whose selector picks a colour.
//! A deploy installs the new colour as release `NAME-COLOR` beside the live
//! one, checks it, switches traffic by upgrading release `NAME`, watches the
//! monitor window, and only then retires the old colour (uninstalled with its
//! history kept, so `opsdeploy rollback` can bring it back).

use std::path::Path;

use policy_sdk::helm::Release;

use super::tools::helm_for;
use super::{Project, Stage, WorkflowError};
use crate::adapters::helm::{HelmError, ReleaseSpec, Rendered, merged_values, parse_manifests};
use crate::config::{Environment, HelmRelease};
use crate::store::bundle::BundleBuilder;
use crate::store::summary::ReleaseSummary;

/// The colour that is not `live` (blue when nothing is live yet).
pub fn other_color(live: Option<&str>) -> &'static str {
    if live == Some("blue") {
        "green"
    } else {
        "blue"
    }
}

/// How a release is installed: as configured, plus opsdeploy's values.
pub fn spec(release: &HelmRelease, name: String, extra: &[(&str, &str)]) -> ReleaseSpec {
    let mut set = release.set.clone();
    set.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    ReleaseSpec {
        name,
        chart: release.chart.clone(),
        namespace: release.namespace.clone(),
        version: release.version.clone(),
        values_files: release.values.clone(),
        set,
        timeout: release.timeout,
    }
}

pub fn workload_name(release: &HelmRelease, color: &str) -> String {
    format!("{}-{color}", release.name)
}

/// The chart's version: the `version` configured, else a local chart's Chart.yaml.
pub fn chart_version(project_dir: &Path, release: &HelmRelease) -> Option<String> {
    if release.version.is_some() {
        return release.version.clone();
    }
    let text = std::fs::read_to_string(project_dir.join(&release.chart).join("Chart.yaml")).ok()?;
    let chart: serde_json::Value = serde_saphyr::from_str(&text).ok()?;
    chart["version"].as_str().map(String::from)
}

/// A release as rendered at plan time, owned until the input document is built.
pub struct Planned {
    pub config: HelmRelease,
    pub chart_version: Option<String>,
    pub values: serde_json::Value,
    pub manifests: Vec<Rendered>,
}

impl Planned {
    pub fn as_input(&self) -> Release<'_> {
        Release {
            release: self.config.name.as_str().into(),
            chart: self.config.chart.as_str().into(),
            chart_version: self.chart_version.as_deref().map(Into::into),
            app_version: None,
            namespace: self.config.namespace.as_str().into(),
            values_files: self
                .config
                .values
                .iter()
                .map(|p| p.display().to_string().into())
                .collect(),
            values: None,
            manifests: self.manifests.iter().map(Rendered::as_input).collect(),
        }
    }

    pub fn summary(&self) -> ReleaseSummary {
        ReleaseSummary {
            release: self.config.name.clone(),
            chart: self.config.chart.clone(),
            version: self.chart_version.clone(),
            namespace: self.config.namespace.clone(),
            manifests: self.manifests.len(),
        }
    }
}

/// Renders every release with `helm template` into the bundle.
pub fn render(
    project: &Project,
    env: &Environment,
    builder: &mut BundleBuilder,
) -> Result<Vec<Planned>, WorkflowError> {
    if env.helm.is_empty() {
        return Ok(Vec::new());
    }
    let helm = helm_for(project)?;
    let fail = |e| WorkflowError::tool(Stage::HelmRender, e);
    let mut out = Vec::new();
    for r in &env.helm {
        // Rendered as the workload it deploys; blue-green adds its colour at apply.
        let s = spec(r, r.name.clone(), &[]);
        let yaml = helm
            .template(&s)
            .map_err(|e| render_error(project.dir(), e))?;
        let manifests = parse_manifests(&r.name, &yaml).map_err(fail)?;
        builder.add_file(&format!("helm/{}.yaml", r.name), yaml.as_bytes())?;
        let values = merged_values(project.dir(), &s).map_err(fail)?;
        builder.add_file(
            &format!("helm/{}.values.json", r.name),
            serde_json::to_string_pretty(&values)
                .expect("values serialize")
                .as_bytes(),
        )?;
        out.push(Planned {
            config: r.clone(),
            chart_version: chart_version(project.dir(), r),
            values,
            manifests,
        });
    }
    Ok(out)
}

/// A chart that does not render, pointed at the template Helm names: a file
/// of the project when the chart is a local directory.
fn render_error(project_dir: &Path, err: HelmError) -> WorkflowError {
    let HelmError::Render {
        chart,
        template: Some(template),
        ..
    } = &err
    else {
        return WorkflowError::tool(Stage::HelmRender, err);
    };
    let template = match template.split_once('/') {
        Some((_, inside)) if project_dir.join(chart).is_dir() => {
            format!("{}/{inside}", chart.trim_end_matches('/'))
        }
        _ => template.clone(),
    };
    WorkflowError::ChartDoesNotRender {
        template,
        source: err,
    }
}

/// The releases section for the input document, with merged values.
pub fn input_section(planned: &[Planned]) -> serde_json::Value {
    let releases: Vec<serde_json::Value> = planned
        .iter()
        .map(|p| {
            let mut v = serde_json::to_value(p.as_input()).expect("release serializes");
            v["values"] = p.values.clone();
            v
        })
        .collect();
    serde_json::Value::Array(releases)
}
