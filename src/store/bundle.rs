//! Plan bundles: everything an apply will use, named by a digest.
//!
//! A bundle is a directory `bundles/DIGEST/` holding the saved terraform plan,
//! its JSON, rendered manifests, scan reports, migrations and the input
//! document, plus `manifest.json`, which lists every file with its sha256, the
//! project files the plan was made from (with theirs), the policy modules and
//! settings evaluated, and tool versions. The digest is the sha256 of
//! `manifest.json`, so changing any file — in the bundle or in the project —
//! changes what the digest vouches for. The policy results made at plan time
//! (`results.json`) are one of the bundle's files: a report of them can trust
//! them as much as the rest (apply re-evaluates anyway).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::summary::PlanSummary;
use crate::fsutil::write_atomic;
use crate::redact::Redactor;

pub const MANIFEST: &str = "manifest.json";
pub const RESULTS: &str = "results.json";

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("could not {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("there is no plan bundle {digest}")]
    NotFound { digest: String },
    #[error("plan bundle prefix {prefix} is ambiguous: {matches}")]
    Ambiguous { prefix: String, matches: String },
    #[error("plan bundle {digest} does not match its digest: {problem}")]
    Tampered { digest: String, problem: String },
    #[error("{file} of plan bundle {digest} is not readable: {reason}")]
    Unreadable {
        digest: String,
        file: String,
        reason: String,
    },
}

fn io(action: &'static str, path: &Path, source: std::io::Error) -> BundleError {
    BundleError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
    /// The hash leaves out opsdeploy's own generated sections of the file
    /// (`crate::generated`): its own writes never invalidate an approval.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub without_generated: bool,
}

/// The effective configuration (`crate::config::effective`) as salted
/// hashes: the plan vouches for each value without storing one that came
/// from a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigHashes {
    pub salt: String,
    pub settings: BTreeMap<String, String>,
}

impl ConfigHashes {
    pub fn new(settings: &BTreeMap<String, serde_json::Value>) -> Self {
        let mut salt = [0u8; 16];
        // A salt only needs to differ between bundles; should the system RNG
        // fail, the digest of the settings themselves still differs per value.
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt);
        let salt = hex::encode(salt);
        let settings = settings
            .iter()
            .map(|(k, v)| (k.clone(), salted(&salt, k, v)))
            .collect();
        ConfigHashes { salt, settings }
    }

    /// The first setting whose value differs from the one planned (or was
    /// added or removed since), by name.
    pub fn first_difference(&self, now: &BTreeMap<String, serde_json::Value>) -> Option<String> {
        let names: std::collections::BTreeSet<&String> =
            self.settings.keys().chain(now.keys()).collect();
        names.into_iter().find_map(|name| {
            let same = match (self.settings.get(name), now.get(name)) {
                (Some(h), Some(v)) => *h == salted(&self.salt, name, v),
                _ => false,
            };
            (!same).then(|| name.clone())
        })
    }
}

fn salted(salt: &str, name: &str, value: &serde_json::Value) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update([0]);
    h.update(name.as_bytes());
    h.update([0]);
    h.update(value.to_string().as_bytes());
    hex::encode(h.finalize())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyEntry {
    pub name: String,
    pub origin: String,
    pub sha256: String,
    pub enforcement: crate::config::Enforcement,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<serde_json::Value>,
}

/// What `manifest.json` says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub schema: u32,
    pub project: String,
    pub environment: String,
    pub created_at: String,
    pub planned_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_revision: Option<String>,
    /// Set by `promote FROM TO`: the environment whose deployment this repeats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoted_from: Option<String>,
    pub tool_versions: BTreeMap<String, String>,
    /// Files inside the bundle.
    pub files: Vec<FileEntry>,
    /// Project files the plan was made from.
    pub sources: Vec<FileEntry>,
    pub policies: Vec<PolicyEntry>,
    /// Counts and lists for summaries (resources by action, releases, images).
    pub summary: PlanSummary,
    /// Built-in policies that did not run, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies_off: Vec<crate::config::DisabledPolicy>,
    /// The effective configuration the plan was made with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ConfigHashes>,
}

