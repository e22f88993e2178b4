//! The project's continuity file (e.g. CONTINUITY.md): failed deploys and
//! rollbacks are appended as incidents, and the next plan of the same
//! environment shows the ones since its last successful deploy.

use std::fmt::Write as _;

use super::Project;
use crate::fsutil::write_atomic;

const HEADER: &str =
    "# Continuity\n\nIncidents recorded by opsdeploy: failed deploys and rollbacks, newest last.\n";

/// An incident to record.
pub struct Incident<'a> {
    pub at: &'a str,
    pub environment: &'a str,
    pub title: &'a str,
    pub digest: &'a str,
    pub details: Vec<String>,
}

/// Appends an incident (the file is rewritten atomically).
pub fn record(project: &Project, incident: &Incident) -> std::io::Result<()> {
    let path = project
        .config
        .resolve(&project.config.files.continuity_file);
    let mut text = std::fs::read_to_string(&path).unwrap_or_else(|_| HEADER.to_string());
    if !text.ends_with('\n') {
        text.push('\n');
    }
    // Between markers: a plan's digest covers the file without them, so
    // recording an incident does not invalidate other approved plans.
    let (start, end) = crate::generated::markers("incident");
    let _ = write!(
        text,
        "\n{start}\n### {} — {} — {}\n\n- bundle: `{}`\n",
        incident.at, incident.environment, incident.title, incident.digest
    );
    for d in &incident.details {
        let _ = writeln!(text, "- {}", d.replace('\n', " "));
    }
    let _ = writeln!(text, "{end}");
    write_atomic(&path, text.as_bytes())
}

/// Incidents of `environment` recorded after its last successful deploy, as
/// heading line plus details.
pub fn incidents_for(project: &Project, environment: &str) -> Vec<String> {
    let path = project
        .config
        .resolve(&project.config.files.continuity_file);
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let since = project.history().ok().and_then(|h| {
        h.current(environment)
            .and_then(|c| c.finish.map(|f| f.at.clone()))
    });
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    let flush = |cur: &mut Option<String>, out: &mut Vec<String>| {
        if let Some(c) = cur.take() {
            out.push(c.trim_end().to_string());
        }
    };
    for line in text.lines() {
        if let Some(heading) = line.strip_prefix("### ") {
            flush(&mut current, &mut out);
            let parts: Vec<&str> = heading.splitn(3, " — ").collect();
            let (at, env) = (parts.first().copied().unwrap_or(""), parts.get(1).copied());
            let newer = since.as_deref().is_none_or(|s| at > s);
            if env == Some(environment) && newer {
                current = Some(format!("{heading}\n"));
            }
        } else if let Some(c) = current.as_mut()
            && !line.trim().is_empty()
            && !line.starts_with("<!-- opsdeploy:")
        {
            c.push_str(line);
            c.push('\n');
        }
    }
    flush(&mut current, &mut out);
    out
}
