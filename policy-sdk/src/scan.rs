//! Trivy's JSON report (`trivy image|fs --format json`, SchemaVersion 2).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The `scans` section: the environment's scan settings and trivy's reports.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Scans<'a> {
    /// `scan { fail_on = "CRITICAL" }` of the environment.
    #[serde(default)]
    pub fail_on: Option<TrivySeverity>,
    /// Accepted findings, from the file `scan { allowlist = "..." }` names.
    #[serde(borrow, default)]
    pub allowlist: Option<Allowlist<'a>>,
    #[serde(borrow, default)]
    pub reports: Vec<Scan<'a>>,
}

/// Accepted findings, in trivy's `.trivyignore.yaml` shape
/// (`vulnerabilities:` and `misconfigurations:`, each a list of `{id,
/// statement, expired_at}`), read by the host.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Allowlist<'a> {
    /// The file, relative to the project.
    #[serde(borrow)]
    pub path: Cow<'a, str>,
    /// Accepted vulnerabilities.
    #[serde(borrow, default)]
    pub entries: Vec<AllowlistEntry<'a>>,
    /// Accepted misconfigurations, by check id (`DS002`, `AVD-KSV-0014`).
    #[serde(borrow, default, skip_serializing_if = "Vec::is_empty")]
    pub misconfigurations: Vec<AllowlistEntry<'a>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AllowlistEntry<'a> {
    /// e.g. `CVE-2019-1549`.
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    /// Why it is accepted.
    #[serde(borrow, default)]
    pub statement: Option<Cow<'a, str>>,
    /// `YYYY-MM-DD`; the entry stops counting after this day.
    #[serde(borrow, default)]
    pub expired_at: Option<Cow<'a, str>>,
    /// Restricts the entry to these images (references) or, for a
    /// misconfiguration, to these files (trivy's `paths`); all when empty.
    #[serde(borrow, default)]
    pub targets: Vec<Cow<'a, str>>,
    /// 1-based line of the entry in the file.
    #[serde(default)]
    pub line: Option<u32>,
}

/// One scan in the input document: what was scanned and trivy's report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scan<'a> {
    /// The image reference or directory as configured.
    #[serde(borrow)]
    pub target: Cow<'a, str>,
    pub kind: ScanKind,
    #[serde(borrow)]
    pub report: Report<'a>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScanKind {
    Image,
    Fs,
}

/// Trivy severities, ordered so `>=` means "at least as severe".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TrivySeverity {
    Unknown,
    Low,
    Medium,
    High,
    Critical,
}

impl TrivySeverity {
    pub const ALL: [TrivySeverity; 5] = [
        TrivySeverity::Critical,
        TrivySeverity::High,
        TrivySeverity::Medium,
        TrivySeverity::Low,
        TrivySeverity::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TrivySeverity::Unknown => "UNKNOWN",
            TrivySeverity::Low => "LOW",
            TrivySeverity::Medium => "MEDIUM",
            TrivySeverity::High => "HIGH",
            TrivySeverity::Critical => "CRITICAL",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|sev| sev.as_str().eq_ignore_ascii_case(s))
    }
}

impl std::fmt::Display for TrivySeverity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Report<'a> {
    pub schema_version: u32,
    #[serde(borrow, default)]
    pub created_at: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub artifact_name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub artifact_type: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub metadata: Option<Metadata<'a>>,
    /// Absent when trivy found nothing to scan.
    #[serde(borrow, default)]
    pub results: Vec<ScanResult<'a>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Metadata<'a> {
    #[serde(borrow, rename = "ImageID", default)]
    pub image_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub repo_tags: Vec<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub repo_digests: Vec<Cow<'a, str>>,
    #[serde(borrow, rename = "OS", default)]
    pub os: Option<Os<'a>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Os<'a> {
    #[serde(borrow, default)]
    pub family: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub name: Option<Cow<'a, str>>,
    #[serde(rename = "EOSL", default)]
    pub eosl: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScanResult<'a> {
    #[serde(borrow)]
    pub target: Cow<'a, str>,
    /// `os-pkgs`, `lang-pkgs`, `secret`, `config`, `license`...
    #[serde(borrow, default)]
    pub class: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "Type", default)]
    pub result_type: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "null_as_empty")]
    pub vulnerabilities: Vec<Vulnerability<'a>>,
    #[serde(borrow, default, deserialize_with = "null_as_empty")]
    pub secrets: Vec<SecretFinding<'a>>,
    #[serde(borrow, default, deserialize_with = "null_as_empty")]
    pub misconfigurations: Vec<Misconfiguration<'a>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Vulnerability<'a> {
    #[serde(borrow, rename = "VulnerabilityID")]
    pub vulnerability_id: Cow<'a, str>,
    #[serde(borrow, rename = "PkgID", default)]
    pub pkg_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub pkg_name: Cow<'a, str>,
    #[serde(borrow, default)]
    pub installed_version: Option<Cow<'a, str>>,
    /// Empty or absent when no fixed version exists.
    #[serde(borrow, default)]
    pub fixed_version: Option<Cow<'a, str>>,
    /// `fixed`, `affected`, `will_not_fix`, `fix_deferred`, `end_of_life`, ...
    #[serde(borrow, default)]
    pub status: Option<Cow<'a, str>>,
    pub severity: TrivySeverity,
    #[serde(borrow, default)]
    pub title: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "PrimaryURL", default)]
    pub primary_url: Option<Cow<'a, str>>,
    /// Scores by source (`nvd`, `redhat`, `ghsa`...): V2Score, V3Score, vectors.
    #[serde(borrow, rename = "CVSS", default)]
    pub cvss: Option<&'a RawValue>,
}

