//! Rolling policies out: what changed since an environment's last deploy
//! (the plan says so, with the replay command, and the audit log records both
//! module hashes), and how each policy behaved over recent plans (`status
//! --policies`): what a team needs to promote a policy from shadow to
//! mandatory.

use std::collections::BTreeMap;

use super::policies::Loaded;
use super::{History, Project, WorkflowError};
use crate::config::PolicySource;
pub use crate::report::rollout::{PolicyChange, PolicyHealth, PolicyStats, Spread};
use crate::store::records::{EvaluatedAt, PolicyResultsData, PolicyVerdict};
use crate::store::{Entry, EntryData};

/// The policy results an entry records, when it records them.
fn recorded(entry: &Entry) -> Option<&PolicyResultsData> {
    match &entry.data {
        EntryData::PolicyResults(r) => Some(r),
        _ => None,
    }
}

/// The policies `loaded` for a plan of `env` whose module differs from the
/// one evaluated at the environment's last deployment (its apply-time
/// results; its plan's when the apply recorded none). Nothing when the
/// environment was never deployed.
pub fn changes_since_deploy(history: &History, env: &str, loaded: &[Loaded]) -> Vec<PolicyChange> {
    let Some(current) = history.current(env) else {
        return Vec::new();
    };
    let digest = current.digest.clone();
    let Some(in_force) = history
        .entries()
        .iter()
        .rev()
        .filter(|e| e.digest.as_deref() == Some(digest.as_str()))
        .find_map(recorded)
    else {
        return Vec::new();
    };
    loaded
        .iter()
        .filter_map(|l| {
            let sha256 = l.sha256();
            let deployed = in_force
                .policies
                .iter()
                .find(|p| p.policy == l.config.name)
                .map(|p| p.sha256.clone());
            (deployed.as_deref() != Some(sha256.as_str())).then(|| PolicyChange {
                policy: l.config.name.clone(),
                deployed_sha256: deployed,
                sha256,
                deployed_digest: digest.clone(),
                replay: replay_command(l, env),
            })
        })
        .collect()
}

/// `opsdeploy policy replay ARG --env ENV [--settings JSON]`, quoted for a shell.
fn replay_command(l: &Loaded, env: &str) -> String {
    let policy = match &l.config.source {
        PolicySource::Builtin => format!("builtin:{}", l.config.name),
        PolicySource::File(path) => path.display().to_string(),
        PolicySource::Rego(rego) if rego.files.len() == 1 && rego.files[0].ends_with(".rego") => {
            rego.files[0].clone()
        }
        // Several files or a pattern: only the configuration as a whole names them.
        PolicySource::Rego(_) => "--config".into(),
    };
    let mut args = vec![
        "policy".to_string(),
        "replay".into(),
        policy,
        "--env".into(),
        env.into(),
    ];
    if let Some(settings) = &l.config.settings {
        args.push("--settings".into());
        args.push(settings.to_string());
    }
    shell_line(args)
}

