//! Helm: render (`template`), deploy (`upgrade --install --atomic --wait`),
//! inspect (`history`) and undo (`rollback`, `uninstall`) releases.

use std::path::{Path, PathBuf};
use std::time::Duration;

use policy_sdk::helm::Manifest;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::process::{Tool, ToolError};

#[derive(Debug, thiserror::Error)]
pub enum HelmError {
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error(
        "helm template of release {release} rendered a manifest that is not valid YAML ({source_file}): {reason}"
    )]
    BadManifest {
        release: String,
        source_file: String,
        reason: String,
    },
    #[error("`helm {command}` printed output that is not the JSON helm writes: {reason}")]
    BadOutput { command: String, reason: String },
    #[error("values file {path} is not valid YAML: {reason}")]
    BadValues { path: PathBuf, reason: String },
    #[error("chart {chart} of helm release {release} does not render: {message}")]
    Render {
        release: String,
        chart: String,
        /// The template Helm names, as it names it: `CHART/templates/FILE[:LINE[:COL]]`.
        template: Option<String>,
        message: String,
    },
}

/// One release as configured, with the values opsdeploy adds (blue-green colour).
#[derive(Debug, Clone)]
pub struct ReleaseSpec {
    pub name: String,
    pub chart: String,
    pub namespace: String,
    pub version: Option<String>,
    pub values_files: Vec<PathBuf>,
    pub set: Vec<(String, String)>,
    pub timeout: Duration,
}

impl ReleaseSpec {
    fn value_args(&self, args: &mut Vec<String>) {
        args.extend(["--namespace".into(), self.namespace.clone()]);
        if let Some(v) = &self.version {
            args.extend(["--version".into(), v.clone()]);
        }
        for f in &self.values_files {
            args.extend(["--values".into(), f.display().to_string()]);
        }
        for (k, v) in &self.set {
            args.extend(["--set".into(), format!("{k}={v}")]);
        }
    }
}

/// An entry of `helm history -o json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Revision {
    pub revision: u64,
    #[serde(default)]
    pub updated: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub chart: String,
    #[serde(default)]
    pub app_version: String,
    #[serde(default)]
    pub description: String,
}

/// The helm binary and the project directory charts are relative to.
pub struct Helm {
    tool: Tool,
    dir: PathBuf,
}

/// Rendering and listing are quick; deploys use the release's own timeout.
const QUICK: Duration = Duration::from_secs(120);

impl Helm {
    pub fn new(binary: Option<&Path>, project_dir: &Path) -> Result<Self, HelmError> {
        Ok(Helm {
            tool: Tool::find("helm", "tools.helm", binary)?,
            dir: project_dir.to_path_buf(),
        })
    }

    pub fn version(&self) -> Result<String, HelmError> {
        let out = self.tool.run(
            Some(&self.dir),
            &["version".into(), "--short".into()],
            QUICK,
        )?;
        Ok(out.stdout_text().trim().to_string())
    }

    /// `helm template`: the manifests the release would apply, as rendered YAML.
    pub fn template(&self, spec: &ReleaseSpec) -> Result<String, HelmError> {
        let mut args = vec!["template".into(), spec.name.clone(), spec.chart.clone()];
        spec.value_args(&mut args);
        let out = self.tool.run_status(Some(&self.dir), &args, QUICK)?;
        if out.code != 0 {
            let message = helm_message(&String::from_utf8_lossy(&out.stderr))
                .unwrap_or_else(|| super::process::summarize(&out.stderr, &out.stdout, out.code));
            return Err(HelmError::Render {
                release: spec.name.clone(),
                chart: spec.chart.clone(),
                template: template_named(&message),
                message,
            });
        }
        Ok(out.stdout_text())
    }

