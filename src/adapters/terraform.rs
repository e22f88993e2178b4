//! Terraform: reading `terraform show -json` plan documents.

use std::path::Path;
use std::time::Duration;

use std::collections::BTreeMap;

use super::json_check::{self, Member};
use super::plan_outline::Outline;
use super::plan_view::{self, ChangeValue, PlanView};
use super::process::{Output, Tool, ToolError, summarize};

/// Plan format majors this opsdeploy understands (0.x and 1.x).
const SUPPORTED_FORMAT_MAJOR: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum TerraformError {
    #[error("could not read terraform plan {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("terraform plan {path} is not valid JSON: {reason}")]
    Json { path: String, reason: String },
    #[error("{path} is not a terraform plan: {reason}")]
    NotAPlan { path: String, reason: String },
    #[error(
        "terraform plan {path} has format_version {version}; this opsdeploy reads 0.x and 1.x (upgrade opsdeploy)"
    )]
    UnsupportedFormat { path: String, version: String },
}

/// Reads a plan JSON file (see [`parse_plan_json`]).
pub fn read_plan_file(path: &Path) -> Result<PlanJson, TerraformError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| TerraformError::Read {
        path: shown.clone(),
        source,
    })?;
    parse_plan_json(&shown, bytes)
}

/// A checked terraform plan document: the text as terraform wrote it, where
/// its top-level members are (so an input document can splice exactly the
/// ones a policy reads), and what the host needs from it.
#[derive(Debug, Clone)]
pub struct PlanJson {
    text: String,
    members: Vec<Member>,
    /// Where each change value of `resource_changes` and `resource_drift`
    /// is, in document order (null values are not: they read as absent).
    change_values: Vec<(ChangeValue, std::ops::Range<usize>)>,
    /// Managed resource changes by action summary (`create`, `replace`, ...).
    pub counts: BTreeMap<&'static str, usize>,
    /// Entries of `resource_drift`.
    pub drifted: usize,
    pub terraform_version: Option<String>,
    /// Every value the plan marks sensitive (see [`Outline::sensitive_values`]).
    pub sensitive_values: Vec<String>,
}

impl PlanJson {
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The plan as `view` shows it, as pieces of the text: the members it
    /// wants, as written, in document order, inside `{}`, and in them no
    /// change value it does not want.
    pub fn push_view<'a>(&'a self, view: &PlanView, out: &mut Vec<&'a [u8]>) {
        let cuts = match view.change_values {
            Some(_) => plan_view::cuts(&self.text, &self.change_values, |v| !view.wants_value(v)),
            None => Vec::new(),
        };
        out.push(b"{");
        for (i, m) in self
            .members
            .iter()
            .filter(|m| view.wants_key(&m.key))
            .enumerate()
        {
            if i > 0 {
                out.push(b",");
            }
            plan_view::pieces(&self.text, m.entry.clone(), &cuts, out);
        }
        out.push(b"}");
    }
}

/// Checks that `bytes` hold one terraform plan document a policy can read and
/// keeps it as terraform wrote it. UTF-8 and UTF-16 byte-order marks (a plan
/// saved by a PowerShell redirect) are accepted; trailing data, nesting past
/// serde_json's limit, strings a policy could not decode, state documents and
/// unsupported format majors are refused. No tree of the plan is built: one
/// streaming check of the text and one borrowed, typed pass, side by side.
pub fn parse_plan_json(shown: &str, bytes: Vec<u8>) -> Result<PlanJson, TerraformError> {
    let json_error = |reason: String| TerraformError::Json {
        path: shown.to_string(),
        reason,
    };
    let text = decode_text(bytes).map_err(json_error)?;
    // The two passes read the same text independently: on a machine with a
    // second core the check runs beside the typed pass. A grammar error wins
    // over a shape error, whichever pass finishes first.
    let (checked, outline) = std::thread::scope(|scope| {
        let check = std::thread::Builder::new()
            .name("plan-check".into())
            .spawn_scoped(scope, || json_check::check(&text));
        let outline = serde_json::from_str::<Outline>(&text);
        let checked = match check {
            Ok(handle) => handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Err(_) => json_check::check(&text),
        };
        (checked, outline)
    });
    let members = checked.map_err(|e| json_error(e.to_string()))?;
    let outline = outline.map_err(|e| TerraformError::NotAPlan {
        path: shown.to_string(),
        reason: e.to_string(),
    })?;
    check_plan_shape(shown, &outline)?;
    let mut counts = BTreeMap::new();
    for rc in outline.resource_changes.iter().filter(|rc| rc.is_managed()) {
        *counts.entry(rc.change.actions.summary()).or_default() += 1;
    }
    let drifted = outline.resource_drift.len();
    let terraform_version = outline.terraform_version.as_deref().map(String::from);
    let sensitive_values = outline.sensitive_values();
    let change_values = outline.change_values(&text);
    drop(outline);
    Ok(PlanJson {
        text,
        members,
        change_values,
        counts,
        drifted,
        terraform_version,
        sensitive_values,
    })
}

