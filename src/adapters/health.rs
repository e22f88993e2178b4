//! Post-deploy checks: HTTP health endpoints, the smoke-test command and the
//! error-rate command watched over the monitor window.

use std::path::Path;
use std::process::Stdio;
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
    let mut child = super::child::command(program.as_ref(), args, Some(dir))
        .map_err(|e| fail(format!("could not start it: {e}")))?
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
                super::child::kill_group(&mut child);
                return Err(fail(format!("timed out after {timeout:?}")));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(fail(e.to_string())),
        }
    }
}

/// When the readings of a monitor window are taken, from its start: every
/// `interval`, and the last one at the end of the window itself.
pub fn reading_times(window: Duration, interval: Duration) -> Vec<Duration> {
    let mut times = vec![Duration::ZERO];
    if interval.is_zero() {
        times.push(window);
        return times;
    }
    let mut t = interval;
    while t < window {
        times.push(t);
        t += interval;
    }
    if window > Duration::ZERO {
        times.push(window);
    }
    times
}

/// Runs the error-rate command at every [`reading_times`] of `window`;
/// fails as soon as a reading is above `max`. The command prints one number
/// (0.0 to 1.0). The window lasts `window`, however long each reading takes.
pub fn watch_error_rate(
    dir: &Path,
    command: &[String],
    window: Duration,
    interval: Duration,
    max: f64,
) -> Result<Vec<f64>, CheckError> {
    let started = Instant::now();
    let mut readings = Vec::new();
    for at in reading_times(window, interval) {
        if let Some(wait) = at.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
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
    }
    Ok(readings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_monitor_window_reads_every_interval_including_its_end() {
        let s = Duration::from_secs;
        // The default: 15 minutes every 30 s is 31 readings, the last at 15:00.
        let times = reading_times(s(900), s(30));
        assert_eq!(times.len(), 31);
        assert_eq!(times.last(), Some(&s(900)));
        assert_eq!(reading_times(s(3), s(1)), vec![s(0), s(1), s(2), s(3)]);
        // A window that is not a multiple of the interval still ends at its end.
        assert_eq!(reading_times(s(5), s(2)), vec![s(0), s(2), s(4), s(5)]);
        assert_eq!(reading_times(s(0), s(1)), vec![s(0)]);
    }

    #[test]
    fn a_watched_window_lasts_the_configured_duration() {
        let dir = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let readings = watch_error_rate(
            dir.path(),
            &["echo".into(), "0.001".into()],
            Duration::from_millis(1200),
            Duration::from_millis(400),
            0.01,
        )
        .unwrap();
        assert_eq!(readings.len(), 4);
        assert!(started.elapsed() >= Duration::from_millis(1200));
    }
}