    /// `helm upgrade --install --atomic --wait --timeout`: helm itself undoes a
    /// failed upgrade before returning.
    pub fn upgrade_install(&self, spec: &ReleaseSpec) -> Result<(), HelmError> {
        let mut args = vec![
            "upgrade".into(),
            "--install".into(),
            spec.name.clone(),
            spec.chart.clone(),
            "--atomic".into(),
            "--wait".into(),
            "--timeout".into(),
            format!("{}s", spec.timeout.as_secs().max(1)),
        ];
        spec.value_args(&mut args);
        // Helm's own deadline, plus room to roll back atomically.
        self.tool
            .run(Some(&self.dir), &args, spec.timeout * 2 + QUICK)?;
        Ok(())
    }

    /// `helm history -o json`; a release that does not exist has none.
    pub fn history(&self, release: &str, namespace: &str) -> Result<Vec<Revision>, HelmError> {
        let args = vec![
            "history".into(),
            release.to_string(),
            "--namespace".into(),
            namespace.to_string(),
            "--output".into(),
            "json".into(),
        ];
        let out = self.tool.run_status(Some(&self.dir), &args, QUICK)?;
        if out.code != 0 {
            let stderr = String::from_utf8_lossy(&out.stderr);
            if stderr.contains("release: not found") {
                return Ok(Vec::new());
            }
            return Err(ToolError::Failed {
                command: format!("helm history {release}"),
                summary: super::process::summarize(&out.stderr, &out.stdout, out.code),
            }
            .into());
        }
        serde_json::from_slice(&out.stdout).map_err(|e| HelmError::BadOutput {
            command: format!("history {release}"),
            reason: e.to_string(),
        })
    }

    /// The revision currently deployed, if any.
    pub fn deployed_revision(
        &self,
        release: &str,
        namespace: &str,
    ) -> Result<Option<u64>, HelmError> {
        Ok(self
            .history(release, namespace)?
            .iter()
            .rev()
            .find(|r| r.status == "deployed")
            .map(|r| r.revision))
    }

    pub fn rollback(
        &self,
        release: &str,
        namespace: &str,
        revision: u64,
        timeout: Duration,
    ) -> Result<(), HelmError> {
        let args = vec![
            "rollback".into(),
            release.to_string(),
            revision.to_string(),
            "--namespace".into(),
            namespace.to_string(),
            "--wait".into(),
            "--timeout".into(),
            format!("{}s", timeout.as_secs().max(1)),
        ];
        self.tool.run(Some(&self.dir), &args, timeout * 2 + QUICK)?;
        Ok(())
    }

    /// Removes a release, keeping its history so `rollback` can bring it back.
    pub fn uninstall(
        &self,
        release: &str,
        namespace: &str,
        timeout: Duration,
    ) -> Result<(), HelmError> {
        let args = vec![
            "uninstall".into(),
            release.to_string(),
            "--namespace".into(),
            namespace.to_string(),
            "--keep-history".into(),
            "--wait".into(),
            "--timeout".into(),
            format!("{}s", timeout.as_secs().max(1)),
        ];
        self.tool.run(Some(&self.dir), &args, timeout * 2 + QUICK)?;
        Ok(())
    }
}

/// A rendered Kubernetes object, owned; [`Rendered::as_input`] lends it to
/// the input document's model.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub source: Option<String>,
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    pub object: Box<RawValue>,
}

impl Rendered {
    pub fn as_input(&self) -> Manifest<'_> {
        Manifest {
            source: self.source.as_deref().map(Into::into),
            api_version: self.api_version.as_str().into(),
            kind: self.kind.as_str().into(),
            name: self.name.as_str().into(),
            namespace: self.namespace.as_deref().map(Into::into),
            object: &self.object,
        }
    }

    pub fn display_name(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }
}

/// The error helm printed: the `Error:` line and the indented lines that
/// continue it (template errors span several), as one line.
fn helm_message(stderr: &str) -> Option<String> {
    let mut lines = stderr.lines().skip_while(|l| !l.starts_with("Error:"));
    let first = lines.next()?.trim_start_matches("Error:");
    let rest = lines.take_while(|l| l.starts_with([' ', '\t']));
    let words: Vec<&str> = std::iter::once(first)
        .chain(rest)
        .flat_map(str::split_whitespace)
        .collect();
    Some(words.join(" "))
}

