//! What the audit log says happened: plans, approvals, overrides, applies,
//! deployments and which migrations ran where. Everything the workflow decides
//! from the past is derived here, from the tamper-evident log alone.

use std::collections::BTreeMap;

use crate::store::records::{
    ApplyFinishData, ApplyStatus, ApprovalRecord, Deployed, Health, LiveReleases, OverrideRecord,
    StepStatus,
};
use crate::store::{Entry, EntryData, EntryKind};

/// One apply of one bundle: its start and, unless it was interrupted, its end.
#[derive(Debug, Clone)]
pub struct ApplyRecord<'a> {
    pub environment: String,
    pub digest: String,
    pub start: &'a Entry,
    pub finish: Option<&'a Entry>,
    /// The `rollback` entry that made this deployment current again.
    pub restored_by: Option<&'a Entry>,
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

    /// How it was last found: by the rollback that restored it, when one
    /// checked, else by its own apply.
    pub fn health(&self) -> Health {
        let restored = self.restored_by.and_then(|r| match &r.data {
            EntryData::Rollback(r) => r.health,
            _ => None,
        });
        restored.unwrap_or_else(|| self.finished_health())
    }

    /// How its own apply left it: what promotion and policies judge (the
    /// source must also answer now, which promotion checks live).
    pub fn finished_health(&self) -> Health {
        self.finished()
            .map(ApplyFinishData::health)
            .unwrap_or(Health::Unhealthy)
    }

    /// A health check verified it when it was deployed.
    pub fn healthy(&self) -> bool {
        self.finished_health() == Health::Healthy
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
    /// The `seq` of the `apply_start` of the apply that ran it.
    pub apply_seq: Option<u64>,
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
                    seq: e.seq,
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
                    seq: e.seq,
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
                    restored_by: None,
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
            let (current, restored_by) = match &e.data {
                EntryData::ApplyFinish(_) => {
                    let finished = applies
                        .iter()
                        .position(|a| a.finish.is_some_and(|f| f.seq == e.seq))
                        .filter(|i| applies[*i].status() == Some(ApplyStatus::Succeeded));
                    if finished.is_none() {
                        continue;
                    }
                    (finished, None)
                }
                EntryData::Rollback(r) if r.restored.is_some() => {
                    let restored = r.restored.as_deref();
                    let restored_apply = applies.iter().rposition(|a| {
                        Some(a.digest.as_str()) == restored
                            && a.status() == Some(ApplyStatus::Succeeded)
                    });
                    (restored_apply, Some(e))
                }
                _ => continue,
            };
            timeline.push((
                e.seq,
                current.map(|i| ApplyRecord {
                    restored_by,
                    ..applies[i].clone()
                }),
            ));
        }
        timeline
    }

    /// Applies that started and never finished (the process died), since
    /// the last successful one: a later successful deploy supersedes them.
    pub fn interrupted<'a>(&'a self, env: &'a str) -> Vec<ApplyRecord<'a>> {
        let applies = self.applies(env);
        let since = applies
            .iter()
            .rposition(|a| a.status() == Some(ApplyStatus::Succeeded))
            .map_or(0, |i| i + 1);
        applies
            .into_iter()
            .skip(since)
            .filter(|a| a.finish.is_none())
            .collect()
    }

    /// The helm releases as opsdeploy last left them on `env`: by its last
    /// successful apply, or by a rollback since (each records what it left).
    pub fn live_releases(&self, env: &str) -> Option<LiveReleases> {
        let mut live = None;
        for e in self
            .entries
            .iter()
            .filter(|e| e.environment.as_deref() == Some(env))
        {
            match &e.data {
                EntryData::ApplyFinish(f) if f.status == ApplyStatus::Succeeded => {
                    if let Some(d) = &f.deployed {
                        live = Some(LiveReleases {
                            helm_revisions: d.helm_revisions.clone(),
                            colors: d.colors.clone(),
                        });
                    }
                }
                EntryData::Rollback(r) if r.live.is_some() => live = r.live.clone(),
                _ => {}
            }
        }
        live
    }

    /// Whether `run` is vouched for: its environment now runs, healthy, the
    /// deployment that ran it or a later one.
    pub fn release_healthy(&self, run: &MigrationRun) -> bool {
        let Some(current) = self.current(&run.environment) else {
            return false;
        };
        current.healthy() && run.apply_seq.is_some_and(|s| current.start.seq >= s)
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
                apply_seq: step.apply_seq,
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
            health: None,
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
