//! The rules of approve and apply, on an in-memory store and hand-made plan
//! bundles: who may approve, what an override lifts, and in which order apply
//! checks before it changes anything — without terraform or any tool.

use std::cell::Cell;
use std::path::Path;
use std::time::Duration;

use policy_sdk::Violation;

use super::apply::{ApplyRequest, apply};
use super::approve::{ApproveOutcome, ApproveRequest, approve};
use super::{Project, WorkflowError};
use crate::config::{Config, Enforcement};
use crate::engine::{Evaluation, Outcome};
use crate::store::bundle::{Bundle, BundleBuilder, ConfigHashes, Manifest, PolicyEntry};
use crate::store::memory::MemoryStore;
use crate::store::records::{ApplyStatus, PlanData};
use crate::store::results::{Decision, Results};
use crate::store::{EntryData, EntryKind, LockHolder, StoreError, now_rfc3339};

const CONFIG: &str = r#"
project = "shop"

environment "staging" {
  approval { self_approve = true }
}

environment "production" {
  approval {
    approvers = ["alice@example.com", "bob@example.com"]
  }
}
"#;

/// A project in `dir` on an in-memory store, with `main.tf` as its one source;
/// the built-in policies are off (these tests are about step order, and give
/// each plan its decisions).
fn project(dir: &Path) -> Project {
    std::fs::write(dir.join("main.tf"), "resource \"terraform_data\" \"db\" {}").unwrap();
    let off: String = crate::builtins::names()
        .map(|name| {
            format!(
                "policy \"{name}\" {{\n  enabled = false\n  reason  = \"step order only\"\n}}\n"
            )
        })
        .collect();
    let config = format!("{CONFIG}{off}");
    Project {
        config: Config::parse(dir, Path::new("opsdeploy.hcl"), &config).unwrap(),
        store: Box::new(MemoryStore::new(dir.join(".opsdeploy/bundles"))),
        actor: "alice@example.com".into(),
        audit_markdown: dir.join("AUDIT_LOG.md"),
    }
}

/// A policy's decision on an evaluation with one violation of `severity`.
fn decision(policy: &str, enforcement: Enforcement, denies: bool) -> Decision {
    let violation = if denies {
        Violation::deny("rule", "denied")
    } else {
        Violation::warn("rule", "noted")
    };
    let evaluation = Evaluation {
        policy: policy.into(),
        sha256: "0".repeat(64),
        outcome: Outcome::Completed {
            violations: vec![violation],
        },
        fuel_used: Some(0),
        duration_ms: Duration::ZERO,
        logs: Vec::new(),
    };
    Decision::new(policy, enforcement, evaluation, &[])
}

/// A sealed plan of `env` by the project's actor, as `plan` would log it.
fn plan(p: &Project, env: &str, decisions: Vec<Decision>) -> Bundle {
    let mut b = BundleBuilder::new(&p.store.bundles_dir()).unwrap();
    let input =
        format!(r#"{{"schema_version":1,"environment":{{"name":"{env}","project":"shop"}}}}"#);
    b.add_file("input.json", input.as_bytes()).unwrap();
    b.add_source(
        "main.tf",
        &std::fs::read(p.dir().join("main.tf")).unwrap(),
        false,
    );
    b.add_results(&Results {
        digest: String::new(),
        evaluated_at: now_rfc3339(),
        decisions: decisions.clone(),
    })
    .unwrap();
    let bundle = b
        .finish(Manifest {
            schema: 1,
            project: "shop".into(),
            environment: env.into(),
            created_at: now_rfc3339(),
            planned_by: p.actor.clone(),
            git_revision: None,
            promoted_from: None,
            tool_versions: Default::default(),
            files: Vec::new(),
            sources: Vec::new(),
            policies: decisions
                .iter()
                .map(|d| PolicyEntry {
                    name: d.policy.clone(),
                    origin: format!("builtin:{}", d.policy),
                    sha256: d.sha256.clone(),
                    enforcement: d.enforcement,
                    settings: None,
                })
                .collect(),
            summary: Default::default(),
            policies_off: p.config.policies_off_for(env),
            config: Some(ConfigHashes::new(&crate::config::effective::settings(
                &p.config,
                p.config.require_environment(env).unwrap(),
            ))),
        })
        .unwrap();
    let data = PlanData {
        summary: "no terraform changes".into(),
        counts: Default::default(),
        git_revision: None,
        signers: None,
        policies_off: Vec::new(),
    };
    p.log(env, &bundle.digest, EntryData::Plan(data)).unwrap();
    bundle
}

/// An unsigned approval (or override) of `env`'s latest plan.
fn request<'a>(env: &'a str, override_policy: Option<(&'a str, &'a str)>) -> ApproveRequest<'a> {
    ApproveRequest {
        environment: env,
        digest: None,
        comment: None,
        override_policy,
        key: None,
        signature: None,
        expires_in_secs: 3600,
        show: &|_, _| {},
    }
}

