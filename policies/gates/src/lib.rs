//! gates: the SDLC gates a deploy must clear — the project's phase allows the
//! environment, quality gates (S06) and security review (S07) passed, the
//! security checklist is complete, a rollback runbook exists where one is
//! required, declared feature flags are configured, and a human approved this
//! exact plan (S08).
//!
//! At plan time there is no plan digest yet: the approval rule reports
//! `approval-pending` (info) and denies only at apply, when the digest is known.

use std::collections::{BTreeMap, BTreeSet};

use policy_sdk::input::Gates;
use policy_sdk::prelude::*;
use policy_sdk::text::short_digest;
use serde::Deserialize;

/// Statuses that count as passed (compared case-insensitively, ignoring
/// emoji and Markdown emphasis around them).
pub const DEFAULT_PASSED: &[&str] = &[
    "passed",
    "pass",
    "done",
    "approved",
    "complete",
    "completed",
    "ok",
    "green",
    "yes",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Lowest phase that allows each environment; environments not listed
    /// have no phase requirement. Replaces the default map when given.
    min_phase: BTreeMap<String, String>,
    /// Gates (state-file ids) that must have passed.
    required_gates: Vec<String>,
    /// Statuses that count as passed; replaces [`DEFAULT_PASSED`] when given.
    passed_statuses: Vec<String>,
    /// Deny when no security checklist is configured.
    require_checklist: bool,
    /// Environments that need a rollback runbook even when their
    /// configuration names none.
    runbook_required_for: Vec<String>,
    /// Environments deployed without a logged approval (e.g. `dev`).
    approval_exempt: Vec<String>,
    /// Environments whose approvals should be signed (`approval { signers }`):
    /// a warning when they are not, since anyone can approve in anyone's name.
    signed_approvals_for: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            min_phase: BTreeMap::from([
                ("staging".to_string(), "S09".to_string()),
                ("production".to_string(), "S10".to_string()),
            ]),
            required_gates: vec!["S06".into(), "S07".into()],
            passed_statuses: DEFAULT_PASSED.iter().map(|s| s.to_string()).collect(),
            require_checklist: true,
            runbook_required_for: vec!["production".into()],
            approval_exempt: Vec::new(),
            signed_approvals_for: vec!["production".into()],
        }
    }
}

/// `S09` → `("s", 9)`; phases with the same prefix compare by number.
fn phase_number(phase: &str) -> Option<(String, u32)> {
    let digits = phase.len()
        - phase
            .trim_start_matches(|c: char| !c.is_ascii_digit())
            .len();
    let (prefix, number) = phase.split_at(digits);
    Some((prefix.to_ascii_lowercase(), number.parse().ok()?))
}

/// Whether `phase` is `min` or later.
pub fn phase_reaches(phase: &str, min: &str) -> bool {
    match (phase_number(phase), phase_number(min)) {
        (Some((p, n)), Some((q, m))) if p == q => n >= m,
        _ => phase.eq_ignore_ascii_case(min),
    }
}

