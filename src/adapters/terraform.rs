//! Terraform: reading `terraform show -json` plan documents.

use std::path::Path;

use policy_sdk::terraform::Plan;
use serde_json::value::RawValue;

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
    let plan: Plan = serde_json::from_str(raw.get()).map_err(|e| TerraformError::NotAPlan {
        path: shown.to_string(),
        reason: e.to_string(),
    })?;
    check_plan_shape(shown, &plan, raw.get())?;
    Ok(raw)
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

#[cfg(test)]
mod tests {
    use super::*;

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

/// How to run terraform for one root module.
#[derive(Debug, Clone)]
pub struct TerraformOptions {
    pub binary: Option<std::path::PathBuf>,
    pub dir: std::path::PathBuf,
    pub workspace: Option<String>,
    pub var_files: Vec<std::path::PathBuf>,
    pub vars: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("terraform not found on PATH; install it or set terraform.binary in opsdeploy.hcl")]
    NotFound,
    #[error("`terraform {command}` failed in {dir}: {summary}")]
    Failed {
        command: String,
        dir: String,
        summary: String,
    },
    #[error("could not run terraform: {0}")]
    Spawn(std::io::Error),
}

/// Terraform for one root module.
pub struct Terraform {
    binary: std::path::PathBuf,
    opts: TerraformOptions,
}

impl Terraform {
    pub fn new(opts: TerraformOptions) -> Result<Self, RunError> {
        let binary = match &opts.binary {
            Some(b) => b.clone(),
            None => which::which("terraform").map_err(|_| RunError::NotFound)?,
        };
        Ok(Terraform { binary, opts })
    }

    fn run(&self, args: &[&str]) -> Result<std::process::Output, RunError> {
        let mut cmd = std::process::Command::new(&self.binary);
        cmd.args(args)
            .current_dir(&self.opts.dir)
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1");
        if let Some(ws) = &self.opts.workspace {
            cmd.env("TF_WORKSPACE", ws);
        }
        tracing::debug!(?args, dir = %self.opts.dir.display(), "running terraform");
        let out = cmd.output().map_err(RunError::Spawn)?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let summary = stderr
                .lines()
                .map(|l| l.trim_start_matches(['│', '╷', '╵', ' ']))
                .filter(|l| l.starts_with("Error:"))
                .collect::<Vec<_>>()
                .join("; ");
            tracing::debug!("terraform output:\n{stderr}");
            return Err(RunError::Failed {
                command: args.first().copied().unwrap_or_default().to_string(),
                dir: self.opts.dir.display().to_string(),
                summary: if summary.is_empty() {
                    stderr.trim().to_string()
                } else {
                    summary
                },
            });
        }
        Ok(out)
    }

    pub fn init(&self) -> Result<(), RunError> {
        self.run(&["init", "-input=false", "-no-color"]).map(|_| ())
    }

    /// `plan -out=FILE` with the configured var files and vars.
    pub fn plan(&self, out: &Path) -> Result<(), RunError> {
        let mut args = vec![
            "plan".to_string(),
            "-input=false".into(),
            "-no-color".into(),
            format!("-out={}", out.display()),
        ];
        for f in &self.opts.var_files {
            args.push(format!("-var-file={}", f.display()));
        }
        for (k, v) in &self.opts.vars {
            args.push(format!("-var={k}={v}"));
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(&refs).map(|_| ())
    }

    pub fn show_json(&self, planfile: &Path) -> Result<Vec<u8>, RunError> {
        let p = planfile.display().to_string();
        self.run(&["show", "-json", "-no-color", &p])
            .map(|o| o.stdout)
    }

    /// Applies exactly the saved plan.
    pub fn apply(&self, planfile: &Path) -> Result<(), RunError> {
        let p = planfile.display().to_string();
        self.run(&["apply", "-input=false", "-no-color", "-auto-approve", &p])
            .map(|_| ())
    }

    /// `plan -refresh-only -detailed-exitcode`: has the real infrastructure
    /// drifted from terraform's state? Exit 0: no, 2: yes, 1: error.
    pub fn drifted(&self) -> Result<(bool, String), RunError> {
        let mut args = vec![
            "plan".to_string(),
            "-refresh-only".into(),
            "-detailed-exitcode".into(),
            "-input=false".into(),
            "-no-color".into(),
        ];
        for f in &self.opts.var_files {
            args.push(format!("-var-file={}", f.display()));
        }
        for (k, v) in &self.opts.vars {
            args.push(format!("-var={k}={v}"));
        }
        let mut cmd = std::process::Command::new(&self.binary);
        cmd.args(&args)
            .current_dir(&self.opts.dir)
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1");
        let out = cmd.output().map_err(RunError::Spawn)?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        match out.status.code() {
            Some(0) => Ok((false, stdout)),
            Some(2) => Ok((true, stdout)),
            _ => Err(RunError::Failed {
                command: "plan -refresh-only".into(),
                dir: self.opts.dir.display().to_string(),
                summary: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            }),
        }
    }

    pub fn version(&self) -> Result<String, RunError> {
        let out = self.run(&["version", "-json"])?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        Ok(v["terraform_version"]
            .as_str()
            .unwrap_or("unknown")
            .to_string())
    }
}
