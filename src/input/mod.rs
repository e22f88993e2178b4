//! The input document (schema version 1): one JSON value per deployment, kept
//! as raw JSON per section so each policy gets exactly the sections it reads
//! without re-serializing anything.

use std::collections::BTreeMap;
use std::path::Path;

use policy_sdk::Section;
use policy_sdk::input::SCHEMA_VERSION;
use serde_json::value::RawValue;

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("could not read input document {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("input document {path} is not valid JSON: {source}")]
    Json {
        path: String,
        source: serde_json::Error,
    },
    #[error("input document {path} is not usable: {reason}")]
    Invalid { path: String, reason: String },
}

/// A deployment's input document, section by section.
#[derive(Debug, Clone)]
pub struct InputDocument {
    environment: Box<RawValue>,
    sections: BTreeMap<Section, Box<RawValue>>,
}

/// The environment section of a document: the environment and project by
/// name, evaluated at `now`; a project's plan adds what its configuration says.
pub fn environment_section(
    name: &str,
    project: &str,
    now: String,
) -> policy_sdk::input::Environment<'static> {
    policy_sdk::input::Environment {
        name: name.to_string().into(),
        project: project.to_string().into(),
        strategy: None,
        promote_from: None,
        plan_digest: None,
        rollback_runbook: None,
        now: Some(now.into()),
    }
}

impl InputDocument {
    /// A document for `environment` with no sections yet.
    pub fn new(environment: &policy_sdk::input::Environment<'_>) -> Self {
        InputDocument {
            environment: to_raw(environment),
            sections: BTreeMap::new(),
        }
    }

    /// Replaces the environment (e.g. once the plan digest is known).
    pub fn set_environment(&mut self, environment: &policy_sdk::input::Environment<'_>) {
        self.environment = to_raw(environment);
    }

    /// Sets a section from any serializable value.
    pub fn set<T: serde::Serialize + ?Sized>(&mut self, section: Section, value: &T) {
        self.sections.insert(section, to_raw(value));
    }

    /// Sets a section from JSON text kept as it is (e.g. terraform's own plan JSON).
    pub fn set_raw(&mut self, section: Section, json: Box<RawValue>) {
        self.sections.insert(section, json);
    }

    pub fn section(&self, section: Section) -> Option<&RawValue> {
        self.sections.get(&section).map(|b| &**b)
    }

    /// The values the document's terraform plan marks sensitive, to scrub
    /// from what a policy says about it.
    pub fn redactor(&self) -> crate::redact::Redactor {
        self.section(Section::Terraform)
            .and_then(|t| serde_json::from_str::<serde_json::Value>(t.get()).ok())
            .map(|t| crate::redact::Redactor::from_terraform_plan(&t["plan"]))
            .unwrap_or_default()
    }