/// `✅ **Passed**` → `passed`.
fn normalized(status: &str) -> String {
    status
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

impl Settings {
    fn passed(&self, status: &str) -> bool {
        let n = normalized(status);
        if n.is_empty() {
            return ["✅", "✔", "✔️", "☑", "☑️"].contains(&status.trim());
        }
        self.passed_statuses.iter().any(|p| normalized(p) == n)
    }
}

pub fn evaluate(input: &Input) -> Vec<Violation> {
    let settings: Settings = match input.settings_or_denial("gates") {
        Ok(s) => s,
        Err(denial) => return vec![denial],
    };
    let env = &input.environment;
    let mut out = Vec::new();
    match &input.gates {
        Some(gates) => check_state(&settings, gates, &env.name, env.rollback_runbook.as_deref(), &mut out),
        None => out.push(Violation::deny(
            "no-project-state",
            format!(
                "no project state was read for {}: the phase, gates, checklist and runbook cannot be checked (configure the project's state file)",
                env.name
            ),
        )),
    }
    check_approval(&settings, input, &mut out);
    out
}

fn check_state(
    settings: &Settings,
    gates: &Gates,
    env: &str,
    env_runbook: Option<&str>,
    out: &mut Vec<Violation>,
) {
    let state_file = gates
        .state_file
        .as_deref()
        .unwrap_or("the project state file");
    let at_state = |v: Violation, line: Option<u32>| {
        let v = match &gates.state_file {
            Some(p) => v.at_path(p.as_ref()),
            None => v,
        };
        match line {
            Some(l) => v.at_line(l),
            None => v,
        }
    };

    if let Some(min) = settings.min_phase.get(env) {
        match gates.phase.as_deref() {
            None => out.push(at_state(
                Violation::deny(
                    "phase-missing",
                    format!("{state_file} has no phase line (`Phase: S09`); {env} needs phase {min} or later"),
                ),
                None,
            )),
            Some(phase) if !phase_reaches(phase, min) => out.push(at_state(
                Violation::deny(
                    "phase-too-early",
                    format!("the project is in phase {phase}; {env} needs phase {min} or later"),
                ),
                gates.phase_line,
            )),
            Some(_) => {}
        }
    }

    for required in &settings.required_gates {
        match gates
            .gates
            .iter()
            .find(|g| g.id.eq_ignore_ascii_case(required))
        {
            None => out.push(at_state(
                Violation::deny(
                    "gate-missing",
                    format!("gate {required} is not in the gate table of {state_file}"),
                ),
                None,
            )),
            Some(g) if !settings.passed(&g.status) => {
                let name = g
                    .name
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default();
                out.push(at_state(
                    Violation::deny(
                        "gate-not-passed",
                        format!("gate {}{name} is `{}`, not passed", g.id, g.status),
                    ),
                    g.line,
                ));
            }
            Some(_) => {}
        }
    }

    match &gates.security_checklist {
        None if settings.require_checklist => out.push(Violation::deny(
            "checklist-missing",
            "no security checklist is configured, so it cannot be complete",
        )),
        None => {}
        Some(list) if list.items.is_empty() => out.push(
            Violation::deny(
                "checklist-empty",
                format!("security checklist {} has no `- [ ]` items", list.path),
            )
            .at_path(list.path.as_ref()),
        ),
        Some(list) => {
            for item in list.items.iter().filter(|i| !i.checked) {
                out.push(
                    Violation::deny(
                        "checklist-unticked",
                        format!("security checklist item not ticked: {}", item.text),
                    )
                    .at_path(list.path.as_ref())
                    .at_line(item.line),
                );
            }
        }
    }

    let required = env_runbook.is_some() || settings.runbook_required_for.iter().any(|e| e == env);
    if required {
        match &gates.rollback_runbook {
            None => out.push(Violation::deny(
                "runbook-missing",
                format!(
                    "{env} requires a rollback runbook but none {}",
                    match env_runbook {
                        Some(p) => format!("was read (configured: {p})"),
                        None => "is configured".to_string(),
                    }
                ),
            )),
            Some(doc) if !doc.exists => out.push(
                Violation::deny(
                    "runbook-missing",
                    format!(
                        "rollback runbook {} does not exist; {env} requires one",
                        doc.path
                    ),
                )
                .at_path(doc.path.as_ref()),
            ),
            Some(doc) if doc.content_bytes == 0 => out.push(
                Violation::deny(
                    "runbook-empty",
                    format!(
                        "rollback runbook {} is empty; write down how to roll back {env}",
                        doc.path
                    ),
                )
                .at_path(doc.path.as_ref()),
            ),
            Some(_) => {}
        }
    }

    for (flag, _) in gates
        .feature_flags
        .iter()
        .filter(|(_, configured)| !**configured)
    {
        out.push(at_state(
            Violation::deny(
                "feature-flag-unconfigured",
                format!(
                    "feature flag `{flag}` is declared in {state_file} but not configured for {env}"
                ),
            ),
            None,
        ));
    }
}

fn check_approval(settings: &Settings, input: &Input, out: &mut Vec<Violation>) {
    let env = &input.environment;
    if settings.approval_exempt.iter().any(|e| *e == env.name) {
        return;
    }
    let signed = input.approvals.as_ref().is_some_and(|a| a.signed);
    if !signed && settings.signed_approvals_for.iter().any(|e| *e == env.name) {
        out.push(Violation::warn(
            "approvals-unsigned",
            format!(
                "approvals for {} are unsigned: identity not verified, anyone can approve in anyone's name (set `approval {{ signers = \"deploy/allowed_signers\" }}`)",
                env.name
            ),
        ));
    }
    let Some(digest) = env.plan_digest.as_deref() else {
        out.push(Violation::info(
            "approval-pending",
            format!(
                "no plan digest yet: the approval (S08) of this exact plan is checked when {} is applied",
                env.name
            ),
        ));
        return;
    };
    let approvals = input.approvals.as_ref();
    let needed = approvals.map_or(1, |a| a.required.max(1)) as usize;
    let planned_by = approvals.and_then(|a| a.planned_by.as_deref());
    let self_approve = approvals.is_some_and(|a| a.self_approve);
    let mut approvers: BTreeSet<&str> = BTreeSet::new();
    let (mut own, mut other_plans) = (0, 0);
    for a in approvals
        .map(|a| a.approvals.as_slice())
        .unwrap_or_default()
    {
        if a.digest != digest {
            other_plans += 1;
        } else if Some(a.approver.as_ref()) == planned_by && !self_approve {
            own += 1;
        } else {
            approvers.insert(&a.approver);
        }
    }
    if approvers.len() >= needed {
        return;
    }
    let mut notes = Vec::new();
    if own > 0 {
        notes.push(format!(
            "the approval by {} does not count: they planned it and self-approval is off",
            planned_by.unwrap_or("the planner")
        ));
    }
    if other_plans > 0 {
        notes.push(format!(
            "{other_plans} approval{} {} for another plan",
            if other_plans == 1 { "" } else { "s" },
            if other_plans == 1 { "is" } else { "are" }
        ));
    }
    let notes = if notes.is_empty() {
        String::new()
    } else {
        format!(" ({})", notes.join("; "))
    };
    out.push(
        Violation::deny(
            "approval-missing",
            format!(
                "plan {} has {} of {needed} required approval{} (S08){notes}",
                short_digest(digest),
                approvers.len(),
                if needed == 1 { "" } else { "s" },
            ),
        )
        .at_address(digest),
    );
}

policy_sdk::export_policy! {
    name: "gates",
    description: "SDLC gates before a deploy: phase, quality and security gates, security checklist, rollback runbook, feature flags, approval of the exact plan",
    reads: [gates, approvals],
    settings_schema: r#"{"type":"object","additionalProperties":false,"properties":{"min_phase":{"type":"object","additionalProperties":{"type":"string"}},"required_gates":{"type":"array","items":{"type":"string"}},"passed_statuses":{"type":"array","items":{"type":"string"}},"require_checklist":{"type":"boolean"},"runbook_required_for":{"type":"array","items":{"type":"string"}},"approval_exempt":{"type":"array","items":{"type":"string"}},"signed_approvals_for":{"type":"array","items":{"type":"string"}}}}"#,
    evaluate: evaluate,
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSING_GATES: &str = r#"{"state_file":"STATE.md","phase":"S10","phase_line":1,
        "gates":[{"id":"S06","status":"passed","line":5},{"id":"S07","status":"✅ Passed","line":6}],
        "security_checklist":{"path":"SECURITY.md","items":[{"text":"TLS","checked":true,"line":1}]},
        "rollback_runbook":{"path":"ROLLBACK.md","exists":true,"content_bytes":120},
        "feature_flags":{"new_checkout":true}}"#;

    fn run(
        env: &str,
        digest: Option<&str>,
        gates: &str,
        approvals: &str,
        settings: &str,
    ) -> Vec<Violation> {
        let digest = digest
            .map(|d| format!(r#","plan_digest":"{d}""#))
            .unwrap_or_default();
        let json = format!(
            r#"{{"schema_version":1,"environment":{{"name":"{env}","project":"shop"{digest}}},
            "settings":{settings},"gates":{gates},"approvals":{approvals}}}"#
        );
        evaluate(&Input::from_json(&json).unwrap())
    }

    fn rules(v: &[Violation]) -> Vec<&str> {
        v.iter().map(|v| v.rule.as_str()).collect()
    }

    const APPROVED: &str = r#"{"approvals":[{"approver":"bob","digest":"sha256:abc","at":"t"}],"planned_by":"alice","required":1,"signed":true}"#;

    #[test]
    fn everything_in_order_passes_at_apply() {
        let v = run(
            "production",
            Some("sha256:abc"),
            PASSING_GATES,
            APPROVED,
            "null",
        );
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn phases_compare_by_number_within_a_prefix() {
        assert!(phase_reaches("S10", "S09"));
        assert!(phase_reaches("s09", "S09"));
        assert!(!phase_reaches("S08", "S09"));
        assert!(!phase_reaches("beta", "S09"));
        let early = PASSING_GATES.replace(r#""phase":"S10""#, r#""phase":"S09""#);
        let v = run("production", Some("sha256:abc"), &early, APPROVED, "null");
        assert_eq!(rules(&v), vec!["phase-too-early"]);
        assert_eq!(v[0].line, Some(1));
        assert!(run("staging", Some("sha256:abc"), &early, APPROVED, "null").is_empty());
    }

    #[test]
    fn failed_gates_unticked_boxes_and_unconfigured_flags_are_each_reported() {
        let gates = r#"{"state_file":"STATE.md","phase":"S10",
            "gates":[{"id":"S06","status":"failed","line":5}],
            "security_checklist":{"path":"SECURITY.md","items":[{"text":"TLS","checked":false,"line":3},{"text":"Vault","checked":false,"line":4}]},
            "rollback_runbook":{"path":"ROLLBACK.md","exists":true,"content_bytes":0},
            "feature_flags":{"a":false,"b":true}}"#;
        let v = run("production", Some("sha256:abc"), gates, APPROVED, "null");
        assert_eq!(
            rules(&v),
            vec![
                "gate-not-passed",
                "gate-missing",
                "checklist-unticked",
                "checklist-unticked",
                "runbook-empty",
                "feature-flag-unconfigured"
            ]
        );
        assert_eq!(
            (v[2].path.as_deref(), v[2].line),
            (Some("SECURITY.md"), Some(3))
        );
    }

    #[test]
    fn approval_is_info_at_plan_time_and_a_denial_at_apply() {
        let v = run(
            "production",
            None,
            PASSING_GATES,
            r#"{"signed":true}"#,
            "null",
        );
        assert_eq!(rules(&v), vec!["approval-pending"]);
        assert_eq!(v[0].severity, Severity::Info);
        let other = r#"{"approvals":[{"approver":"bob","digest":"sha256:old","at":"t"},{"approver":"alice","digest":"sha256:abc","at":"t"}],"planned_by":"alice","required":1,"signed":true}"#;
        let v = run(
            "production",
            Some("sha256:abc"),
            PASSING_GATES,
            other,
            "null",
        );
        assert_eq!(rules(&v), vec!["approval-missing"]);
        assert!(v[0].message.contains("0 of 1"), "{}", v[0].message);
        assert!(
            v[0].message.contains("self-approval is off"),
            "{}",
            v[0].message
        );
        assert!(
            v[0].message.contains("1 approval is for another plan"),
            "{}",
            v[0].message
        );
        let own_ok = other.replace(r#""required":1"#, r#""required":1,"self_approve":true"#);
        assert!(
            run(
                "production",
                Some("sha256:abc"),
                PASSING_GATES,
                &own_ok,
                "null"
            )
            .is_empty()
        );
    }

    #[test]
    fn settings_move_phases_relax_the_checklist_and_exempt_environments() {
        let bare = r#"{"phase":"S05","gates":[{"id":"S06","status":"passed"},{"id":"S07","status":"passed"}]}"#;
        let settings =
            r#"{"min_phase":{"dev":"S05"},"require_checklist":false,"approval_exempt":["dev"]}"#;
        assert!(run("dev", Some("d"), bare, "null", settings).is_empty());
        let v = run("dev", Some("d"), bare, "null", r#"{"typo":true}"#);
        assert_eq!(rules(&v), vec!["invalid-settings"]);
    }

    #[test]
    fn unsigned_approvals_are_a_warning_for_production_or_where_settings_say() {
        let unsigned = APPROVED.replace(r#","signed":true"#, "");
        let v = run(
            "production",
            Some("sha256:abc"),
            PASSING_GATES,
            &unsigned,
            "null",
        );
        assert_eq!(rules(&v), vec!["approvals-unsigned"]);
        assert_eq!(v[0].severity, Severity::Warn);
        assert!(v[0].message.contains("signers"), "{}", v[0].message);
        // At plan time too, beside the pending approval.
        let v = run("production", None, PASSING_GATES, "null", "null");
        assert_eq!(rules(&v), vec!["approvals-unsigned", "approval-pending"]);
        // Staging is not asked for signatures unless the settings say so.
        assert!(
            run(
                "staging",
                Some("sha256:abc"),
                PASSING_GATES,
                &unsigned,
                "null"
            )
            .is_empty()
        );
        let staging_too = r#"{"signed_approvals_for":["staging","production"]}"#;
        let v = run(
            "staging",
            Some("sha256:abc"),
            PASSING_GATES,
            &unsigned,
            staging_too,
        );
        assert_eq!(rules(&v), vec!["approvals-unsigned"]);
        let nowhere = r#"{"signed_approvals_for":[]}"#;
        assert!(
            run(
                "production",
                Some("sha256:abc"),
                PASSING_GATES,
                &unsigned,
                nowhere
            )
            .is_empty()
        );
    }

    #[test]
    fn a_missing_state_section_is_a_denial() {
        let v = run("staging", None, "null", "null", "null");
        assert_eq!(rules(&v), vec!["no-project-state", "approval-pending"]);
    }
}
