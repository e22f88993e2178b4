//! Terraform: reading `terraform show -json` plan documents.

use std::path::Path;
use std::time::Duration;

use policy_sdk::terraform::Plan;
use serde_json::value::RawValue;

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
pub fn read_plan_file(path: &Path) -> Result<Box<RawValue>, TerraformError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| TerraformError::Read {
        path: shown.clone(),
        source,
    })?;
    parse_plan_json(&shown, &bytes)
}

/// Checks that `bytes` hold one terraform plan document and returns it as raw
/// JSON, as terraform wrote it. UTF-8 and UTF-16 byte-order marks (a plan saved
/// by a PowerShell redirect) are accepted; trailing data, state documents and
/// unsupported format majors are refused.
pub fn parse_plan_json(shown: &str, bytes: &[u8]) -> Result<Box<RawValue>, TerraformError> {
    let text = decode_text(bytes).map_err(|reason| TerraformError::Json {
        path: shown.to_string(),
        reason,
    })?;
    let raw: Box<RawValue> = serde_json::from_str(&text).map_err(|e| TerraformError::Json {
        path: shown.to_string(),
        reason: e.to_string(),
    })?;
    // Raw JSON is checked without a depth limit, but every policy parses what
    // it reads with serde_json's limit of 128: a value nested deeper would
    // read as absent there, so it is refused here.
    if let Some(at) = nested_deeper_than(raw.get(), MAX_NESTING) {
        return Err(TerraformError::Json {
            path: shown.to_string(),
            reason: format!(
                "values are nested deeper than {MAX_NESTING} levels (at byte {at}); terraform does not write such plans"
            ),
        });
    }
    // Raw JSON skips over strings without decoding their escapes, so a lone
    // surrogate (`"\ud800"`) passes it, yet a policy's serde_json::Value parse
    // of the value holding it fails and the whole value reads as null (a
    // secret in `after` would go unseen). Decode every string once here.
    serde_json::from_str::<StringsDecode>(raw.get()).map_err(|e| TerraformError::Json {
        path: shown.to_string(),
        reason: e.to_string(),
    })?;
    let plan: Plan = serde_json::from_str(raw.get()).map_err(|e| TerraformError::NotAPlan {
        path: shown.to_string(),
        reason: e.to_string(),
    })?;
    check_plan_shape(shown, &plan, raw.get())?;
    Ok(raw)
}

/// Walks a JSON document the way building a `serde_json::Value` would,
/// decoding every string and key, without keeping any of it.
struct StringsDecode;

impl<'de> serde::Deserialize<'de> for StringsDecode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StringsDecode)
    }
}

impl<'de> serde::de::Visitor<'de> for StringsDecode {
    type Value = StringsDecode;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_unit<E>(self) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<StringsDecode>()?.is_some() {}
        Ok(self)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        while map.next_entry::<StringsDecode, StringsDecode>()?.is_some() {}
        Ok(self)
    }
}

/// serde_json's recursion limit, which policies parse with.
const MAX_NESTING: usize = 128;

/// Byte offset where `json` (valid JSON) first nests deeper than `limit`.
fn nested_deeper_than(json: &str, limit: usize) -> Option<usize> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, b) in json.bytes().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return Some(i);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

fn check_plan_shape(shown: &str, plan: &Plan, text: &str) -> Result<(), TerraformError> {
    let not_a_plan = |reason: &str| TerraformError::NotAPlan {
        path: shown.to_string(),
        reason: reason.to_string(),
    };
    if plan.planned_values.is_none() && plan.resource_changes.is_empty() {
        // `terraform show -json` of a state has `values` and nothing planned.
        let top: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(text).unwrap_or_default();
        if top.contains_key("values") {
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

/// UTF-8 (with or without BOM) or UTF-16 with a BOM, as text.
fn decode_text(bytes: &[u8]) -> Result<std::borrow::Cow<'_, str>, String> {
    let utf16 = |le: bool| {
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
            .map(std::borrow::Cow::Owned)
            .map_err(|e| format!("it starts with a UTF-16 byte-order mark but is not UTF-16: {e}"))
    };
    match bytes {
        [0xFF, 0xFE, ..] => utf16(true),
        [0xFE, 0xFF, ..] => utf16(false),
        [0xEF, 0xBB, 0xBF, rest @ ..] => std::str::from_utf8(rest)
            .map(std::borrow::Cow::Borrowed)
            .map_err(|e| format!("it is not UTF-8: {e}")),
        _ => std::str::from_utf8(bytes)
            .map(std::borrow::Cow::Borrowed)
            .map_err(|e| format!("it is not UTF-8: {e}")),
    }
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
    fn nesting_is_counted_outside_strings() {
        assert_eq!(nested_deeper_than(r#"{"a":[["[[["]]}"#, 3), None);
        assert_eq!(nested_deeper_than(r#"{"a":[[[1]]]}"#, 3), Some(7));
        assert_eq!(nested_deeper_than(r#"{"a":"\\\"[[[["}"#, 1), None);
    }

    #[test]
    fn state_documents_and_trailing_data_are_refused() {
        let err =
            parse_plan_json("s.json", br#"{"format_version":"1.0","values":{}}"#).unwrap_err();
        assert!(err.to_string().contains("state document"), "{err}");
        let err = parse_plan_json(
            "p.json",
            br#"{"format_version":"1.0","resource_changes":[]} {}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("trailing characters"), "{err}");
    }

    #[test]
    fn a_newer_major_is_a_clear_error() {
        let err = parse_plan_json(
            "p.json",
            br#"{"format_version":"2.0","resource_changes":[]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("format_version 2.0"), "{err}");
    }

    /// Found by the plan_json fuzz target: a lone surrogate escape in `after`
    /// was accepted, and every policy then read that `after` as null.
    #[test]
    fn strings_policies_cannot_decode_are_refused() {
        let plan = br#"{"format_version":"1.2","resource_changes":[{"address":"a.b","type":"a","name":"b","change":{"actions":["create"],"after":{"password":"hunter2","note":"\ud800"}}}]}"#;
        let err = parse_plan_json("p.json", plan).unwrap_err();
        assert!(err.to_string().contains("hex escape"), "{err}");
        let paired = br#"{"format_version":"1.2","planned_values":{"s":"\ud83d\ude00 \u00e9"}}"#;
        assert!(parse_plan_json("p.json", paired).is_ok());
    }

    #[test]
    fn utf16_with_bom_is_read() {
        let text = r#"{"format_version":"1.1","planned_values":{}}"#;
        let mut bytes = vec![0xFF, 0xFE];
        for u in text.encode_utf16() {
            bytes.extend_from_slice(&u.to_le_bytes());
        }
        assert!(parse_plan_json("p.json", &bytes).is_ok());
    }
}
