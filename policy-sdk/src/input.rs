//! The input document: one JSON value per deployment (schema version 1),
//! described by `schema/input-document.schema.json` in the opsdeploy repository.
//!
//! A policy receives `schema_version`, `environment`, its own `settings` and the
//! sections its metadata lists in `reads`; the other sections are absent.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::helm::Release;
use crate::migration::Migration;
use crate::scan::Scans;
use crate::terraform::Plan;

/// Version of the input document layout.
pub const SCHEMA_VERSION: u32 = 1;

/// The sections of the input document a policy can ask for in `reads`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    Terraform,
    Helm,
    Scans,
    Migrations,
    Gates,
    Approvals,
    Git,
    Deployments,
    Files,
}

impl Section {
    pub const ALL: [Section; 9] = [
        Section::Terraform,
        Section::Helm,
        Section::Scans,
        Section::Migrations,
        Section::Gates,
        Section::Approvals,
        Section::Git,
        Section::Deployments,
        Section::Files,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Section::Terraform => "terraform",
            Section::Helm => "helm",
            Section::Scans => "scans",
            Section::Migrations => "migrations",
            Section::Gates => "gates",
            Section::Approvals => "approvals",
            Section::Git => "git",
            Section::Deployments => "deployments",
            Section::Files => "files",
        }
    }

    pub fn parse(name: &str) -> Option<Section> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl std::fmt::Display for Section {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A raw part of the input (`what` names it) as a JSON tree. The host passes
/// only JSON this reads (ABI.md, "Input"); a part it still cannot read fails
/// the policy through the SDK's panic hook, because read as absent, a secret or
/// a protective tag in it would pass unseen.
pub fn tree(json: &str, what: &str) -> serde_json::Value {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{what} cannot be read: {e}"))
}

/// The document a policy evaluates.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Input<'a> {
    pub schema_version: u32,
    #[serde(borrow)]
    pub environment: Environment<'a>,
    /// This policy's `settings` block from opsdeploy.hcl; read with [`Input::settings`].
    #[serde(borrow, default, rename = "settings")]
    pub raw_settings: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub terraform: Option<Terraform<'a>>,
    #[serde(borrow, default)]
    pub helm: Vec<Release<'a>>,
    #[serde(borrow, default)]
    pub scans: Option<Scans<'a>>,
    #[serde(borrow, default)]
    pub migrations: Vec<Migration<'a>>,
    #[serde(borrow, default)]
    pub gates: Option<Gates<'a>>,
    #[serde(borrow, default)]
    pub approvals: Option<Approvals<'a>>,
    #[serde(borrow, default)]
    pub git: Option<Git<'a>>,
    #[serde(borrow, default)]
    pub deployments: Option<Deployments<'a>>,
    #[serde(borrow, default)]
    pub files: Vec<ProjectFile<'a>>,
}

impl<'a> Input<'a> {
    /// Parses an input document, e.g. a fixture in a native unit test.
    pub fn from_json(json: &'a str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }

    pub fn from_slice(json: &'a [u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(json)
    }

    /// The policy's settings, or `T::default()` when none are configured.
    pub fn settings<T: DeserializeOwned + Default>(&self) -> Result<T, serde_json::Error> {
        match self.raw_settings {
            Some(raw) if raw.get() != "null" => serde_json::from_str(raw.get()),
            _ => Ok(T::default()),
        }
    }

    /// The policy's settings, or the `invalid-settings` denial to return when
    /// they do not fit `T` (a policy must not pass on settings it misread):
    ///
    /// ```
    /// use policy_sdk::prelude::*;
    ///
    /// #[derive(Default, serde::Deserialize)]
    /// struct Settings {
    ///     limit: Option<u32>,
    /// }
    ///
    /// fn evaluate(input: &Input) -> Vec<Violation> {
    ///     let settings: Settings = match input.settings_or_denial("my-policy") {
    ///         Ok(s) => s,
    ///         Err(denial) => return vec![denial],
    ///     };
    ///     let _ = settings.limit;
    ///     Vec::new()
    /// }
    ///
    /// let doc = r#"{"schema_version":1,"environment":{"name":"s","project":"p"},"settings":{"limit":"ten"}}"#;
    /// let v = evaluate(&Input::from_json(doc).unwrap());
    /// assert_eq!(v[0].rule, "invalid-settings");
    /// ```
    pub fn settings_or_denial<T: DeserializeOwned + Default>(
        &self,
        policy: &str,
    ) -> Result<T, crate::Violation> {
        self.settings().map_err(|e| {
            crate::Violation::deny(
                "invalid-settings",
                format!("{policy} settings are invalid: {e}"),
            )
        })
    }

    /// The terraform plan, when the deployment has one.
    pub fn plan(&self) -> Option<&Plan<'a>> {
        self.terraform.as_ref().map(|t| &t.plan)
    }
}

