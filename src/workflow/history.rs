//! What the audit log says happened: plans, approvals, overrides, applies,
//! deployments and which migrations ran where. Everything the workflow decides
//! from the past is derived here, from the tamper-evident log alone.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::store::{Entry, EntryKind};

/// How an apply ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplyStatus {
    Succeeded,
    /// Failed before changing anything.
    Failed,
    RolledBack,
    RollbackFailed,
}

impl ApplyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ApplyStatus::Succeeded => "succeeded",
            ApplyStatus::Failed => "failed",
            ApplyStatus::RolledBack => "rolled_back",
            ApplyStatus::RollbackFailed => "rollback_failed",
        }
    }
}

/// What a successful apply put in place, recorded in its `apply_finish` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployed {
    #[serde(default)]
    pub images: Vec<DeployedImage>,
    #[serde(default)]
    pub charts: Vec<DeployedChart>,
    #[serde(default)]
    pub migrations: Vec<String>,
    /// Helm revision per release after the apply (for rollback).
    #[serde(default)]
    pub helm_revisions: BTreeMap<String, u64>,
    /// Blue-green: the colour now serving, per release.
    #[serde(default)]
    pub colors: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployedImage {
    pub reference: String,
    #[serde(default)]
    pub digest: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployedChart {
    pub release: String,
    pub chart: String,
    #[serde(default)]
    pub version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRecord {
    /// The audit entry it was logged as.
    pub seq: u64,
    pub approver: String,
    pub at: String,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverrideRecord {
    /// The audit entry it was logged as.
    pub seq: u64,
    pub policy: String,
    pub approver: String,
    pub reason: String,
    pub at: String,
}

/// One apply of one bundle: its start and, unless it was interrupted, its end.
#[derive(Debug, Clone)]
pub struct ApplyRecord<'a> {
    pub environment: String,
    pub digest: String,
    pub start: &'a Entry,
    pub finish: Option<&'a Entry>,
}

impl ApplyRecord<'_> {
    pub fn status(&self) -> Option<ApplyStatus> {
        let f = self.finish?;
        serde_json::from_value(f.data.get("status")?.clone()).ok()
    }

    pub fn deployed(&self) -> Option<Deployed> {
        let f = self.finish?;
        serde_json::from_value(f.data.get("deployed")?.clone()).ok()
    }

    pub fn healthy(&self) -> bool {
        self.finish
            .and_then(|f| f.data.get("healthy"))
            .and_then(|h| h.as_bool())
            .unwrap_or(false)
    }
}

/// A migration that ran on an environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationRun {
    pub id: String,
    pub environment: String,
    pub sha256: String,
    pub bundle: String,
    pub at: String,
}

pub struct History {
    entries: Vec<Entry>,
}

impl History {
    pub fn new(entries: Vec<Entry>) -> Self {
        History { entries }
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    fn of<'a, 'e>(
        &'a self,
        kind: EntryKind,
        env: Option<&'e str>,
    ) -> impl Iterator<Item = &'a Entry> + use<'a, 'e> {
        self.entries.iter().filter(move |e| {
            e.kind == kind && env.is_none_or(|env| e.environment.as_deref() == Some(env))
        })
    }

    /// The most recent plan of an environment.
    pub fn latest_plan(&self, env: &str) -> Option<&Entry> {
        self.of(EntryKind::Plan, Some(env)).last()
    }

    /// The plan entry for a digest.
    pub fn plan(&self, digest: &str) -> Option<&Entry> {
        self.of(EntryKind::Plan, None)
            .find(|e| e.digest.as_deref() == Some(digest))
    }

    pub fn approvals(&self, digest: &str) -> Vec<ApprovalRecord> {
        self.of(EntryKind::Approval, None)
            .filter(|e| e.digest.as_deref() == Some(digest))
            .map(|e| ApprovalRecord {
                seq: e.seq,
                approver: e.actor.clone(),
                at: e.at.clone(),
                comment: e
                    .data
                    .get("comment")
                    .and_then(|c| c.as_str())
                    .map(String::from),
            })
            .collect()
    }

    pub fn overrides(&self, digest: &str) -> Vec<OverrideRecord> {
        self.of(EntryKind::Override, None)
            .filter(|e| e.digest.as_deref() == Some(digest))
            .map(|e| OverrideRecord {
                seq: e.seq,
                policy: str_field(e, "policy"),
                approver: e.actor.clone(),
                reason: str_field(e, "reason"),
                at: e.at.clone(),
            })
            .collect()
    }