/// The values a plan the host already checked marks sensitive (a plan stored
/// in a bundle, or given inside a whole input document).
pub fn sensitive_values(shown: &str, plan_json: &str) -> Result<Vec<String>, TerraformError> {
    serde_json::from_str::<Outline>(plan_json)
        .map(|outline| outline.sensitive_values())
        .map_err(|e| TerraformError::NotAPlan {
            path: shown.to_string(),
            reason: e.to_string(),
        })
}

fn check_plan_shape(shown: &str, plan: &Outline) -> Result<(), TerraformError> {
    let not_a_plan = |reason: &str| TerraformError::NotAPlan {
        path: shown.to_string(),
        reason: reason.to_string(),
    };
    if plan.planned_values.is_none() && plan.resource_changes.is_empty() {
        // `terraform show -json` of a state has `values` and nothing planned.
        if plan.values.is_some() {
            return Err(not_a_plan(
                "it is a state document (`values`, no `planned_values` or `resource_changes`); run `terraform show -json PLANFILE` on a saved plan",
            ));
        }
        if plan.format_version.is_none() && plan.configuration.is_none() {
            return Err(not_a_plan(
                "it has neither format_version, planned_values, resource_changes nor configuration",
            ));
        }
    }
    if let Some(version) = &plan.format_version {
        let major = version
            .split('.')
            .next()
            .and_then(|m| m.parse::<u32>().ok());
        if major.is_none_or(|m| m > SUPPORTED_FORMAT_MAJOR) {
            return Err(TerraformError::UnsupportedFormat {
                path: shown.to_string(),
                version: version.to_string(),
            });
        }
    }
    Ok(())
}

/// UTF-8 (with or without BOM) or UTF-16 with a BOM, as text; UTF-8 is
/// kept in place.
fn decode_text(mut bytes: Vec<u8>) -> Result<String, String> {
    let utf16 = |bytes: &[u8], le: bool| {
        let units: Vec<u16> = bytes[2..]
            .chunks(2)
            .map(|c| {
                let pair = [c[0], *c.get(1).unwrap_or(&0)];
                if le {
                    u16::from_le_bytes(pair)
                } else {
                    u16::from_be_bytes(pair)
                }
            })
            .collect();
        String::from_utf16(&units)
            .map_err(|e| format!("it starts with a UTF-16 byte-order mark but is not UTF-16: {e}"))
    };
    match bytes.as_slice() {
        [0xFF, 0xFE, ..] => return utf16(&bytes, true),
        [0xFE, 0xFF, ..] => return utf16(&bytes, false),
        [0xEF, 0xBB, 0xBF, ..] => {
            bytes.drain(..3);
        }
        _ => {}
    }
    String::from_utf8(bytes).map_err(|e| format!("it is not UTF-8: {}", e.utf8_error()))
}

/// How to run terraform for one root module.
#[derive(Debug, Clone)]
pub struct TerraformOptions {
    pub binary: Option<std::path::PathBuf>,
    pub dir: std::path::PathBuf,
    pub workspace: Option<String>,
    pub var_files: Vec<std::path::PathBuf>,
    pub vars: Vec<(String, String)>,
}

/// Terraform for one root module.
pub struct Terraform {
    tool: Tool,
    opts: TerraformOptions,
}

/// Terraform may take a while (providers, large plans); a hung one is stopped.
const TERRAFORM_TIMEOUT: Duration = Duration::from_secs(3600);