/// Where this deployment goes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Environment<'a> {
    /// Environment name as written in opsdeploy.hcl, e.g. `staging`.
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    #[serde(borrow)]
    pub project: Cow<'a, str>,
    /// `rolling` or `blue-green`; absent when the environment has no helm releases.
    #[serde(borrow, default)]
    pub strategy: Option<Cow<'a, str>>,
    /// The environment whose healthy deployment this one must match.
    #[serde(borrow, default)]
    pub promote_from: Option<Cow<'a, str>>,
    /// Digest of the plan bundle being evaluated, once known (at apply).
    #[serde(borrow, default)]
    pub plan_digest: Option<Cow<'a, str>>,
    /// Rollback runbook path when the environment requires one.
    #[serde(borrow, default)]
    pub rollback_runbook: Option<Cow<'a, str>>,
    /// When the evaluation happens (RFC 3339, UTC), set by the host: policies
    /// have no clock, and expiry dates (allowlists) need one.
    #[serde(borrow, default)]
    pub now: Option<Cow<'a, str>>,
    /// `promote { allow_unverified = true }`: a source environment without a
    /// health check may be promoted from.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_unverified: bool,
}

/// The `terraform` section: the plan and where it came from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Terraform<'a> {
    /// Terraform root module, relative to the project.
    #[serde(borrow)]
    pub dir: Cow<'a, str>,
    #[serde(borrow, default)]
    pub workspace: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub var_files: Vec<Cow<'a, str>>,
    /// Fingerprint of the terraform configuration planned (local module
    /// sources and the root module's settings, without what is
    /// environment-specific): equal on two environments when they run the
    /// same configuration.
    #[serde(borrow, default)]
    pub config_digest: Option<Cow<'a, str>>,
    /// `terraform show -json` of the saved plan, as terraform wrote it.
    #[serde(borrow)]
    pub plan: Plan<'a>,
}

/// The project's SDLC state: phase, gate table, checklist and runbook, as read
/// from the files named in opsdeploy.hcl.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Gates<'a> {
    /// State file it came from, relative to the project.
    #[serde(borrow, default)]
    pub state_file: Option<Cow<'a, str>>,
    /// Current phase, e.g. `S09`.
    #[serde(borrow, default)]
    pub phase: Option<Cow<'a, str>>,
    /// 1-based line of the phase in the state file.
    #[serde(default)]
    pub phase_line: Option<u32>,
    #[serde(borrow, default)]
    pub gates: Vec<Gate<'a>>,
    #[serde(borrow, default)]
    pub security_checklist: Option<Checklist<'a>>,
    #[serde(borrow, default)]
    pub rollback_runbook: Option<DocumentFile<'a>>,
    /// Feature flags the project declares, with whether each is configured here.
    #[serde(borrow, default)]
    pub feature_flags: BTreeMap<Cow<'a, str>, bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Gate<'a> {
    /// e.g. `S06`.
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(borrow, default)]
    pub name: Option<Cow<'a, str>>,
    /// As written in the state file, e.g. `passed`, `pending`, `failed`.
    #[serde(borrow)]
    pub status: Cow<'a, str>,
    #[serde(borrow, default)]
    pub date: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub evidence: Option<Cow<'a, str>>,
    /// 1-based line in the state file.
    #[serde(default)]
    pub line: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checklist<'a> {
    #[serde(borrow)]
    pub path: Cow<'a, str>,
    #[serde(borrow, default)]
    pub items: Vec<ChecklistItem<'a>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChecklistItem<'a> {
    #[serde(borrow)]
    pub text: Cow<'a, str>,
    pub checked: bool,
    pub line: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DocumentFile<'a> {
    #[serde(borrow)]
    pub path: Cow<'a, str>,
    pub exists: bool,
    /// Size without surrounding whitespace; 0 for an empty file.
    #[serde(default)]
    pub content_bytes: u64,
}

