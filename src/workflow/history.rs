//! What the audit log says happened: plans, approvals, overrides, applies,
//! deployments and which migrations ran where. Everything the workflow decides
//! from the past is derived here, from the tamper-evident log alone.

use std::collections::BTreeMap;

use crate::store::records::{
    ApplyFinishData, ApplyStatus, ApprovalRecord, Deployed, OverrideRecord, StepStatus,
};
use crate::store::{Entry, EntryData, EntryKind};

/// One apply of one bundle: its start and, unless it was interrupted, its end.
#[derive(Debug, Clone)]
pub struct ApplyRecord<'a> {
    pub environment: String,
    pub digest: String,
    pub start: &'a Entry,
    pub finish: Option<&'a Entry>,
}

impl ApplyRecord<'_> {
    /// What its `apply_finish` entry recorded; `None` while unfinished.
    pub fn finished(&self) -> Option<&ApplyFinishData> {
        match &self.finish?.data {
            EntryData::ApplyFinish(f) => Some(f),
            _ => None,
        }
    }

    pub fn status(&self) -> Option<ApplyStatus> {
        self.finished().map(|f| f.status)
    }

    pub fn deployed(&self) -> Option<Deployed> {
        self.finished()?.deployed.clone()
    }

    pub fn healthy(&self) -> bool {
        self.finished().is_some_and(|f| f.healthy)
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
            e.kind() == kind && env.is_none_or(|env| e.environment.as_deref() == Some(env))
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

    fn for_digest<'a>(&'a self, digest: &'a str) -> impl Iterator<Item = &'a Entry> {
        self.entries
            .iter()
            .filter(move |e| e.digest.as_deref() == Some(digest))
    }

    pub fn approvals(&self, digest: &str) -> Vec<ApprovalRecord> {
        self.for_digest(digest)
            .filter_map(|e| match &e.data {
                EntryData::Approval(a) => Some(ApprovalRecord {
                    approver: e.actor.clone(),
                    at: e.at.clone(),
                    comment: a.comment.clone(),
                }),
                _ => None,
            })
            .collect()
    }

    pub fn overrides(&self, digest: &str) -> Vec<OverrideRecord> {
        self.for_digest(digest)
            .filter_map(|e| match &e.data {
                EntryData::Override(o) => Some(OverrideRecord {
                    policy: o.policy.clone(),
                    approver: e.actor.clone(),
                    reason: o.reason.clone(),
                    at: e.at.clone(),
                }),
                _ => None,
            })
            .collect()
    }

    /// Whether the last policy results logged for a digest block it.
    pub fn blocked(&self, digest: &str) -> bool {
        self.for_digest(digest)
            .filter_map(|e| match &e.data {
                EntryData::PolicyResults(r) => Some(r.blocked()),
                _ => None,
            })
            .last()
            .unwrap_or(false)
    }

    /// Every apply of an environment, oldest first.
    pub fn applies<'a>(&'a self, env: &'a str) -> Vec<ApplyRecord<'a>> {
        let mut out: Vec<ApplyRecord> = Vec::new();
        for e in self
            .entries
            .iter()
            .filter(|e| e.environment.as_deref() == Some(env))
        {
            match &e.data {
                EntryData::ApplyStart(_) => out.push(ApplyRecord {
                    environment: env.to_string(),
                    digest: e.digest.clone().unwrap_or_default(),
                    start: e,
                    finish: None,
                }),
                EntryData::ApplyFinish(f) => {
                    let run = f.apply_seq;
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
        let applies = self.applies(env);
        let mut current: Option<usize> = None;
        for e in self
            .entries
            .iter()
            .filter(|e| e.environment.as_deref() == Some(env))
        {
            match &e.data {
                EntryData::ApplyFinish(_) => {
                    let finished = applies
                        .iter()
                        .position(|a| a.finish.is_some_and(|f| f.seq == e.seq));
                    if let Some(i) = finished
                        && applies[i].status() == Some(ApplyStatus::Succeeded)
                    {
                        current = Some(i);
                    }
                }
                EntryData::Rollback(r) if r.restored.is_some() => {
                    let restored = r.restored.as_deref();
                    current = applies.iter().rposition(|a| {
                        Some(a.digest.as_str()) == restored
                            && a.status() == Some(ApplyStatus::Succeeded)
                    });
                }
                _ => {}
            }
        }
        applies.into_iter().nth(current?)
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
        for e in &self.entries {
            let EntryData::ApplyStep(step) = &e.data else {
                continue;
            };
            if step.step != "migration" || step.status != StepStatus::Succeeded {
                continue;
            }
            let id = step.migration.clone().unwrap_or_default();
            runs.entry(id.clone()).or_default().push(MigrationRun {
                id,
                environment: e.environment.clone().unwrap_or_default(),
                sha256: step.sha256.clone().unwrap_or_default(),
                bundle: e.digest.clone().unwrap_or_default(),
                at: e.at.clone(),
            });
        }
        runs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::records::{ApplyStartData, DeployedImage, StepData};
    use crate::store::{FileStore, NewEntry, Store};

    #[test]
    fn applies_pair_starts_with_finishes_and_expose_interruptions() {
        let dir = tempfile::tempdir().unwrap();
        let s = FileStore::new(dir.path());
        let start = || EntryData::ApplyStart(ApplyStartData::default());
        let started = s
            .append(NewEntry::new("a", "staging", start()).digest("d1"))
            .unwrap();
        let mut migration = StepData::new("migration", true, "ran".into(), started.seq);
        migration.migration = Some("0001_init".into());
        migration.sha256 = Some("aa".into());
        s.append(NewEntry::new("a", "staging", EntryData::ApplyStep(migration)).digest("d1"))
            .unwrap();
        let finish = ApplyFinishData {
            status: ApplyStatus::Succeeded,
            healthy: true,
            apply_seq: Some(started.seq),
            deployed: Some(Deployed {
                images: vec![DeployedImage {
                    reference: "api:1".into(),
                    digest: Some("sha256:1".into()),
                }],
                ..Deployed::default()
            }),
            failure: None,
        };
        s.append(NewEntry::new("a", "staging", EntryData::ApplyFinish(finish)).digest("d1"))
            .unwrap();
        s.append(NewEntry::new("a", "staging", start()).digest("d2"))
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
