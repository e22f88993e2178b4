//! The input document (schema version 1): one JSON value per deployment, kept
//! as raw JSON per section so each policy gets exactly the sections it reads
//! without re-serializing anything. A terraform plan opsdeploy read itself is
//! kept as terraform wrote it and spliced in member by member, so a policy
//! that declares the plan keys it reads gets only those.

use std::collections::BTreeMap;
use std::path::Path;

use policy_sdk::Section;
use policy_sdk::input::SCHEMA_VERSION;
use serde_json::value::RawValue;

use crate::adapters::json_check;
use crate::adapters::plan_view::PlanView;
use crate::adapters::terraform::PlanJson;

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("could not read input document {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("input document {path} is not valid JSON: {reason}")]
    Json { path: String, reason: String },
    #[error("input document {path} is not usable: {reason}")]
    Invalid { path: String, reason: String },
}

/// A deployment's input document, section by section.
#[derive(Debug, Clone)]
pub struct InputDocument {
    /// `{"schema_version":1,"environment":{...},"settings":`
    head: String,
    sections: BTreeMap<Section, Box<RawValue>>,
    /// The `terraform` section around a plan opsdeploy read and checked.
    terraform: Option<TerraformSection>,
}

#[derive(Debug, Clone)]
struct TerraformSection {
    /// `{"dir":"...","plan":`
    head: String,
    plan: PlanJson,
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
        allow_unverified: false,
    }
}

impl InputDocument {
    /// A document for `environment` with no sections yet.
    pub fn new(environment: &policy_sdk::input::Environment<'_>) -> Self {
        InputDocument {
            head: head(&to_raw(environment)),
            sections: BTreeMap::new(),
            terraform: None,
        }
    }

    /// Replaces the environment (e.g. once the plan digest is known).
    pub fn set_environment(&mut self, environment: &policy_sdk::input::Environment<'_>) {
        self.head = head(&to_raw(environment));
    }

    /// Sets a section from any serializable value.
    pub fn set<T: serde::Serialize + ?Sized>(&mut self, section: Section, value: &T) {
        self.set_raw(section, to_raw(value));
    }

    /// Sets a section from JSON text kept as it is.
    pub fn set_raw(&mut self, section: Section, json: Box<RawValue>) {
        if section == Section::Terraform {
            self.terraform = None;
        }
        self.sections.insert(section, json);
    }

    /// Sets the `terraform` section, `{"dir": DIR, "plan": <plan>}`, around a
    /// checked plan, which stays as terraform wrote it.
    pub fn set_terraform(&mut self, dir: &str, plan: PlanJson) {
        self.set_configured_terraform(dir, None, plan);
    }

    /// [`InputDocument::set_terraform`] with the fingerprint of the
    /// configuration planned (`config_digest`), which a rollback plans again.
    pub fn set_configured_terraform(
        &mut self,
        dir: &str,
        config_digest: Option<&str>,
        plan: PlanJson,
    ) {
        let dir = serde_json::to_string(dir).expect("a string serializes");
        let digest = config_digest
            .map(|d| {
                format!(
                    ",\"config_digest\":{}",
                    serde_json::to_string(d).expect("a string")
                )
            })
            .unwrap_or_default();
        self.sections.remove(&Section::Terraform);
        self.terraform = Some(TerraformSection {
            head: format!("{{\"dir\":{dir}{digest},\"plan\":"),
            plan,
        });
    }

    /// The plan of the `terraform` section, when opsdeploy read it (not one
    /// given inside a whole document).
    pub fn terraform_plan(&self) -> Option<&PlanJson> {
        self.terraform.as_ref().map(|t| &t.plan)
    }