/// Approvals and overrides logged for this plan digest.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Approvals<'a> {
    #[serde(borrow, default)]
    pub approvals: Vec<Approval<'a>>,
    #[serde(borrow, default)]
    pub overrides: Vec<Override<'a>>,
    /// Who planned it (for the self-approval rule).
    #[serde(borrow, default)]
    pub planned_by: Option<Cow<'a, str>>,
    /// Approvals the environment needs.
    #[serde(default)]
    pub required: u32,
    /// Whether the person who planned may approve their own plan
    /// (`approval { self_approve = true }`).
    #[serde(default)]
    pub self_approve: bool,
    /// Whether approvals here are signed (`approval { signers }`): each one
    /// listed was verified against the environment's allowed_signers.
    #[serde(default)]
    pub signed: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Approval<'a> {
    #[serde(borrow)]
    pub approver: Cow<'a, str>,
    /// The plan bundle digest it approves.
    #[serde(borrow)]
    pub digest: Cow<'a, str>,
    #[serde(borrow)]
    pub at: Cow<'a, str>,
    #[serde(borrow, default)]
    pub comment: Option<Cow<'a, str>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Override<'a> {
    #[serde(borrow)]
    pub policy: Cow<'a, str>,
    #[serde(borrow)]
    pub approver: Cow<'a, str>,
    #[serde(borrow)]
    pub digest: Cow<'a, str>,
    #[serde(borrow)]
    pub reason: Cow<'a, str>,
    #[serde(borrow)]
    pub at: Cow<'a, str>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Git<'a> {
    #[serde(borrow)]
    pub revision: Cow<'a, str>,
    #[serde(borrow, default)]
    pub branch: Option<Cow<'a, str>>,
    /// Uncommitted changes in the work tree.
    #[serde(default)]
    pub dirty: bool,
}

/// What is deployed where, from the store.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Deployments<'a> {
    /// The last deployment of this environment.
    #[serde(borrow, default)]
    pub previous: Option<Deployment<'a>>,
    /// The last deployment of every environment, by name.
    #[serde(borrow, default)]
    pub by_environment: BTreeMap<Cow<'a, str>, Deployment<'a>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deployment<'a> {
    #[serde(borrow)]
    pub environment: Cow<'a, str>,
    #[serde(borrow)]
    pub digest: Cow<'a, str>,
    #[serde(borrow)]
    pub at: Cow<'a, str>,
    /// `succeeded`, `failed`, `rolled_back`, `interrupted`.
    #[serde(borrow)]
    pub status: Cow<'a, str>,
    /// A health check verified it, and the smoke test and monitor window
    /// (where configured) passed.
    #[serde(default)]
    pub healthy: bool,
    /// `healthy`, `unverified` (every configured check passed, but the
    /// environment has no health check) or `unhealthy`.
    #[serde(borrow, default)]
    pub health: Option<Cow<'a, str>>,
    /// Fingerprint of the terraform configuration it deployed.
    #[serde(borrow, default)]
    pub terraform_config: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub images: Vec<Image<'a>>,
    #[serde(borrow, default)]
    pub charts: Vec<ChartVersion<'a>>,
    /// Ids of migrations applied by or before this deployment.
    #[serde(borrow, default)]
    pub migrations: Vec<Cow<'a, str>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Image<'a> {
    /// As configured, e.g. `registry.example.com/api:1.2.0`.
    #[serde(borrow)]
    pub reference: Cow<'a, str>,
    /// `sha256:...` the reference resolved to, when known.
    #[serde(borrow, default)]
    pub digest: Option<Cow<'a, str>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChartVersion<'a> {
    #[serde(borrow)]
    pub release: Cow<'a, str>,
    #[serde(borrow)]
    pub chart: Cow<'a, str>,
    #[serde(borrow, default)]
    pub version: Option<Cow<'a, str>>,
}

/// A project file that goes out with the deployment (tfvars, .tf, values,
/// docker-compose, `opsdeploy.hcl`, the scripts its commands run), for
/// policies that read configuration as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProjectFile<'a> {
    #[serde(borrow)]
    pub path: Cow<'a, str>,
    /// `terraform`, `tfvars`, `helm-values`, `compose`, `env`, `opsdeploy`
    /// (the configuration), `script` (run by a command in it), `other`.
    #[serde(borrow)]
    pub kind: Cow<'a, str>,
    #[serde(borrow)]
    pub content: Cow<'a, str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_document_parses_and_absent_sections_are_empty() {
        let input = Input::from_json(
            r#"{"schema_version":1,"environment":{"name":"staging","project":"shop"}}"#,
        )
        .unwrap();
        assert_eq!(input.environment.name, "staging");
        assert!(input.plan().is_none() && input.helm.is_empty() && input.scans.is_none());
        let settings: BTreeMap<String, String> = input.settings().unwrap();
        assert!(settings.is_empty());
        let bad = Input::from_json(
            r#"{"schema_version":1,"environment":{"name":"s","project":"p"},"settings":[1]}"#,
        )
        .unwrap();
        let denial = bad
            .settings_or_denial::<BTreeMap<String, String>>("p")
            .unwrap_err();
        assert_eq!(denial.rule, "invalid-settings");
        assert!(
            denial.message.starts_with("p settings are invalid:"),
            "{}",
            denial.message
        );
    }

    #[test]
    fn section_names_round_trip() {
        for s in Section::ALL {
            assert_eq!(Section::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
    }
}