/// The first template a helm error names (`app/templates/deployment.yaml:30:20`
/// in `execution error at (app/templates/deployment.yaml:30:20): …`).
fn template_named(message: &str) -> Option<String> {
    message
        .split(|c: char| c.is_whitespace() || "()\"<>".contains(c))
        .map(|token| token.trim_end_matches([':', ',']))
        .find(|token| token.contains("/templates/"))
        .map(str::to_string)
}

/// Splits `helm template` output into documents and reads each one; the
/// `# Source:` comment helm writes above a document names its template.
pub fn parse_manifests(release: &str, yaml: &str) -> Result<Vec<Rendered>, HelmError> {
    let mut out = Vec::new();
    for doc in split_documents(yaml) {
        let source = doc
            .lines()
            .find_map(|l| l.trim().strip_prefix("# Source: "))
            .map(|s| s.trim().to_string());
        let bad = |reason: String| HelmError::BadManifest {
            release: release.to_string(),
            source_file: source.clone().unwrap_or_else(|| "unknown template".into()),
            reason,
        };
        let value: serde_json::Value =
            serde_saphyr::from_str(doc).map_err(|e| bad(e.to_string()))?;
        if value.is_null() {
            continue; // a document of comments only (an empty template)
        }
        let field = |path: &[&str]| {
            path.iter()
                .try_fold(&value, |v, k| v.get(k))
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        let kind = field(&["kind"]).ok_or_else(|| bad("it has no `kind`".into()))?;
        let api_version =
            field(&["apiVersion"]).ok_or_else(|| bad("it has no `apiVersion`".into()))?;
        let name =
            field(&["metadata", "name"]).ok_or_else(|| bad("it has no `metadata.name`".into()))?;
        out.push(Rendered {
            source: source.clone(),
            api_version,
            kind,
            name,
            namespace: field(&["metadata", "namespace"]),
            object: RawValue::from_string(value.to_string()).expect("serde_json output is JSON"),
        });
    }
    Ok(out)
}

fn split_documents(yaml: &str) -> Vec<&str> {
    let mut docs = Vec::new();
    let mut start = 0;
    let mut offset = 0;
    for line in yaml.split_inclusive('\n') {
        if line.trim_end() == "---" || line.starts_with("--- ") {
            docs.push(&yaml[start..offset]);
            start = offset + line.len();
        }
        offset += line.len();
    }
    docs.push(&yaml[start..]);
    docs.into_iter().filter(|d| !d.trim().is_empty()).collect()
}

/// Merged values of the values files (later files win, maps merged deeply)
/// and `--set` pairs (as strings), as helm would compute them for policies.
pub fn merged_values(
    project_dir: &Path,
    spec: &ReleaseSpec,
) -> Result<serde_json::Value, HelmError> {
    let mut merged = serde_json::Value::Object(Default::default());
    for f in &spec.values_files {
        let path = project_dir.join(f);
        let text = std::fs::read_to_string(&path).map_err(|e| HelmError::BadValues {
            path: f.clone(),
            reason: e.to_string(),
        })?;
        let value: serde_json::Value =
            serde_saphyr::from_str(&text).map_err(|e| HelmError::BadValues {
                path: f.clone(),
                reason: e.to_string(),
            })?;
        merge(&mut merged, value);
    }
    for (k, v) in &spec.set {
        let mut node = &mut merged;
        for part in k.split('.') {
            if !node.is_object() {
                *node = serde_json::Value::Object(Default::default());
            }
            node = node
                .as_object_mut()
                .expect("made an object above")
                .entry(part.to_string())
                .or_insert(serde_json::Value::Null);
        }
        *node = serde_json::Value::String(v.clone());
    }
    Ok(merged)
}

fn merge(into: &mut serde_json::Value, from: serde_json::Value) {
    match (into, from) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RENDERED: &str = "---\n# Source: api/templates/service.yaml\napiVersion: v1\nkind: Service\nmetadata:\n  name: api\nspec:\n  selector:\n    app: api\n---\n# Source: api/templates/empty.yaml\n# nothing rendered\n---\n# Source: api/templates/deployment.yaml\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\n  namespace: staging\nspec:\n  template:\n    spec:\n      containers:\n        - name: api\n          image: registry.example.com/api:1.2.0\n          env:\n            - name: DB_PASSWORD\n              valueFrom:\n                secretKeyRef: {name: db, key: password}\n";

    #[test]
    fn rendered_documents_become_typed_manifests_with_their_source() {
        let m = parse_manifests("api", RENDERED).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].display_name(), "Service/api");
        assert_eq!(m[0].source.as_deref(), Some("api/templates/service.yaml"));
        assert_eq!(m[1].namespace.as_deref(), Some("staging"));
        let obj = m[1].as_input().object_value();
        assert_eq!(
            obj["spec"]["template"]["spec"]["containers"][0]["image"],
            "registry.example.com/api:1.2.0"
        );
    }

    #[test]
    fn a_manifest_that_does_not_parse_names_its_template() {
        let bad = "---\n# Source: api/templates/broken.yaml\nkind: [unclosed\n";
        let err = parse_manifests("api", bad).unwrap_err();
        assert!(
            err.to_string().contains("api/templates/broken.yaml"),
            "{err}"
        );
        let nameless = "---\n# Source: api/templates/x.yaml\napiVersion: v1\nkind: ConfigMap\n";
        assert!(
            parse_manifests("api", nameless)
                .unwrap_err()
                .to_string()
                .contains("metadata.name")
        );
    }

    #[test]
    fn a_render_error_names_the_template_helm_names() {
        let required = "Error: execution error at (app/templates/deployment.yaml:30:20): image.digest is required\n";
        let message = helm_message(required).unwrap();
        assert_eq!(
            message,
            "execution error at (app/templates/deployment.yaml:30:20): image.digest is required"
        );
        assert_eq!(
            template_named(&message).as_deref(),
            Some("app/templates/deployment.yaml:30:20")
        );
        // Helm 4 spreads an execution error over indented lines.
        let nil = "Error: template: app/templates/cm.yaml:6:81\n  executing \"app/templates/cm.yaml\" at <.Values.image.digest>:\n    nil pointer evaluating interface {}.digest\nUse --debug flag to render out invalid YAML\n";
        let message = helm_message(nil).unwrap();
        assert_eq!(
            message,
            "template: app/templates/cm.yaml:6:81 executing \"app/templates/cm.yaml\" at <.Values.image.digest>: nil pointer evaluating interface {}.digest"
        );
        assert_eq!(
            template_named(&message).as_deref(),
            Some("app/templates/cm.yaml:6:81")
        );
        let yaml =
            "Error: YAML parse error on app/templates/bad.yaml: error converting YAML to JSON\n";
        assert_eq!(
            template_named(&helm_message(yaml).unwrap()).as_deref(),
            Some("app/templates/bad.yaml")
        );
        assert_eq!(template_named("path \"charts/x\" not found"), None);
        assert_eq!(helm_message("no error line\n"), None);
    }

    #[test]
    fn values_merge_like_helm() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.yaml"),
            "image: {tag: '1', repo: r}\nreplicas: 1\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("b.yaml"), "image: {tag: '2'}\n").unwrap();
        let spec = ReleaseSpec {
            name: "api".into(),
            chart: "c".into(),
            namespace: "n".into(),
            version: None,
            values_files: vec!["a.yaml".into(), "b.yaml".into()],
            set: vec![("opsdeploy.color".into(), "green".into())],
            timeout: Duration::from_secs(1),
        };
        let v = merged_values(dir.path(), &spec).unwrap();
        assert_eq!(v["image"]["tag"], "2");
        assert_eq!(v["image"]["repo"], "r");
        assert_eq!(v["opsdeploy"]["color"], "green");
    }
}