    /// The values the terraform plan marks sensitive, whichever way the plan
    /// came in (none when a whole document's plan is not a readable plan).
    pub fn sensitive_values(&self) -> Vec<String> {
        if let Some(plan) = self.terraform_plan() {
            return plan.sensitive_values.clone();
        }
        #[derive(serde::Deserialize)]
        struct Section<'a> {
            #[serde(borrow)]
            plan: &'a RawValue,
        }
        self.section(policy_sdk::Section::Terraform)
            .and_then(|t| serde_json::from_str::<Section>(t.get()).ok())
            .and_then(|t| {
                crate::adapters::terraform::sensitive_values("input document", t.plan.get()).ok()
            })
            .unwrap_or_default()
    }

    /// A section set as JSON (the spliced terraform plan is not one: see
    /// [`InputDocument::terraform_plan`]).
    pub fn section(&self, section: Section) -> Option<&RawValue> {
        self.sections.get(&section).map(|b| &**b)
    }

    /// The values the document's terraform plan marks sensitive, to scrub
    /// from what a policy says about it.
    pub fn redactor(&self) -> crate::redact::Redactor {
        crate::redact::Redactor::from_values(self.sensitive_values())
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
        let not_json = |reason: String| InputError::Json {
            path: shown.to_string(),
            reason,
        };
        // The check a plan opsdeploy reads gets: what a policy's parser would
        // refuse or read otherwise (a lone surrogate, a number no float holds)
        // could make it skip a value, so the whole document is refused here.
        let text = std::str::from_utf8(bytes)
            .map_err(|e| not_json(format!("not UTF-8 after byte {}", e.valid_up_to())))?;
        let members = json_check::check(text).map_err(|e| not_json(e.to_string()))?;
        let mut seen = std::collections::BTreeSet::new();
        if let Some(twice) = members.iter().find(|m| !seen.insert(&m.key)) {
            // serde keeps the last; which copy counts must not be a guess.
            return Err(invalid(format!("`{}` is given twice", twice.key)));
        }
        let top: BTreeMap<String, Box<RawValue>> =
            serde_json::from_str(text).map_err(|e| not_json(e.to_string()))?;
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
            head: head(&environment),
            sections,
            terraform: None,
        })
    }

    /// The document a policy receives: schema version, environment, its
    /// settings, and only the sections it reads (`None`: all of them).
    pub fn for_policy(&self, reads: Option<&[Section]>, settings: Option<&RawValue>) -> Vec<u8> {
        self.parts(reads, &PlanView::default(), settings).concat()
    }

    /// The same document as consecutive pieces of this one, nothing copied:
    /// the sections `reads` lists (`None`: all) and, of a plan opsdeploy
    /// read, what `plan` shows of it.
    pub fn parts<'a>(
        &'a self,
        reads: Option<&[Section]>,
        plan: &PlanView,
        settings: Option<&'a RawValue>,
    ) -> Vec<&'a [u8]> {
        let mut out: Vec<&[u8]> = vec![
            self.head.as_bytes(),
            settings.map_or("null", |s| s.get()).as_bytes(),
        ];
        for section in Section::ALL {
            if !reads.is_none_or(|r| r.contains(&section)) {
                continue;
            }
            let name = section_key(section);
            if let (Section::Terraform, Some(t)) = (section, &self.terraform) {
                out.extend([name, t.head.as_bytes()]);
                t.plan.push_view(plan, &mut out);
                out.push(b"}");
            } else if let Some(value) = self.sections.get(&section) {
                out.extend([name, value.get().as_bytes()]);
            }
        }
        out.push(b"}");
        out
    }

    /// The whole document, as `opsdeploy plan` stores it in the bundle.
    pub fn to_json(&self) -> Vec<u8> {
        self.for_policy(None, None)
    }
}

/// `,"name":` of a section.
fn section_key(section: Section) -> &'static [u8] {
    match section {
        Section::Terraform => b",\"terraform\":",
        Section::Helm => b",\"helm\":",
        Section::Scans => b",\"scans\":",
        Section::Migrations => b",\"migrations\":",
        Section::Gates => b",\"gates\":",
        Section::Approvals => b",\"approvals\":",
        Section::Git => b",\"git\":",
        Section::Deployments => b",\"deployments\":",
        Section::Files => b",\"files\":",
    }
}