/// A bundle being written; nothing is visible under `bundles/` until `finish`.
pub struct BundleBuilder {
    bundles_dir: PathBuf,
    tmp: tempfile::TempDir,
    files: Vec<FileEntry>,
    sources: Vec<FileEntry>,
}

impl BundleBuilder {
    pub fn new(bundles_dir: &Path) -> Result<Self, BundleError> {
        fs::create_dir_all(bundles_dir).map_err(|e| io("create", bundles_dir, e))?;
        let tmp = tempfile::Builder::new()
            .prefix(".building-")
            .tempdir_in(bundles_dir)
            .map_err(|e| io("create a directory in", bundles_dir, e))?;
        Ok(BundleBuilder {
            bundles_dir: bundles_dir.to_path_buf(),
            tmp,
            files: Vec::new(),
            sources: Vec::new(),
        })
    }

    /// Where files are written before the bundle is sealed (terraform writes
    /// its saved plan straight here).
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// Adds a file with `bytes` at `rel` inside the bundle.
    pub fn add_file(&mut self, rel: &str, bytes: &[u8]) -> Result<(), BundleError> {
        let path = self.tmp.path().join(rel);
        write_atomic(&path, bytes).map_err(|e| io("write", &path, e))?;
        self.record(rel, bytes);
        Ok(())
    }

    /// Records a file some tool already wrote into [`Self::path`], readable
    /// by its owner only, as every bundle file (terraform writes 0644).
    pub fn adopt_file(&mut self, rel: &str) -> Result<Vec<u8>, BundleError> {
        use std::os::unix::fs::PermissionsExt;
        let path = self.tmp.path().join(rel);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
            .map_err(|e| io("protect", &path, e))?;
        let bytes = fs::read(&path).map_err(|e| io("read", &path, e))?;
        self.record(rel, &bytes);
        Ok(bytes)
    }

    fn record(&mut self, rel: &str, bytes: &[u8]) {
        self.files.retain(|f| f.path != rel);
        self.files.push(FileEntry {
            path: rel.to_string(),
            sha256: sha256_hex(bytes),
            bytes: bytes.len() as u64,
            without_generated: false,
        });
    }

    /// Records a project file the plan depends on (relative to the project);
    /// with `without_generated`, opsdeploy's own sections of it are not hashed.
    pub fn add_source(&mut self, rel: &str, bytes: &[u8], without_generated: bool) {
        if self.sources.iter().any(|s| s.path == rel) {
            return;
        }
        self.sources.push(FileEntry {
            path: rel.to_string(),
            sha256: source_hash(bytes, without_generated),
            bytes: bytes.len() as u64,
            without_generated,
        });
    }

    /// Writes the manifest, computes the digest and moves the bundle into place.
    pub fn finish(mut self, mut manifest: Manifest) -> Result<Bundle, BundleError> {
        self.files.sort_by(|a, b| a.path.cmp(&b.path));
        self.sources.sort_by(|a, b| a.path.cmp(&b.path));
        manifest.files = self.files;
        manifest.sources = self.sources;
        let bytes = serde_json::to_vec_pretty(&manifest).expect("manifest serializes");
        let digest = sha256_hex(&bytes);
        let manifest_path = self.tmp.path().join(MANIFEST);
        write_atomic(&manifest_path, &bytes).map_err(|e| io("write", &manifest_path, e))?;
        let dir = self.bundles_dir.join(&digest);
        let tmp = self.tmp.keep();
        if let Err(e) = fs::rename(&tmp, &dir) {
            let _ = fs::remove_dir_all(&tmp);
            // The same digest is the same content (a plan repeated within the
            // second its manifest records): the bundle there is this one.
            if !dir.join(MANIFEST).is_file() {
                return Err(io("move the bundle to", &dir, e));
            }
        }
        Ok(Bundle {
            digest,
            dir,
            manifest,
        })
    }
}

/// A sealed bundle on disk.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub digest: String,
    pub dir: PathBuf,
    pub manifest: Manifest,
}

/// A project file that differs from what the plan was made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceChange {
    pub path: String,
    pub removed: bool,
}

