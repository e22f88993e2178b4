//! Who is acting: `OPSDEPLOY_USER`, else `git config user.email`, else `$USER`.

use std::path::Path;
use std::process::Command;

/// Who is acting when nothing says: an approval by nobody in particular is
/// refused (see `approve`).
pub const UNKNOWN: &str = "unknown";

pub fn current(project: &Path) -> String {
    current_with_source(project).0
}

/// Who is acting and what said so (`OPSDEPLOY_USER`, `git config
/// user.email`, `$USER`), for a refusal that names both.
pub fn current_with_source(project: &Path) -> (String, &'static str) {
    if let Some(u) = non_empty(std::env::var("OPSDEPLOY_USER").ok()) {
        return (u, "OPSDEPLOY_USER");
    }
    let git = Command::new("git")
        .args(["config", "user.email"])
        .current_dir(project)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if let Some(email) = non_empty(git) {
        return (email, "git config user.email");
    }
    match non_empty(std::env::var("USER").ok()) {
        Some(u) => (u, "$USER"),
        None => (UNKNOWN.into(), "nothing"),
    }
}

/// Trimmed, and with control characters shown escaped: the name is recorded
/// in the audit log and printed on terminals.
fn non_empty(s: Option<String>) -> Option<String> {
    s.map(|s| crate::escape::controls(s.trim()).into_owned())
        .filter(|s| !s.is_empty())
}