fn head(environment: &RawValue) -> String {
    format!(
        "{{\"schema_version\":{SCHEMA_VERSION},\"environment\":{},\"settings\":",
        environment.get()
    )
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

    #[test]
    fn what_a_policy_could_read_otherwise_is_refused_naming_the_file() {
        let refused = |body: &str| {
            let doc = format!(
                r#"{{"schema_version":1,"environment":{{"name":"s","project":"p"}},{body}}}"#
            );
            InputDocument::from_slice("doc.json", doc.as_bytes())
                .unwrap_err()
                .to_string()
        };
        let plan = |after: &str| {
            format!(
                r#""terraform":{{"dir":".","plan":{{"resource_changes":[{{"address":"a.b","type":"a","name":"b","change":{{"actions":["create"],"after":{after}}}}}]}}}}"#
            )
        };
        let err = refused(&plan(r#"{"password":"p","note":"\ud800"}"#));
        assert!(
            err.contains("doc.json is not valid JSON") && err.contains("surrogate"),
            "{err}"
        );
        let err = refused(&plan(r#"{"password":"p","n":1.7976931348623159e308}"#));
        assert!(
            err.contains("doc.json") && err.contains("number out of range"),
            "{err}"
        );
        let err = refused(r#""git":{"revision":"a"},"g\u0069t":{"revision":"b"}"#);
        assert!(
            err.contains("doc.json") && err.contains("`git` is given twice"),
            "{err}"
        );
        let err = InputDocument::from_slice("doc.json", b"{\"schema_version\":1,\"x\":\"\xff\"}")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("doc.json is not valid JSON: not UTF-8"),
            "{err}"
        );
    }

    /// A plan as terraform writes it; one key written with an escape, as
    /// JSON allows, and a string holding what looks like a key.
    const PLAN: &str = r#"{"format_version":"1.2","terraform_version":"1.11.4",
        "resource\u005fchanges":[{"address":"a.b","type":"a","name":"b","change":{"actions":["create"],"after":{"s":"\"planned_values\":1"}}}],
        "planned_values":{"root_module":{}},"configuration":{"root_module":{}}}"#;

    fn spliced(plan_keys: Option<&[String]>) -> serde_json::Value {
        viewed(&PlanView {
            keys: plan_keys.map(<[String]>::to_vec),
            change_values: None,
        })
    }

    fn viewed(view: &PlanView) -> serde_json::Value {
        let mut doc = InputDocument::from_slice("doc.json", DOC.as_bytes()).unwrap();
        let plan = crate::adapters::terraform::parse_plan_json("plan.json", PLAN.into()).unwrap();
        doc.set_terraform("infra/x\"y", plan);
        let out = doc.parts(Some(&[Section::Terraform]), view, None).concat();
        policy_sdk::Input::from_slice(&out).unwrap();
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn a_plan_is_spliced_as_written_with_only_the_keys_a_policy_reads() {
        let whole: serde_json::Value = serde_json::from_str(PLAN).unwrap();
        let all = spliced(None);
        assert_eq!(all["terraform"]["plan"], whole);
        assert_eq!(all["terraform"]["dir"], "infra/x\"y");
        assert!(all.get("git").is_none());

        let narrowed = spliced(Some(&["resource_changes".to_string()]));
        let plan = narrowed["terraform"]["plan"].as_object().unwrap();
        let mut keys: Vec<_> = plan.keys().collect();
        keys.sort();
        assert_eq!(
            keys,
            ["format_version", "resource_changes", "terraform_version"]
        );
        assert_eq!(plan["resource_changes"], whole["resource_changes"]);

        // Declaring no key still gives the versions, and nothing of size.
        let versions = spliced(Some(&[]));
        assert_eq!(versions["terraform"]["plan"].as_object().unwrap().len(), 2);
    }

    #[test]
    fn a_policy_declaring_change_values_gets_changes_without_the_others() {
        use crate::adapters::plan_view::ChangeValue;
        let view = PlanView {
            keys: Some(vec!["resource_changes".to_string()]),
            change_values: Some(vec![ChangeValue::Before]),
        };
        let doc = viewed(&view);
        let change = &doc["terraform"]["plan"]["resource_changes"][0]["change"];
        assert_eq!(change["actions"][0], "create");
        assert!(change.get("after").is_none(), "{change}");
        assert_eq!(doc["terraform"]["dir"], "infra/x\"y");
        // Without the declaration the values are all there.
        let whole = viewed(&PlanView::default());
        assert_eq!(
            whole["terraform"]["plan"]["resource_changes"][0]["change"]["after"]["s"],
            "\"planned_values\":1"
        );
    }
}