fn approve_as(p: &mut Project, actor: &str, env: &str) -> Result<ApproveOutcome, WorkflowError> {
    p.actor = actor.into();
    approve(p, &request(env, None)).map(|a| a.outcome)
}

fn override_as(p: &Project, policy: &str) -> Result<ApproveOutcome, WorkflowError> {
    let req = request("staging", Some((policy, "accepted for this release")));
    approve(p, &req).map(|a| a.outcome)
}

fn kinds(p: &Project) -> Vec<EntryKind> {
    p.store
        .entries()
        .unwrap()
        .iter()
        .map(|e| e.kind())
        .collect()
}

#[test]
fn nobody_in_particular_cannot_approve_and_nothing_is_logged() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = project(dir.path());
    plan(&p, "staging", Vec::new());
    let err = approve_as(&mut p, super::identity::UNKNOWN, "staging").unwrap_err();
    assert!(matches!(err, WorkflowError::UnknownActor), "{err}");
    assert_eq!(kinds(&p), [EntryKind::Plan]);
}

#[test]
fn production_refuses_the_planner_and_anyone_not_listed_and_counts_one_approval_per_person() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = project(dir.path());
    plan(&p, "production", Vec::new());
    let err = approve_as(&mut p, "alice@example.com", "production").unwrap_err();
    assert!(matches!(err, WorkflowError::SelfApproval { .. }), "{err}");
    let err = approve_as(&mut p, "carol@example.com", "production").unwrap_err();
    assert!(matches!(err, WorkflowError::NotAnApprover { .. }), "{err}");
    assert_eq!(kinds(&p), [EntryKind::Plan], "a refusal logs nothing");

    let first = approve_as(&mut p, "bob@example.com", "production").unwrap();
    assert!(
        matches!(
            first,
            ApproveOutcome::Approved {
                valid: 1,
                needed: 1,
                ..
            }
        ),
        "{first:?}"
    );
    let again = approve_as(&mut p, "bob@example.com", "production").unwrap();
    assert!(
        matches!(again, ApproveOutcome::AlreadyApproved { .. }),
        "{again:?}"
    );
    assert_eq!(kinds(&p), [EntryKind::Plan, EntryKind::Approval]);
}

#[test]
fn an_override_lifts_only_a_soft_mandatory_denial_of_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    let p = project(dir.path());
    plan(
        &p,
        "staging",
        vec![
            decision("cost-guard", Enforcement::SoftMandatory, true),
            decision("naming", Enforcement::SoftMandatory, false),
            decision("protected-deletes", Enforcement::HardMandatory, true),
            decision("lint", Enforcement::Advisory, true),
        ],
    );
    for (policy, why) in [
        ("naming", "did not deny this plan"),
        ("lint", "is advisory"),
        ("not-configured", "was not evaluated for this plan"),
    ] {
        match override_as(&p, policy) {
            Err(WorkflowError::NothingToOverride { why: said, .. }) => {
                assert!(said.contains(why), "{policy}: {said}")
            }
            other => panic!("{policy}: {other:?}"),
        }
    }
    let err = override_as(&p, "protected-deletes").unwrap_err();
    assert!(matches!(err, WorkflowError::HardMandatory { .. }), "{err}");
    assert_eq!(
        kinds(&p),
        [EntryKind::Plan],
        "a refused override logs nothing"
    );

    let ok = override_as(&p, "cost-guard").unwrap();
    assert!(matches!(ok, ApproveOutcome::Overridden { .. }), "{ok:?}");
    assert_eq!(kinds(&p), [EntryKind::Plan, EntryKind::Override]);
}

