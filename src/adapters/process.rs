//! Running the tools opsdeploy wraps: found with `which` (or a configured
//! path), run with a deadline, their output captured, and their failure
//! summarised in our error. `-v` logs what ran (the command without values
//! such as `-var=k=v`, exit code, output sizes, time), never the output:
//! `terraform show -json` prints every sensitive value of the plan.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("{tool} is not installed: no `{tool}` on PATH and no {setting} in opsdeploy.hcl")]
    NotFound {
        tool: &'static str,
        setting: &'static str,
    },
    #[error("could not run {command}: {reason}")]
    Spawn { command: String, reason: String },
    #[error("`{command}` failed: {summary}")]
    Failed { command: String, summary: String },
    #[error("`{command}` did not finish within {timeout:?}; it was stopped")]
    TimedOut { command: String, timeout: Duration },
}

/// A tool binary, resolved once.
#[derive(Debug, Clone)]
pub struct Tool {
    pub name: &'static str,
    pub path: PathBuf,
}

impl Tool {
    /// `configured` if set, else `name` on PATH.
    pub fn find(
        name: &'static str,
        setting: &'static str,
        configured: Option<&Path>,
    ) -> Result<Tool, ToolError> {
        let path = match configured {
            Some(p) => p.to_path_buf(),
            None => which::which(name).map_err(|_| ToolError::NotFound {
                tool: name,
                setting,
            })?,
        };
        Ok(Tool { name, path })
    }

    /// Runs `args` in `dir`; a non-zero exit is an error summarising stderr
    /// (lines starting with `Error:` when the tool prints any).
    pub fn run(
        &self,
        dir: Option<&Path>,
        args: &[String],
        timeout: Duration,
    ) -> Result<Output, ToolError> {
        let out = self.run_status(dir, args, timeout)?;
        if out.code == 0 {
            Ok(out)
        } else {
            Err(ToolError::Failed {
                command: self.shown(args),
                summary: summarize(&out.stderr, &out.stdout, out.code),
            })
        }
    }

    /// Runs `args` and returns whatever exit code it had.
    pub fn run_status(
        &self,
        dir: Option<&Path>,
        args: &[String],
        timeout: Duration,
    ) -> Result<Output, ToolError> {
        let shown = self.shown(args);
        tracing::debug!(command = %shown, "running");
        let mut cmd = super::child::command(self.path.as_os_str(), args, dir).map_err(|e| {
            ToolError::Spawn {
                command: shown.clone(),
                reason: e.to_string(),
            }
        })?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1");
        let mut child = cmd.spawn().map_err(|e| ToolError::Spawn {
            command: shown.clone(),
            reason: e.to_string(),
        })?;
        // Drain both pipes while waiting so a chatty tool never blocks on a full pipe.
        let stdout = child.stdout.take().map(reader);
        let stderr = child.stderr.take().map(reader);
        let started = Instant::now();
        let mut step = super::progress::Step::start(&shown);
        // Polled: 1 ms at first, doubling to 20 ms, so a quick command (init,
        // version) is not held to the poll's period.
        let mut poll = Duration::from_millis(1);
        let status = loop {
            step.tick();
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if started.elapsed() > timeout => {
                    super::child::kill_group(&mut child);
                    return Err(ToolError::TimedOut {
                        command: shown,
                        timeout,
                    });
                }
                Ok(None) => {
                    std::thread::sleep(poll);
                    poll = (poll * 2).min(Duration::from_millis(20));
                }
                Err(e) => {
                    return Err(ToolError::Spawn {
                        command: shown,
                        reason: e.to_string(),
                    });
                }
            }
        };
        drop(step);
        let join = |h: Option<std::thread::JoinHandle<Vec<u8>>>| {
            h.and_then(|h| h.join().ok()).unwrap_or_default()
        };
        let out = Output {
            code: status.code().unwrap_or(-1),
            stdout: join(stdout),
            stderr: join(stderr),
        };
        tracing::debug!(
            command = %shown,
            code = out.code,
            stdout_bytes = out.stdout.len(),
            stderr_bytes = out.stderr.len(),
            millis = started.elapsed().as_millis() as u64,
            "finished"
        );
        Ok(out)
    }

    /// The command for messages and logs: the tool and its first arguments,
    /// up to the first that may carry a value (`-var=k=v`, `--set k=v`).
    fn shown(&self, args: &[String]) -> String {
        let mut s = self.name.to_string();
        let carries_value = |a: &String| a.starts_with("-var") || a.starts_with("--set");
        for a in args.iter().take(3).take_while(|a| !carries_value(a)) {
            s.push(' ');
            s.push_str(a);
        }
        s
    }
}

fn reader(mut pipe: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

#[derive(Debug, Clone)]
pub struct Output {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// The tool's own diagnostics in one line: its `Error:` lines (terraform
/// draws boxes around them), else its last non-empty line.
pub fn summarize(stderr: &[u8], stdout: &[u8], code: i32) -> String {
    let text = String::from_utf8_lossy(stderr);
    let errors: Vec<String> = text
        .lines()
        .map(|l| l.trim_start_matches(['│', '╷', '╵', ' ']).trim())
        .filter(|l| l.starts_with("Error:") || l.starts_with("error:"))
        .map(String::from)
        .collect();
    if !errors.is_empty() {
        return errors.join("; ");
    }
    let out = String::from_utf8_lossy(stdout);
    text.lines()
        .chain(out.lines())
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .map(|l| format!("{l} (exit status {code})"))
        .unwrap_or_else(|| format!("exit status {code}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terraform_style_errors_are_summarised() {
        let stderr = "╷\n│ Error: Unsupported argument\n│ \n│   on main.tf line 3\n╵\n";
        assert_eq!(
            summarize(stderr.as_bytes(), b"", 1),
            "Error: Unsupported argument"
        );
        assert_eq!(
            summarize(b"", b"last words\n", 3),
            "last words (exit status 3)"
        );
    }

    #[test]
    fn a_missing_tool_names_the_setting() {
        let err = Tool::find("no-such-tool-opsdeploy", "tools.helm", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no-such-tool-opsdeploy is not installed: no `no-such-tool-opsdeploy` on PATH and no tools.helm in opsdeploy.hcl"
        );
    }

    #[test]
    fn a_hanging_tool_is_stopped_at_its_deadline() {
        let sh = Tool::find("sh", "-", None).unwrap();
        let err = sh
            .run(
                None,
                &["-c".into(), "sleep 5".into()],
                Duration::from_millis(200),
            )
            .unwrap_err();
        assert!(matches!(err, ToolError::TimedOut { .. }), "{err}");
    }
}