impl Terraform {
    pub fn new(opts: TerraformOptions) -> Result<Self, ToolError> {
        Ok(Terraform {
            tool: Tool::find("terraform", "terraform.binary", opts.binary.as_deref())?,
            opts,
        })
    }

    fn run(&self, args: Vec<String>) -> Result<Output, ToolError> {
        self.tool
            .run(Some(&self.opts.dir), &args, TERRAFORM_TIMEOUT)
    }

    fn var_args(&self, args: &mut Vec<String>) {
        for f in &self.opts.var_files {
            args.push(format!("-var-file={}", f.display()));
        }
        for (k, v) in &self.opts.vars {
            args.push(format!("-var={k}={v}"));
        }
    }

    /// `init`, then selects (creating if needed) the configured workspace.
    pub fn init(&self) -> Result<(), ToolError> {
        self.run(vec![
            "init".into(),
            "-input=false".into(),
            "-no-color".into(),
        ])?;
        if let Some(ws) = &self.opts.workspace {
            let select = self.run(vec![
                "workspace".into(),
                "select".into(),
                "-or-create".into(),
                ws.clone(),
            ]);
            select?;
        }
        Ok(())
    }

    /// `plan -out=FILE` with the configured var files and vars.
    pub fn plan(&self, out: &Path) -> Result<(), ToolError> {
        self.plan_to(out, false)
    }

    /// [`Self::plan`], or with `destroy` a plan that destroys everything the
    /// configuration manages.
    pub fn plan_to(&self, out: &Path, destroy: bool) -> Result<(), ToolError> {
        let mut args = vec![
            "plan".into(),
            "-input=false".into(),
            "-no-color".into(),
            format!("-out={}", out.display()),
        ];
        if destroy {
            args.push("-destroy".into());
        }
        self.var_args(&mut args);
        self.run(args).map(|_| ())
    }

    pub fn show_json(&self, planfile: &Path) -> Result<Vec<u8>, ToolError> {
        self.run(vec![
            "show".into(),
            "-json".into(),
            "-no-color".into(),
            planfile.display().to_string(),
        ])
        .map(|o| o.stdout)
    }

    /// Applies exactly the saved plan; terraform refuses a stale one itself.
    pub fn apply(&self, planfile: &Path) -> Result<(), ToolError> {
        self.run(vec![
            "apply".into(),
            "-input=false".into(),
            "-no-color".into(),
            "-auto-approve".into(),
            planfile.display().to_string(),
        ])
        .map(|_| ())
    }

    /// `plan -refresh-only -detailed-exitcode`: exit 0 no drift, 2 drift, 1 error.
    pub fn drifted(&self) -> Result<(bool, String), ToolError> {
        let mut args = vec![
            "plan".into(),
            "-refresh-only".into(),
            "-detailed-exitcode".into(),
            "-input=false".into(),
            "-no-color".into(),
        ];
        self.var_args(&mut args);
        let out = self
            .tool
            .run_status(Some(&self.opts.dir), &args, TERRAFORM_TIMEOUT)?;
        match out.code {
            0 => Ok((false, out.stdout_text())),
            2 => Ok((true, out.stdout_text())),
            code => Err(ToolError::Failed {
                command: "terraform plan -refresh-only".into(),
                summary: summarize(&out.stderr, &out.stdout, code),
            }),
        }
    }