impl Vulnerability<'_> {
    /// A fixed version exists to upgrade to.
    pub fn has_fix(&self) -> bool {
        self.fixed_version.as_deref().is_some_and(|v| !v.is_empty())
    }
}

/// A secret trivy found. Trivy masks the secret in `Match`; other lines of
/// `Code` may still hold secrets, so opsdeploy never prints `Code`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecretFinding<'a> {
    #[serde(borrow, rename = "RuleID")]
    pub rule_id: Cow<'a, str>,
    #[serde(borrow, default)]
    pub category: Option<Cow<'a, str>>,
    pub severity: TrivySeverity,
    #[serde(borrow, default)]
    pub title: Option<Cow<'a, str>>,
    #[serde(default)]
    pub start_line: Option<u32>,
    #[serde(default)]
    pub end_line: Option<u32>,
    #[serde(borrow, default)]
    pub r#match: Option<Cow<'a, str>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Misconfiguration<'a> {
    #[serde(borrow, rename = "ID")]
    pub id: Cow<'a, str>,
    #[serde(borrow, rename = "AVDID", default)]
    pub avd_id: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "Type", default)]
    pub check_type: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub title: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub message: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub resolution: Option<Cow<'a, str>>,
    pub severity: TrivySeverity,
    /// `FAIL`, `PASS` or `EXCEPTION`.
    #[serde(borrow, default)]
    pub status: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "PrimaryURL", default)]
    pub primary_url: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub cause_metadata: Option<CauseMetadata<'a>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CauseMetadata<'a> {
    #[serde(borrow, default)]
    pub resource: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub provider: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub service: Option<Cow<'a, str>>,
    #[serde(default)]
    pub start_line: Option<u32>,
    #[serde(default)]
    pub end_line: Option<u32>,
}

/// Trivy writes `null` for an empty list in some versions.
fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// Vulnerability counts by severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeverityCounts {
    pub critical: usize,
    pub high: usize,
    pub medium: usize,
    pub low: usize,
    pub unknown: usize,
}

impl SeverityCounts {
    pub fn add(&mut self, sev: TrivySeverity) {
        *self.get_mut(sev) += 1;
    }

    fn get_mut(&mut self, sev: TrivySeverity) -> &mut usize {
        match sev {
            TrivySeverity::Critical => &mut self.critical,
            TrivySeverity::High => &mut self.high,
            TrivySeverity::Medium => &mut self.medium,
            TrivySeverity::Low => &mut self.low,
            TrivySeverity::Unknown => &mut self.unknown,
        }
    }

    pub fn get(&self, sev: TrivySeverity) -> usize {
        let mut copy = *self;
        *copy.get_mut(sev)
    }

    /// How many findings are at `threshold` or above it.
    pub fn at_or_above(&self, threshold: TrivySeverity) -> usize {
        TrivySeverity::ALL
            .into_iter()
            .filter(|s| *s >= threshold)
            .map(|s| self.get(s))
            .sum()
    }

    pub fn total(&self) -> usize {
        self.at_or_above(TrivySeverity::Unknown)
    }
}

impl Report<'_> {
    /// Every vulnerability in every result.
    pub fn vulnerabilities(&self) -> impl Iterator<Item = &Vulnerability<'_>> {
        self.results.iter().flat_map(|r| r.vulnerabilities.iter())
    }

    /// Vulnerability counts by severity.
    pub fn severity_counts(&self) -> SeverityCounts {
        let mut counts = SeverityCounts::default();
        for v in self.vulnerabilities() {
            counts.add(v.severity);
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_order_by_seriousness() {
        assert!(TrivySeverity::Critical > TrivySeverity::High);
        assert!(TrivySeverity::Low > TrivySeverity::Unknown);
        assert_eq!(
            TrivySeverity::parse("critical"),
            Some(TrivySeverity::Critical)
        );
        assert_eq!(TrivySeverity::parse("fatal"), None);
    }

    #[test]
    fn counts_at_or_above_a_threshold() {
        let mut c = SeverityCounts::default();
        for s in [
            TrivySeverity::Critical,
            TrivySeverity::High,
            TrivySeverity::Low,
        ] {
            c.add(s);
        }
        assert_eq!(c.at_or_above(TrivySeverity::High), 2);
        assert_eq!(c.total(), 3);
    }

    #[test]
    fn null_lists_read_as_empty() {
        let r: Report = serde_json::from_str(
            r#"{"SchemaVersion":2,"Results":[{"Target":"x","Vulnerabilities":null}]}"#,
        )
        .unwrap();
        assert!(r.results[0].vulnerabilities.is_empty());
    }
}