impl Bundle {
    /// Opens a bundle by digest or unique prefix (at least 6 characters).
    pub fn open(bundles_dir: &Path, digest: &str) -> Result<Bundle, BundleError> {
        let not_found = || BundleError::NotFound {
            digest: digest.to_string(),
        };
        let exact = bundles_dir.join(digest);
        let dir = if digest.len() == 64 && exact.is_dir() {
            exact
        } else {
            if digest.len() < 6 || !digest.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(not_found());
            }
            let matches: Vec<PathBuf> = fs::read_dir(bundles_dir)
                .map_err(|_| not_found())?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with(digest))
                })
                .collect();
            match matches.as_slice() {
                [one] => one.clone(),
                [] => return Err(not_found()),
                many => {
                    return Err(BundleError::Ambiguous {
                        prefix: digest.to_string(),
                        matches: many
                            .iter()
                            .filter_map(|p| {
                                p.file_name()
                                    .map(|n| super::short(&n.to_string_lossy()).to_string())
                            })
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                }
            }
        };
        let digest = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let manifest_path = dir.join(MANIFEST);
        let bytes = fs::read(&manifest_path).map_err(|e| io("read", &manifest_path, e))?;
        let tampered = |problem: String| BundleError::Tampered {
            digest: digest.clone(),
            problem,
        };
        if sha256_hex(&bytes) != digest {
            return Err(tampered("manifest.json was changed after the plan".into()));
        }
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| tampered(format!("manifest.json is not readable: {e}")))?;
        Ok(Bundle {
            digest,
            dir,
            manifest,
        })
    }

    /// Checks every file of the bundle against the manifest.
    pub fn verify(&self) -> Result<(), BundleError> {
        for f in &self.manifest.files {
            let path = self.dir.join(&f.path);
            let problem = match fs::read(&path) {
                Ok(bytes) if sha256_hex(&bytes) == f.sha256 => continue,
                Ok(_) => format!("{} was changed after the plan", f.path),
                Err(_) => format!("{} is missing", f.path),
            };
            return Err(BundleError::Tampered {
                digest: self.digest.clone(),
                problem,
            });
        }
        Ok(())
    }

    /// Project files that changed since the plan.
    pub fn changed_sources(&self, project: &Path) -> Vec<SourceChange> {
        self.manifest
            .sources
            .iter()
            .filter_map(|s| match fs::read(project.join(&s.path)) {
                Ok(bytes) if source_hash(&bytes, s.without_generated) == s.sha256 => None,
                Ok(_) => Some(SourceChange {
                    path: s.path.clone(),
                    removed: false,
                }),
                Err(_) => Some(SourceChange {
                    path: s.path.clone(),
                    removed: true,
                }),
            })
            .collect()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    pub fn read(&self, rel: &str) -> Result<Vec<u8>, BundleError> {
        let path = self.dir.join(rel);
        fs::read(&path).map_err(|e| io("read", &path, e))
    }

    /// A file of the bundle that is there but cannot be read as what it is.
    pub fn unreadable(&self, file: &str, reason: impl std::fmt::Display) -> BundleError {
        BundleError::Unreadable {
            digest: self.digest.clone(),
            file: file.to_string(),
            reason: reason.to_string(),
        }
    }

    /// The secrets of the bundle: the values its terraform plan marks sensitive.
    pub fn redactor(&self) -> Result<Redactor, BundleError> {
        if !self.manifest.files.iter().any(|f| f.path == "plan.json") {
            return Ok(Redactor::default());
        }
        let plan = String::from_utf8(self.read("plan.json")?)
            .map_err(|e| self.unreadable("plan.json", e.utf8_error()))?;
        crate::adapters::terraform::sensitive_values("plan.json", &plan)
            .map(Redactor::from_values)
            .map_err(|e| self.unreadable("plan.json", e))
    }
}

