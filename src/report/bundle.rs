//! Reading what a report of a stored plan bundle needs: the manifest, the
//! policy results, the scans of its input document and the values terraform
//! marked sensitive in its plan.

use std::path::Path;

use policy_sdk::scan::Scans;
use serde::Deserialize;

use super::model::{BundleSource, Report, with_overrides};
use crate::redact::Redactor;
use crate::store::bundle::{Bundle, BundleError};
use crate::store::records::{ApprovalRecord, OverrideRecord};
use crate::store::results::{Decision, Results, scrubbed};

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
    pub fn open(bundle: Bundle) -> Result<StoredPlan, BundleError> {
        bundle.verify()?;
        let results = bundle.read_results()?;
        let input = if bundle.manifest.files.iter().any(|f| f.path == "input.json") {
            bundle.read("input.json")?
        } else {
            b"{}".to_vec()
        };
        let redactor = bundle.redactor()?;
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
        scrubbed(
            &with_overrides(&self.results.decisions, overrides),
            &self.redactor,
        )
    }

    /// The report, with the approvals and overrides logged for the bundle;
    /// `project_dir` (when the project is at hand) places resource findings
    /// at their declarations.
    pub fn report(
        &self,
        approvals: &[ApprovalRecord],
        overrides: &[OverrideRecord],
        trust: &[String],
        project_dir: Option<&Path>,
    ) -> Result<Report, BundleError> {
        let scans: InputScans<'_> = serde_json::from_slice(&self.input)
            .map_err(|e| self.bundle.unreadable("input.json", e))?;
        let decisions = with_overrides(&self.results.decisions, overrides);
        Ok(Report::from_bundle(&BundleSource {
            digest: &self.bundle.digest,
            manifest: &self.bundle.manifest,
            decisions: &decisions,
            scans: scans.scans,
            approvals,
            overrides,
            trust,
            project_dir,
            redactor: &self.redactor,
        }))
    }
}
