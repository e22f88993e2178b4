//! Post-deploy checks: HTTP health endpoints, the smoke-test command and the
//! error-rate command watched over the monitor window.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(
        "{url} did not answer {expected} within {timeout:?} ({attempts} attempts; last: {last})"
    )]
    Unhealthy {
        url: String,
        expected: u16,
        timeout: Duration,
        attempts: u32,
        last: String,
    },
    #[error("`{command}` failed: {reason}")]
    Command { command: String, reason: String },
    #[error("error rate {rate} is above the limit {max} (reported by `{command}`)")]
    ErrorRate {
        command: String,
        rate: f64,
        max: f64,
    },
}

/// Polls `url` until it answers `expected` or `timeout` passes.
pub fn wait_healthy(
    url: &str,
    expected: u16,
    timeout: Duration,
    interval: Duration,
) -> Result<u32, CheckError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(interval.max(Duration::from_secs(1)).min(timeout)))
        .http_status_as_error(false)
        .build()
        .into();
    let started = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let last = match agent.get(url).call() {
            Ok(resp) if resp.status().as_u16() == expected => return Ok(attempts),
            Ok(resp) => format!("HTTP {}", resp.status().as_u16()),
            Err(e) => e.to_string(),
        };
        // The URL may carry credentials (user info, a token in the query).
        tracing::debug!(
            url = %super::notify::redact_url(url),
            attempts,
            "health check not passing yet"
        );
        if started.elapsed() + interval > timeout {
            return Err(CheckError::Unhealthy {
                url: url.to_string(),
                expected,
                timeout,
                attempts,
                last,
            });
        }
        std::thread::sleep(interval);
    }
}

/// Runs a command in `dir` with a deadline; returns its stdout.
pub fn run_command(
    dir: &Path,
    command: &[String],
    timeout: Duration,
) -> Result<String, CheckError> {
    let shown = command.join(" ");
    let fail = |reason: String| CheckError::Command {
        command: shown.clone(),
        reason,
    };
    let (program, args) = command
        .split_first()
        .ok_or_else(|| fail("empty command".into()))?;
    let mut child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("could not start it: {e}")))?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
                let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
                if status.success() {
                    return Ok(stdout);
                }
                let stderr = String::from_utf8_lossy(&out.stderr);
                let last = stderr
                    .lines()
                    .chain(stdout.lines())
                    .rfind(|l| !l.trim().is_empty())
                    .unwrap_or("");
                return Err(fail(format!(
                    "exit status {}{}",
                    status.code().unwrap_or(-1),
                    if last.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", last.trim())
                    }
                )));
            }
            Ok(None) if started.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!("timed out after {timeout:?}")));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(fail(e.to_string())),
        }
    }
}

/// Runs the error-rate command every `interval` for `window`; fails as soon as
/// a reading is above `max`. The command prints one number (0.0 to 1.0).
pub fn watch_error_rate(
    dir: &Path,
    command: &[String],
    window: Duration,
    interval: Duration,
    max: f64,
) -> Result<Vec<f64>, CheckError> {
    let started = Instant::now();
    let mut readings = Vec::new();
    loop {
        let out = run_command(dir, command, interval.max(Duration::from_secs(30)))?;
        let rate: f64 = out.trim().parse().map_err(|_| CheckError::Command {
            command: command.join(" "),
            reason: format!("printed {:?}, not a number", out.trim()),
        })?;
        readings.push(rate);
        if rate > max {
            return Err(CheckError::ErrorRate {
                command: command.join(" "),
                rate,
                max,
            });
        }
        if started.elapsed() + interval > window {
            return Ok(readings);
        }
        std::thread::sleep(interval);
    }
}