    pub fn version(&self) -> Result<String, ToolError> {
        let out = self.run(vec!["version".into(), "-json".into()])?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        Ok(v["terraform_version"]
            .as_str()
            .unwrap_or("unknown")
            .to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_documents_and_trailing_data_are_refused() {
        let err = parse_plan_json(
            "s.json",
            br#"{"format_version":"1.0","values":{}}"#.to_vec(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("state document"), "{err}");
        let err = parse_plan_json(
            "p.json",
            br#"{"format_version":"1.0","resource_changes":[]} {}"#.to_vec(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("trailing characters"), "{err}");
    }

    #[test]
    fn a_newer_major_is_a_clear_error() {
        let err = parse_plan_json(
            "p.json",
            br#"{"format_version":"2.0","resource_changes":[]}"#.to_vec(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("format_version 2.0"), "{err}");
    }

    /// Found by the plan_json fuzz target: a lone surrogate escape in `after`
    /// was accepted, and every policy then read that `after` as null.
    #[test]
    fn strings_policies_cannot_decode_are_refused() {
        let plan = br#"{"format_version":"1.2","resource_changes":[{"address":"a.b","type":"a","name":"b","change":{"actions":["create"],"after":{"password":"hunter2","note":"\ud800"}}}]}"#;
        let err = parse_plan_json("p.json", plan.to_vec()).unwrap_err();
        assert!(err.to_string().contains("hex escape"), "{err}");
        let paired = br#"{"format_version":"1.2","planned_values":{"s":"\ud83d\ude00 \u00e9"}}"#;
        assert!(parse_plan_json("p.json", paired.to_vec()).is_ok());
    }

    /// The redaction map comes from the plan's own markers, through the same
    /// check every plan passes.
    #[test]
    fn values_terraform_marks_sensitive_are_found_and_scrubbed() {
        let plan = serde_json::json!({
            "format_version": "1.2",
            "variables": {"db_password": {"value": "hunter2-variable"}, "region": {"value": "eu-west-1"}},
            "configuration": {"root_module": {"variables": {
                "db_password": {"sensitive": true}, "region": {}
            }}},
            "resource_changes": [{
                "address": "aws_db_instance.main", "type": "aws_db_instance", "name": "main",
                "change": {
                    "actions": ["create"],
                    "before": null,
                    "after": {"password": "hunter2-after", "tags": ["public", "nested-secret"], "port": 5432},
                    "before_sensitive": false,
                    "after_sensitive": {"password": true, "tags": [false, true]}
                }
            }],
            "output_changes": {"dsn": {"actions": ["create"], "after": "postgres://u:pw-in-output@db", "after_sensitive": true}},
            "planned_values": {"root_module": {"child_modules": [{"resources": [{
                "values": {"token": "child-module-token"}, "sensitive_values": {"token": true}
            }]}]}}
        });
        let plan = parse_plan_json("p.json", plan.to_string().into_bytes()).unwrap();
        let r = crate::redact::Redactor::from_values(plan.sensitive_values);
        let text = "hunter2-variable hunter2-after nested-secret postgres://u:pw-in-output@db \
                    child-module-token public eu-west-1 5432";
        let scrubbed = r.scrub(text);
        for secret in [
            "hunter2",
            "nested-secret",
            "pw-in-output",
            "child-module-token",
        ] {
            assert!(!scrubbed.contains(secret), "{secret} in {scrubbed}");
        }
        assert!(scrubbed.contains("public eu-west-1 5432"), "{scrubbed}");
        assert!(scrubbed.contains("****(16 chars)"), "{scrubbed}");
        assert_eq!(plan.counts.get("create"), Some(&1));
    }

    #[test]
    fn a_utf8_bom_is_dropped_and_members_are_spliceable() {
        let mut bytes = vec![0xEF, 0xBB, 0xBF];
        bytes.extend_from_slice(
            br#"{"format_version":"1.2", "resource_changes":[], "planned_values":{"x":1}}"#,
        );
        let plan = parse_plan_json("p.json", bytes).unwrap();
        assert!(plan.text().starts_with('{'));
        let view = PlanView {
            keys: Some(vec!["planned_values".into()]),
            change_values: None,
        };
        let mut out = Vec::new();
        plan.push_view(&view, &mut out);
        assert_eq!(
            out.concat(),
            br#"{"format_version":"1.2","planned_values":{"x":1}}"#
        );
    }

    #[test]
    fn numbers_a_policy_cannot_read_are_refused() {
        let plan = br#"{"format_version":"1.2","planned_values":{"n":1e400}}"#;
        let err = parse_plan_json("p.json", plan.to_vec()).unwrap_err();
        assert!(err.to_string().contains("number out of range"), "{err}");
    }

    #[test]
    fn utf16_with_bom_is_read() {
        let text = r#"{"format_version":"1.1","planned_values":{}}"#;
        let mut bytes = vec![0xFF, 0xFE];
        for u in text.encode_utf16() {
            bytes.extend_from_slice(&u.to_le_bytes());
        }
        assert!(parse_plan_json("p.json", bytes).is_ok());
    }
}
