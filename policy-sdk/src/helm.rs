//! Helm releases as the input document carries them: values and the manifests
//! `helm template` rendered for this deployment.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Release<'a> {
    /// Release name as configured (`helm "api" { ... }`).
    #[serde(borrow)]
    pub release: Cow<'a, str>,
    #[serde(borrow)]
    pub chart: Cow<'a, str>,
    #[serde(borrow, default)]
    pub chart_version: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub app_version: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub namespace: Cow<'a, str>,
    /// Values files in the order given, relative to the project.
    #[serde(borrow, default)]
    pub values_files: Vec<Cow<'a, str>>,
    /// The merged values helm renders with.
    #[serde(borrow, default)]
    pub values: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub manifests: Vec<Manifest<'a>>,
}

/// One rendered Kubernetes object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest<'a> {
    /// Template it came from, e.g. `api/templates/deployment.yaml`.
    #[serde(borrow, default)]
    pub source: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub api_version: Cow<'a, str>,
    #[serde(borrow)]
    pub kind: Cow<'a, str>,
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    #[serde(borrow, default)]
    pub namespace: Option<Cow<'a, str>>,
    /// The whole object as rendered.
    #[serde(borrow)]
    pub object: &'a RawValue,
}

impl Manifest<'_> {
    /// `Kind/name`, the way kubectl names an object.
    pub fn display_name(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }

    pub fn object_value(&self) -> serde_json::Value {
        serde_json::from_str(self.object.get()).unwrap_or(serde_json::Value::Null)
    }
}