    /// Reads a whole document from a file (`policy eval --input`).
    pub fn from_file(path: &Path) -> Result<Self, InputError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| InputError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::from_slice(&shown, &bytes)
    }

    /// Parses a whole document; unknown top-level keys are refused so a typo
    /// does not silently drop a section.
    pub fn from_slice(shown: &str, bytes: &[u8]) -> Result<Self, InputError> {
        let invalid = |reason: String| InputError::Invalid {
            path: shown.to_string(),
            reason,
        };
        let top: BTreeMap<String, Box<RawValue>> =
            serde_json::from_slice(bytes).map_err(|source| InputError::Json {
                path: shown.to_string(),
                source,
            })?;
        let mut environment = None;
        let mut sections = BTreeMap::new();
        for (key, value) in top {
            match key.as_str() {
                "schema_version" => {
                    let v: u32 = serde_json::from_str(value.get())
                        .map_err(|_| invalid("schema_version must be a number".into()))?;
                    if v != SCHEMA_VERSION {
                        return Err(invalid(format!(
                            "schema_version is {v}; this opsdeploy reads version {SCHEMA_VERSION}"
                        )));
                    }
                }
                "environment" => environment = Some(value),
                // A whole document may carry settings; the engine supplies its own.
                "settings" => {}
                other => match Section::parse(other) {
                    Some(section) => {
                        sections.insert(section, value);
                    }
                    None => {
                        return Err(invalid(format!(
                            "unknown top-level key `{other}` (known: schema_version, environment, settings, {})",
                            Section::ALL.map(|s| s.as_str()).join(", ")
                        )));
                    }
                },
            }
        }
        let environment = environment.ok_or_else(|| invalid("it has no `environment`".into()))?;
        serde_json::from_str::<policy_sdk::input::Environment>(environment.get())
            .map_err(|e| invalid(format!("its `environment` is not valid: {e}")))?;
        Ok(InputDocument {
            environment,
            sections,
        })
    }

    /// The document a policy receives: schema version, environment, its
    /// settings, and only the sections it reads (`None`: all of them).
    pub fn for_policy(&self, reads: Option<&[Section]>, settings: Option<&RawValue>) -> Vec<u8> {
        let chosen: Vec<(Section, &RawValue)> = self
            .sections
            .iter()
            .filter(|(s, _)| reads.is_none_or(|r| r.contains(s)))
            .map(|(s, v)| (*s, &**v))
            .collect();
        let len = self.environment.get().len()
            + chosen
                .iter()
                .map(|(_, v)| v.get().len() + 16)
                .sum::<usize>()
            + settings.map_or(4, |s| s.get().len())
            + 64;
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(b"{\"schema_version\":");
        out.extend_from_slice(SCHEMA_VERSION.to_string().as_bytes());
        out.extend_from_slice(b",\"environment\":");
        out.extend_from_slice(self.environment.get().as_bytes());
        out.extend_from_slice(b",\"settings\":");
        out.extend_from_slice(settings.map_or("null", |s| s.get()).as_bytes());
        for (section, value) in chosen {
            out.extend_from_slice(b",\"");
            out.extend_from_slice(section.as_str().as_bytes());
            out.extend_from_slice(b"\":");
            out.extend_from_slice(value.get().as_bytes());
        }
        out.push(b'}');
        out
    }

    /// The whole document, as `opsdeploy plan` stores it in the bundle.
    pub fn to_json(&self) -> Vec<u8> {
        self.for_policy(None, None)
    }
}

/// The `terraform` section for a plan JSON file: `{"dir": DIR, "plan": <plan>}`.
pub fn terraform_section_from_file(
    plan: &Path,
    dir: &str,
) -> Result<Box<RawValue>, crate::adapters::terraform::TerraformError> {
    let raw = crate::adapters::terraform::read_plan_file(plan)?;
    Ok(terraform_section(dir, &raw))
}

/// The `terraform` section around terraform's own plan JSON, kept byte for byte.
pub fn terraform_section(dir: &str, plan: &RawValue) -> Box<RawValue> {
    let dir = serde_json::to_string(dir).expect("a string serializes");
    let json = format!("{{\"dir\":{dir},\"plan\":{}}}", plan.get());
    RawValue::from_string(json).expect("a JSON object around valid JSON")
}

fn to_raw<T: serde::Serialize + ?Sized>(value: &T) -> Box<RawValue> {
    // Serializing our own models to JSON cannot fail: no non-string map keys.
    let json = serde_json::to_string(value).expect("input sections serialize to JSON");
    RawValue::from_string(json).expect("serde_json output is valid JSON")
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{"schema_version":1,"environment":{"name":"staging","project":"shop"},
        "terraform":{"dir":".","plan":{"resource_changes":[]}},"git":{"revision":"abc"}}"#;

    #[test]
    fn a_policy_gets_only_the_sections_it_reads() {
        let doc = InputDocument::from_slice("doc.json", DOC.as_bytes()).unwrap();
        let settings = RawValue::from_string(r#"{"k":1}"#.into()).unwrap();
        let out = doc.for_policy(Some(&[Section::Git]), Some(&settings));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["git"]["revision"], "abc");
        assert!(v.get("terraform").is_none());
        assert_eq!(v["settings"]["k"], 1);
        let parsed = policy_sdk::Input::from_slice(&out).unwrap();
        assert_eq!(parsed.environment.name, "staging");
    }

    #[test]
    fn unknown_keys_and_versions_are_refused_naming_the_file() {
        let err = InputDocument::from_slice(
            "doc.json",
            br#"{"schema_version":1,"environment":{"name":"s","project":"p"},"terraform_plan":{}}"#,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("doc.json") && err.to_string().contains("`terraform_plan`")
        );
        let err = InputDocument::from_slice(
            "doc.json",
            br#"{"schema_version":2,"environment":{"name":"s","project":"p"}}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("schema_version is 2"), "{err}");
    }
}
