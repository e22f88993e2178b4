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

    /// The object as a JSON tree; one the policy cannot read fails it.
    pub fn object_value(&self) -> serde_json::Value {
        crate::input::tree(self.object.get(), "a helm manifest")
    }

    /// Every `image` of `containers`, `initContainers` and `ephemeralContainers`
    /// anywhere in the object (Deployments, CronJobs, Pods, ...).
    pub fn container_images(&self) -> Vec<String> {
        let mut out = Vec::new();
        container_images(&self.object_value(), &mut out);
        out
    }
}

fn container_images(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                if matches!(
                    key.as_str(),
                    "containers" | "initContainers" | "ephemeralContainers"
                ) && let Some(list) = v.as_array()
                {
                    for c in list {
                        if let Some(image) = c.get("image").and_then(|i| i.as_str()) {
                            out.push(image.to_string());
                        }
                    }
                } else {
                    container_images(v, out);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| container_images(v, out)),
        _ => {}
    }
}

/// `registry/app:1.2@sha256:…` → (`registry/app`, tag, digest).
pub fn split_reference(reference: &str) -> (&str, Option<&str>, Option<&str>) {
    let (rest, digest) = match reference.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (reference, None),
    };
    // A tag follows the last `:` after the last `/` (a registry port does not count).
    let slash = rest.rfind('/').map_or(0, |i| i + 1);
    match rest[slash..].rfind(':') {
        Some(i) => (&rest[..slash + i], Some(&rest[slash + i + 1..]), digest),
        None => (rest, None, digest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_into_repository_tag_and_digest() {
        assert_eq!(
            split_reference("reg:5000/a/b:1.0@sha256:x"),
            ("reg:5000/a/b", Some("1.0"), Some("sha256:x"))
        );
        assert_eq!(
            split_reference("reg:5000/a/b"),
            ("reg:5000/a/b", None, None)
        );
        assert_eq!(
            split_reference("nginx@sha256:y"),
            ("nginx", None, Some("sha256:y"))
        );
    }
}
