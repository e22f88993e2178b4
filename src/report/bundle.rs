//! Reading what a report of a stored plan bundle needs: the manifest, the
//! policy results, the scans of its input document and the values terraform
//! marked sensitive in its plan.

use std::path::Path;

use policy_sdk::scan::Scans;
use serde::Deserialize;

use super::model::{BundleSource, Report, with_overrides};
use super::redact::Redactor;
use crate::store::bundle::{Bundle, BundleError, RESULTS};
use crate::workflow::history::{ApprovalRecord, OverrideRecord};
use crate::workflow::policies::{Decision, Results};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error("{file} of plan bundle {digest} is not readable: {reason}")]
    Unreadable {
        digest: String,
        file: String,
        reason: String,
    },
}

/// A sealed bundle with its results, checked against its digest.
pub struct StoredPlan {
    pub bundle: Bundle,
    pub results: Results,
    input: Vec<u8>,
    redactor: Redactor,
}

/// Just the part of the input document a report shows.
#[derive(Deserialize)]
struct InputScans<'a> {
    #[serde(borrow, default)]
    scans: Option<Scans<'a>>,
}

impl StoredPlan {
    /// Reads a bundle's results and input; refuses a bundle whose files no
    /// longer match its digest (a report of it would vouch for other files).
    pub fn open(bundle: Bundle) -> Result<StoredPlan, ReportError> {
        bundle.verify()?;
        let unreadable = |file: &str, reason: String| ReportError::Unreadable {
            digest: bundle.digest.clone(),
            file: file.to_string(),
            reason,
        };
        let results: Results = serde_json::from_slice(&bundle.read(RESULTS)?)
            .map_err(|e| unreadable(RESULTS, e.to_string()))?;
        let input = if bundle.manifest.files.iter().any(|f| f.path == "input.json") {
            bundle.read("input.json")?
        } else {
            b"{}".to_vec()
        };
        let redactor = redactor_for(&bundle)?;
        Ok(StoredPlan {
            bundle,
            results,
            input,
            redactor,
        })
    }

    /// The policy decisions with the overrides logged since the plan applied
    /// and secret values scrubbed, for human output.
    pub fn decisions(&self, overrides: &[OverrideRecord]) -> Vec<Decision> {
        self.redactor
            .scrub_decisions(&with_overrides(&self.results.decisions, overrides))
    }

    /// The report, with the approvals and overrides logged for the bundle;
    /// `project_dir` (when the project is at hand) places resource findings
    /// at their declarations.
    pub fn report(
        &self,
        approvals: &[ApprovalRecord],
        overrides: &[OverrideRecord],
        project_dir: Option<&Path>,
    ) -> Result<Report, ReportError> {
        let scans: InputScans<'_> =
            serde_json::from_slice(&self.input).map_err(|e| ReportError::Unreadable {
                digest: self.bundle.digest.clone(),
                file: "input.json".into(),
                reason: e.to_string(),
            })?;
        let decisions = with_overrides(&self.results.decisions, overrides);
        Ok(Report::from_bundle(&BundleSource {
            digest: &self.bundle.digest,
            manifest: &self.bundle.manifest,
            decisions: &decisions,
            scans: scans.scans,
            approvals,
            overrides,
            project_dir,
            redactor: &self.redactor,
        }))
    }
}

/// The secrets of a bundle: the values its terraform plan marks sensitive.
pub fn redactor_for(bundle: &Bundle) -> Result<Redactor, ReportError> {
    if !bundle.manifest.files.iter().any(|f| f.path == "plan.json") {
        return Ok(Redactor::default());
    }
    let unreadable = |reason: String| ReportError::Unreadable {
        digest: bundle.digest.clone(),
        file: "plan.json".into(),
        reason,
    };
    let plan = String::from_utf8(bundle.read("plan.json")?)
        .map_err(|e| unreadable(e.utf8_error().to_string()))?;
    crate::adapters::terraform::sensitive_values("plan.json", &plan)
        .map(Redactor::from_values)
        .map_err(|e| unreadable(e.to_string()))
}