    /// Every apply of an environment, oldest first.
    pub fn applies<'a>(&'a self, env: &'a str) -> Vec<ApplyRecord<'a>> {
        let mut out: Vec<ApplyRecord> = Vec::new();
        for e in self
            .entries
            .iter()
            .filter(|e| e.environment.as_deref() == Some(env))
        {
            match e.kind {
                EntryKind::ApplyStart => out.push(ApplyRecord {
                    environment: env.to_string(),
                    digest: e.digest.clone().unwrap_or_default(),
                    start: e,
                    finish: None,
                }),
                EntryKind::ApplyFinish => {
                    let run = e.data.get("apply_seq").and_then(|s| s.as_u64());
                    if let Some(rec) = out
                        .iter_mut()
                        .rev()
                        .find(|r| r.finish.is_none() && run.is_none_or(|s| r.start.seq == s))
                    {
                        rec.finish = Some(e);
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// The last successful apply of an environment: what runs there now.
    /// `opsdeploy rollback` records which earlier deployment it restored.
    pub fn current<'a>(&'a self, env: &'a str) -> Option<ApplyRecord<'a>> {
        self.deployment_timeline(env).pop().and_then(|(_, a)| a)
    }

    /// Every change of what runs on an environment, oldest first: the seq of
    /// the entry that made it so (a successful finish, or a rollback that
    /// restored an earlier deployment) and the apply now running (none when
    /// a rollback restored a deployment the log does not show succeeding).
    pub fn deployment_timeline<'a>(&'a self, env: &'a str) -> Vec<(u64, Option<ApplyRecord<'a>>)> {
        let applies = self.applies(env);
        let mut timeline = Vec::new();
        for e in self
            .entries
            .iter()
            .filter(|e| e.environment.as_deref() == Some(env))
        {
            let current = match e.kind {
                EntryKind::ApplyFinish => {
                    let finished = applies
                        .iter()
                        .position(|a| a.finish.is_some_and(|f| f.seq == e.seq))
                        .filter(|i| applies[*i].status() == Some(ApplyStatus::Succeeded));
                    if finished.is_none() {
                        continue;
                    }
                    finished
                }
                EntryKind::Rollback if e.data.get("restored").is_some() => {
                    let restored = e.data["restored"].as_str().unwrap_or_default();
                    applies.iter().rposition(|a| {
                        a.digest == restored && a.status() == Some(ApplyStatus::Succeeded)
                    })
                }
                _ => continue,
            };
            timeline.push((e.seq, current.map(|i| applies[i].clone())));
        }
        timeline
    }

    /// Applies that started and never finished (the process died).
    pub fn interrupted<'a>(&'a self, env: &'a str) -> Vec<ApplyRecord<'a>> {
        self.applies(env)
            .into_iter()
            .filter(|a| a.finish.is_none())
            .collect()
    }

    /// Migrations that ran, by id, from successful migration steps.
    pub fn migration_runs(&self) -> BTreeMap<String, Vec<MigrationRun>> {
        let mut runs: BTreeMap<String, Vec<MigrationRun>> = BTreeMap::new();
        for e in self.of(EntryKind::ApplyStep, None) {
            if str_field(e, "step") != "migration" || str_field(e, "status") != "succeeded" {
                continue;
            }
            let id = str_field(e, "migration");
            runs.entry(id.clone()).or_default().push(MigrationRun {
                id,
                environment: e.environment.clone().unwrap_or_default(),
                sha256: str_field(e, "sha256"),
                bundle: e.digest.clone().unwrap_or_default(),
                at: e.at.clone(),
            });
        }
        runs
    }
}

fn str_field(e: &Entry, key: &str) -> String {
    e.data
        .get(key)
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{FileStore, NewEntry, Store};
    use serde_json::json;

    #[test]
    fn applies_pair_starts_with_finishes_and_expose_interruptions() {
        let dir = tempfile::tempdir().unwrap();
        let s = FileStore::new(dir.path());
        let start = s
            .append(NewEntry::new(EntryKind::ApplyStart, "a", "staging").digest("d1"))
            .unwrap();
        s.append(
            NewEntry::new(EntryKind::ApplyStep, "a", "staging")
                .digest("d1")
                .data(json!({"step": "migration", "status": "succeeded", "migration": "0001_init", "sha256": "aa"})),
        )
        .unwrap();
        s.append(
            NewEntry::new(EntryKind::ApplyFinish, "a", "staging")
                .digest("d1")
                .data(json!({"status": "succeeded", "healthy": true, "apply_seq": start.seq,
                             "deployed": {"images": [{"reference": "api:1", "digest": "sha256:1"}]}})),
        )
        .unwrap();
        s.append(NewEntry::new(EntryKind::ApplyStart, "a", "staging").digest("d2"))
            .unwrap();
        let h = History::new(s.entries().unwrap());
        let current = h.current("staging").unwrap();
        assert_eq!(current.digest, "d1");
        assert!(current.healthy());
        assert_eq!(current.deployed().unwrap().images[0].reference, "api:1");
        assert_eq!(h.interrupted("staging")[0].digest, "d2");
        assert_eq!(h.migration_runs()["0001_init"][0].environment, "staging");
        assert!(h.current("production").is_none());
    }
}