/// `opsdeploy ARGS`, each argument quoted for a POSIX shell when it needs it.
pub fn shell_line(args: impl IntoIterator<Item = String>) -> String {
    let quote = |a: String| {
        if !a.is_empty()
            && a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+".contains(c))
        {
            a
        } else {
            format!("'{}'", a.replace('\'', r#"'\''"#))
        }
    };
    std::iter::once("opsdeploy".to_string())
        .chain(args.into_iter().map(quote))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The median (of an even count: the mean of the middle two) and maximum.
fn spread(mut values: Vec<f64>) -> Option<Spread<f64>> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let max = *values.last()?;
    let median = if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    };
    Some(Spread { median, max })
}

/// `status [ENV] --policies --last N`.
pub fn health(
    project: &Project,
    env: Option<&str>,
    last: usize,
) -> Result<PolicyHealth, WorkflowError> {
    if let Some(env) = env {
        project.config.require_environment(env)?;
    }
    Ok(policy_health(&project.history()?, env, last))
}

/// Every policy evaluated at the last `last` plans (of `env`, or of all
/// environments), from the audit log's plan-time results.
pub fn policy_health(history: &History, env: Option<&str>, last: usize) -> PolicyHealth {
    let plans: Vec<&str> = history
        .entries()
        .iter()
        .filter(|e| matches!(e.data, EntryData::Plan(_)))
        .filter(|e| env.is_none_or(|env| e.environment.as_deref() == Some(env)))
        .filter_map(|e| e.digest.as_deref())
        .collect();
    let plans = &plans[plans.len().saturating_sub(last)..];
    let mut by_policy: BTreeMap<String, Vec<&PolicyVerdict>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for e in history.entries() {
        let Some(digest) = e.digest.as_deref() else {
            continue;
        };
        if !plans.contains(&digest) {
            continue;
        }
        let Some(results) = recorded(e).filter(|r| r.at == EvaluatedAt::Plan) else {
            continue;
        };
        for p in &results.policies {
            if !by_policy.contains_key(&p.policy) {
                order.push(p.policy.clone());
            }
            by_policy.entry(p.policy.clone()).or_default().push(p);
        }
    }
    let policies = order
        .into_iter()
        .filter_map(|name| {
            let records = by_policy.remove(&name)?;
            let latest = *records.last()?;
            let mut modules: Vec<&str> = records.iter().map(|r| r.sha256.as_str()).collect();
            modules.sort_unstable();
            modules.dedup();
            let mut failures = BTreeMap::new();
            for f in records.iter().filter_map(|r| r.failure) {
                *failures.entry(f).or_default() += 1;
            }
            let fuel = spread(
                records
                    .iter()
                    .filter_map(|r| r.fuel_used)
                    .map(|f| f as f64)
                    .collect(),
            )
            .map(|s| Spread {
                median: s.median.round() as u64,
                max: s.max as u64,
            });
            Some(PolicyStats {
                modules: modules.len(),
                evaluations: records.len(),
                would_have_blocked: records.iter().filter(|r| r.denied).count(),
                blocked: records.iter().filter(|r| r.blocks).count(),
                failures,
                fuel,
                time_ms: spread(records.iter().filter_map(|r| r.duration_ms).collect()),
                policy: name,
                enforcement: latest.enforcement,
                sha256: latest.sha256.clone(),
            })
        })
        .collect();
    PolicyHealth {
        environment: env.map(String::from),
        plans: plans.len(),
        policies,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Enforcement;
    use crate::engine::FailureKind;
    use crate::store::records::PlanData;
    use crate::store::{FileStore, NewEntry, Store};

    #[test]
    fn a_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(spread(vec![]), None);
        assert_eq!(
            spread(vec![3.0, 1.0, 2.0]),
            Some(Spread {
                median: 2.0,
                max: 3.0
            })
        );
        assert_eq!(
            spread(vec![4.0, 1.0, 2.0, 10.0]),
            Some(Spread {
                median: 3.0,
                max: 10.0
            })
        );
    }

    #[test]
    fn health_counts_the_last_plans_only_and_their_plan_time_results() {
        let dir = tempfile::tempdir().unwrap();
        let s = FileStore::new(dir.path());
        let record = |digest: &str, at, denied, fuel: u64, failure| {
            let plan = PlanData {
                summary: String::new(),
                counts: Default::default(),
                git_revision: None,
                signers: None,
                policies_off: Vec::new(),
            };
            s.append(NewEntry::new("a", "staging", EntryData::Plan(plan)).digest(digest))
                .unwrap();
            let verdict = PolicyVerdict {
                policy: "cost-guard".into(),
                sha256: format!("{digest}-module"),
                enforcement: Enforcement::Shadow,
                denied,
                blocks: false,
                overridden_by: None,
                violations: 1,
                fuel_used: Some(fuel),
                duration_ms: Some(fuel as f64 / 10.0),
                failure,
                deployed_sha256: None,
            };
            let results = PolicyResultsData {
                at,
                verdict: "pass".into(),
                policies: vec![verdict],
            };
            s.append(
                NewEntry::new("a", "staging", EntryData::PolicyResults(results)).digest(digest),
            )
            .unwrap();
        };
        let plan = EvaluatedAt::Plan;
        record("d1", plan, true, 1000, None);
        record("d2", plan, true, 20, Some(FailureKind::OutOfFuel));
        record("d3", plan, false, 40, None);
        record(
            "d4",
            EvaluatedAt::Apply,
            true,
            99_999,
            Some(FailureKind::Trap),
        );
        let h = policy_health(&History::new(s.entries().unwrap()), Some("staging"), 3);
        assert_eq!(h.plans, 3);
        let p = &h.policies[0];
        assert_eq!(p.policy, "cost-guard");
        assert_eq!(p.enforcement, Enforcement::Shadow);
        // d1 is older than the last three plans; d4's results are apply-time.
        assert_eq!((p.evaluations, p.would_have_blocked, p.blocked), (2, 1, 0));
        assert_eq!(p.failures, BTreeMap::from([(FailureKind::OutOfFuel, 1)]));
        assert_eq!(
            p.fuel,
            Some(Spread {
                median: 30,
                max: 40
            })
        );
        assert_eq!(p.modules, 2);
    }
}