/// Applies the latest staging plan, counting how often it asked to confirm.
fn apply_staging(
    p: &Project,
    answer: bool,
    asked: &Cell<usize>,
) -> Result<ApplyStatus, WorkflowError> {
    let confirm = |_: &Bundle| {
        asked.set(asked.get() + 1);
        answer
    };
    let req = ApplyRequest {
        environment: "staging",
        digest: None,
        confirm: &confirm,
    };
    apply(p, &req).map(|a| a.status)
}

#[test]
fn apply_checks_the_approval_before_it_asks_or_changes_anything() {
    let dir = tempfile::tempdir().unwrap();
    let p = project(dir.path());
    plan(&p, "staging", Vec::new());
    let asked = Cell::new(0);
    let err = apply_staging(&p, true, &asked).unwrap_err();
    assert!(
        matches!(
            err,
            WorkflowError::ApprovalMissing {
                have: 0,
                need: 1,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(asked.get(), 0);
    assert_eq!(kinds(&p), [EntryKind::Plan]);
    assert_eq!(
        p.store.lock_holder("staging").unwrap(),
        None,
        "the lock is released"
    );
}

#[test]
fn apply_refuses_project_files_changed_since_the_plan_even_when_approved() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = project(dir.path());
    plan(&p, "staging", Vec::new());
    approve_as(&mut p, "alice@example.com", "staging").unwrap();
    std::fs::write(
        dir.path().join("main.tf"),
        "resource \"terraform_data\" \"db2\" {}",
    )
    .unwrap();
    let asked = Cell::new(0);
    match apply_staging(&p, true, &asked) {
        Err(WorkflowError::SourcesChanged { path, removed, .. }) => {
            assert_eq!((path.as_str(), removed), ("main.tf", false))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(asked.get(), 0);
    assert_eq!(kinds(&p), [EntryKind::Plan, EntryKind::Approval]);
}

#[test]
fn apply_asks_last_and_a_no_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = project(dir.path());
    plan(&p, "staging", Vec::new());
    approve_as(&mut p, "alice@example.com", "staging").unwrap();
    let asked = Cell::new(0);
    let err = apply_staging(&p, false, &asked).unwrap_err();
    assert!(matches!(err, WorkflowError::Cancelled { .. }), "{err}");
    assert_eq!(asked.get(), 1);
    // The policies were re-evaluated (and logged); nothing started.
    assert_eq!(
        kinds(&p),
        [
            EntryKind::Plan,
            EntryKind::Approval,
            EntryKind::PolicyResults
        ]
    );
}

#[test]
fn an_approved_apply_logs_its_start_and_finish_and_its_plan_is_what_runs() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = project(dir.path());
    let bundle = plan(&p, "staging", Vec::new());
    approve_as(&mut p, "alice@example.com", "staging").unwrap();
    let asked = Cell::new(0);
    assert_eq!(
        apply_staging(&p, true, &asked).unwrap(),
        ApplyStatus::Succeeded
    );
    assert_eq!(
        kinds(&p),
        [
            EntryKind::Plan,
            EntryKind::Approval,
            EntryKind::PolicyResults,
            EntryKind::ApplyStart,
            EntryKind::ApplyFinish,
        ]
    );
    let history = p.history().unwrap();
    let current = history.current("staging").unwrap();
    assert_eq!(current.digest, bundle.digest);
    // No health check ran: the deployment is unverified, not healthy.
    assert_eq!(current.health(), crate::store::records::Health::Unverified);
    assert_eq!(p.store.verify().unwrap().first_bad, None);
}

#[test]
fn a_second_apply_of_an_environment_is_refused_while_one_holds_its_lock() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = project(dir.path());
    plan(&p, "staging", Vec::new());
    approve_as(&mut p, "alice@example.com", "staging").unwrap();
    let holder = LockHolder {
        actor: "bob@example.com".into(),
        host: "ci-1".into(),
        pid: 1,
        since: now_rfc3339(),
        purpose: "apply".into(),
    };
    let _held = p.store.lock("staging", &holder, Duration::ZERO).unwrap();
    let asked = Cell::new(0);
    let err = apply_staging(&p, true, &asked).unwrap_err();
    assert!(
        matches!(err, WorkflowError::Store(StoreError::Locked { .. })),
        "{err}"
    );
    assert_eq!(kinds(&p), [EntryKind::Plan, EntryKind::Approval]);
}