/// The sha256 a project file is recorded with.
fn source_hash(bytes: &[u8], without_generated: bool) -> String {
    if without_generated {
        sha256_hex(&crate::generated::without_generated(bytes))
    } else {
        sha256_hex(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The effective settings of production with this strategy, approver and smoke test.
    fn effective(
        strategy: &str,
        approver: &str,
        smoke: &str,
    ) -> BTreeMap<String, serde_json::Value> {
        let text = format!(
            "project = \"shop\"\nenvironment \"production\" {{\n  strategy = \"{strategy}\"\n  helm \"api\" {{ chart = \"charts/api\" }}\n  smoke_test {{ command = [\"sh\", \"{smoke}\"] }}\n  approval {{\n    approvers = [\"{approver}\"]\n  }}\n}}\n"
        );
        let config = crate::config::Config::parse(
            std::path::Path::new("."),
            std::path::Path::new("opsdeploy.hcl"),
            &text,
        )
        .expect("valid configuration");
        let env = config.require_environment("production").unwrap().clone();
        crate::config::effective::settings(&config, &env)
    }

    #[test]
    fn apply_names_the_strategy_approvers_or_command_that_differs_from_the_plan() {
        let planned = ConfigHashes::new(&effective("rolling", "alice@example.com", "smoke.sh"));
        let differs = |strategy, approver, smoke| {
            planned.first_difference(&effective(strategy, approver, smoke))
        };
        assert_eq!(differs("rolling", "alice@example.com", "smoke.sh"), None);
        assert_eq!(
            differs("blue-green", "alice@example.com", "smoke.sh").as_deref(),
            Some("environment \"production\" strategy")
        );
        assert_eq!(
            differs("rolling", "mallory@example.com", "smoke.sh").as_deref(),
            Some("environment \"production\" approval.approvers")
        );
        assert_eq!(
            differs("rolling", "alice@example.com", "true.sh").as_deref(),
            Some("environment \"production\" smoke_test")
        );
    }

    fn manifest() -> Manifest {
        Manifest {
            schema: 1,
            project: "shop".into(),
            environment: "staging".into(),
            created_at: "2026-11-24T20:00:00Z".into(),
            planned_by: "alice".into(),
            git_revision: None,
            promoted_from: None,
            tool_versions: BTreeMap::new(),
            files: vec![],
            sources: vec![],
            policies: vec![],
            summary: PlanSummary::default(),
            policies_off: vec![],
            config: None,
        }
    }

    #[test]
    fn a_bundle_round_trips_and_detects_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let project = tempfile::tempdir().unwrap();
        fs::write(project.path().join("main.tf"), "resource {}").unwrap();
        let mut b = BundleBuilder::new(dir.path()).unwrap();
        b.add_file("plan.json", b"{}").unwrap();
        b.add_source("main.tf", b"resource {}", false);
        let bundle = b.finish(manifest()).unwrap();
        let opened = Bundle::open(dir.path(), &bundle.digest[..8]).unwrap();
        assert_eq!(opened.manifest, bundle.manifest);
        opened.verify().unwrap();
        assert!(opened.changed_sources(project.path()).is_empty());

        fs::write(project.path().join("main.tf"), "resource { x }").unwrap();
        assert_eq!(opened.changed_sources(project.path())[0].path, "main.tf");

        fs::write(bundle.path("plan.json"), b"{\"x\":1}").unwrap();
        let err = opened.verify().unwrap_err();
        assert!(
            err.to_string()
                .contains("plan.json was changed after the plan"),
            "{err}"
        );

        let mpath = bundle.path(MANIFEST);
        let text = fs::read_to_string(&mpath)
            .unwrap()
            .replace("alice", "mallory");
        fs::write(&mpath, text).unwrap();
        let err = Bundle::open(dir.path(), &bundle.digest).unwrap_err();
        assert!(
            err.to_string().contains("manifest.json was changed"),
            "{err}"
        );
    }

    #[test]
    fn the_same_plan_sealed_twice_is_one_bundle() {
        let dir = tempfile::tempdir().unwrap();
        let seal = || {
            let mut b = BundleBuilder::new(dir.path()).unwrap();
            b.add_file("plan.json", b"{}").unwrap();
            b.finish(manifest()).unwrap()
        };
        let (first, second) = (seal(), seal());
        assert_eq!(first.digest, second.digest);
        Bundle::open(dir.path(), &second.digest)
            .unwrap()
            .verify()
            .unwrap();
        // Nothing left behind but the one bundle.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn unknown_and_short_digests_are_not_found() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            Bundle::open(dir.path(), "abc"),
            Err(BundleError::NotFound { .. })
        ));
        assert!(matches!(
            Bundle::open(dir.path(), "abcdef12"),
            Err(BundleError::NotFound { .. })
        ));
    }
}
