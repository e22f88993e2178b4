//! `opsdeploy report BUNDLE`: a stored plan bundle, with the approvals and
//! overrides the project's audit log holds for it, as a report.

use std::path::{Path, PathBuf};

use super::approve::{counted_approvals, counted_overrides};
use super::signing::describe_in_force;
use super::{Project, WorkflowError};
use crate::report::Report;
use crate::report::bundle::StoredPlan;
use crate::store::bundle::{Bundle, BundleError, MANIFEST};
use crate::store::records::{ApprovalRecord, OverrideRecord};
use crate::store::results::Decision;

pub struct StoredReport {
    pub stored: StoredPlan,
    pub approvals: Vec<ApprovalRecord>,
    pub overrides: Vec<OverrideRecord>,
    /// How the approvals were judged (signed by whom, or unsigned).
    pub trust: Vec<String>,
    /// The project, when the bundle is one of the project in the current directory.
    pub project_dir: Option<PathBuf>,
}

/// Opens `bundle` — a digest (or a unique prefix) of the project in `dir`,
/// or a bundle directory — with what the project's log says about it.
pub fn open(dir: &Path, bundle: &str) -> Result<StoredReport, WorkflowError> {
    let path = Path::new(bundle);
    let (bundle, project) = if path.join(MANIFEST).is_file() {
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(WorkflowError::NotABundleDirectory {
                path: bundle.to_string(),
            });
        };
        let opened = Bundle::open(parent, &name.to_string_lossy())?;
        // Approvals live in the project's audit log, when the project is here.
        (opened, Project::open(dir).ok())
    } else {
        let project = Project::open(dir)?;
        // Team mode keeps bundles in the database; this brings a copy here.
        project.store.fetch_bundle(bundle)?;
        let opened = Bundle::open(&project.store.bundles_dir(), bundle).map_err(|e| match e {
            BundleError::NotFound { .. } => WorkflowError::NoSuchBundle {
                digest: bundle.to_string(),
            },
            e => e.into(),
        })?;
        (opened, Some(project))
    };
    let stored = StoredPlan::open(bundle)?;
    let history = match &project {
        Some(p) => Some(p.history()?),
        None => None,
    };
    let digest = &stored.bundle.digest;
    let env = &stored.bundle.manifest.environment;
    // With signers, only approvals whose signatures count are shown as such.
    let (approvals, overrides, trust) = match (&project, &history) {
        (Some(p), Some(h)) => {
            let trust = vec![describe_in_force(h, p, env, digest)];
            match p.config.environment(env) {
                Some(e) => (
                    counted_approvals(p, e, h, digest).0,
                    counted_overrides(p, e, h, digest).0,
                    trust,
                ),
                None => (h.approvals(digest), h.overrides(digest), trust),
            }
        }
        _ => (
            Vec::new(),
            Vec::new(),
            vec!["approvals: not known (no project log here to check them against)".into()],
        ),
    };
    Ok(StoredReport {
        approvals,
        overrides,
        trust,
        project_dir: project.map(|p| p.dir().to_path_buf()),
        stored,
    })
}

impl StoredReport {
    /// The decisions as they stand now (overrides logged since applied),
    /// secret values scrubbed.
    pub fn decisions(&self) -> Vec<Decision> {
        self.stored.decisions(&self.overrides)
    }

    pub fn blocked(&self) -> bool {
        self.decisions().iter().any(|d| d.blocks)
    }

    pub fn report(&self) -> Result<Report, WorkflowError> {
        Ok(self.stored.report(
            &self.approvals,
            &self.overrides,
            &self.trust,
            self.project_dir.as_deref(),
        )?)
    }
}
