//! Every terraform plan and trivy report in the third-party corpus
//! (see `support::corpus_dir`) is read — or refused with the
//! reason the corpus documents — and the counts opsdeploy extracts match the
//! ones manifest.json states.

use std::collections::BTreeMap;

use opsdeploy::adapters::plan_view::{ChangeValue, PlanView};
use opsdeploy::adapters::terraform::parse_plan_json;
use opsdeploy::adapters::trivy::{TrivyError, check_report};
use policy_sdk::scan::TrivySeverity;

use crate::support::corpus;

#[derive(serde::Deserialize)]
struct Entry {
    file: String,
    category: String,
    expected: Option<String>,
}

fn entries(category: &str) -> Vec<Entry> {
    let manifest: Vec<Entry> =
        serde_json::from_slice(&std::fs::read(corpus("manifest.json")).unwrap()).unwrap();
    manifest
        .into_iter()
        .filter(|e| e.category == category)
        .collect()
}

/// Every plan of the corpus that opsdeploy reads.
fn readable_plans() -> Vec<(String, opsdeploy::adapters::terraform::PlanJson)> {
    entries("Terraform plan JSON")
        .into_iter()
        .filter(|e| e.file.ends_with(".json"))
        .filter_map(|e| {
            let bytes = std::fs::read(corpus(&e.file)).unwrap();
            Some((e.file.clone(), parse_plan_json(&e.file, bytes).ok()?))
        })
        .collect()
}

/// `[create]x55, [no-op]x13` from the manifest's text, as a map.
fn stated_actions(expected: &str) -> Option<BTreeMap<String, usize>> {
    // The generated facts follow "auto:" when a description precedes them.
    let expected = expected.split("auto:").last()?;
    if expected.contains("NO resource_changes") {
        return Some(BTreeMap::new());
    }
    let start = expected.find("actions [")?;
    let mut out = BTreeMap::new();
    for part in expected[start + "actions ".len()..].split(", ") {
        let Some((actions, n)) = part.split_once("]x") else {
            break;
        };
        let n: usize = n
            .trim_end_matches('.')
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()?;
        out.insert(actions.trim_start_matches('[').to_string(), n);
        if !part.chars().last().is_some_and(|c| c.is_ascii_digit()) {
            break;
        }
    }
    Some(out)
}

#[test]
fn every_corpus_plan_is_read_or_refused_as_documented_and_counts_match() {
    let plans = entries("Terraform plan JSON");
    assert!(plans.len() > 90, "the corpus lists {} plans", plans.len());
    let mut checked_counts = 0;
    for e in plans.iter().filter(|e| e.file.ends_with(".json")) {
        let expected = e.expected.clone().unwrap_or_default();
        let bytes = std::fs::read(corpus(&e.file)).unwrap();
        let result = parse_plan_json(&e.file, bytes);
        let must_refuse = expected.contains("NOT A PLAN")
            || expected.contains("NOT pure JSON")
            || expected.contains("INVALID");
        match (&result, must_refuse) {
            (Err(err), true) => {
                let msg = err.to_string();
                assert!(msg.contains(&e.file), "the error names the file: {msg}");
                continue;
            }
            (Err(err), false) => panic!("{} should parse: {err}", e.file),
            (Ok(_), true) => panic!("{} should be refused ({expected})", e.file),
            (Ok(_), false) => {}
        }
        let raw = result.unwrap();
        let plan: policy_sdk::terraform::Plan = serde_json::from_str(raw.text()).unwrap();
        if let Some(stated) = stated_actions(&expected) {
            let mut counted: BTreeMap<String, usize> = BTreeMap::new();
            for rc in &plan.resource_changes {
                let key = serde_json::to_value(&rc.change.actions)
                    .unwrap()
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap().to_string())
                    .collect::<Vec<_>>()
                    .join(",");
                *counted.entry(key).or_default() += 1;
            }
            assert_eq!(counted, stated, "{}: {expected}", e.file);
            checked_counts += 1;
        }
        if let Some(i) = expected.find("resource_drift x") {
            let n: usize = expected[i + "resource_drift x".len()..]
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(plan.resource_drift.len(), n, "{}", e.file);
        }
    }
    assert!(
        checked_counts >= 80,
        "only {checked_counts} plans had counts checked"
    );
}

/// `2 vulns: 2 CRITICAL, 4 MEDIUM.` → severity counts.
fn stated_severities(expected: &str) -> Option<BTreeMap<TrivySeverity, usize>> {
    let auto = expected.split("auto:").nth(1)?;
    let i = auto.find(" vulns: ")?;
    let list = auto[i + " vulns: ".len()..].split('.').next()?;
    let mut out = BTreeMap::new();
    if list.trim() == "none" {
        return Some(out);
    }
    for part in list.split(", ") {
        let (n, sev) = part.trim().split_once(' ')?;
        out.insert(TrivySeverity::parse(sev)?, n.parse().ok()?);
    }
    Some(out)
}

#[test]
fn every_corpus_trivy_report_is_read_or_refused_as_documented_and_counts_match() {
    let reports = entries("Trivy reports");
    assert!(reports.len() >= 30);
    let (mut counted, mut refused) = (0, 0);
    for e in &reports {
        let expected = e.expected.clone().unwrap_or_default();
        let bytes = std::fs::read(corpus(&e.file)).unwrap();
        let result = check_report(&e.file, &bytes);
        if expected.contains("LEGACY") || expected.contains("literal `null`") {
            assert!(
                matches!(result, Err(TrivyError::Legacy { .. })),
                "{}: {:?}",
                e.file,
                result.err()
            );
            refused += 1;
            continue;
        }
        if expected.contains("NOT an image report") {
            let err = result
                .expect_err("a k8s cluster report is refused")
                .to_string();
            assert!(err.contains("trivy k8s"), "{err}");
            refused += 1;
            continue;
        }
        let report = result.unwrap_or_else(|err| panic!("{} should parse: {err}", e.file));
        if let Some(stated) = stated_severities(&expected) {
            let counts = report.severity_counts();
            let got: BTreeMap<TrivySeverity, usize> = TrivySeverity::ALL
                .into_iter()
                .map(|s| (s, counts.get(s)))
                .filter(|(_, n)| *n > 0)
                .collect();
            assert_eq!(got, stated, "{}: {expected}", e.file);
            counted += 1;
        }
    }
    assert_eq!(
        refused, 4,
        "legacy array, legacy null (twice counted once each) and k8s"
    );
    assert!(counted >= 25, "only {counted} reports had counts checked");
}

/// What a policy declaring `change_values` gets of plans nobody here wrote:
/// for every subset of the values, each plan's view is JSON equal to the plan
/// with exactly the other values taken out of every entry of
/// `resource_changes` and `resource_drift` (a null value reads as absent and
/// may stay), every other byte of meaning kept.
#[test]
fn change_value_views_of_every_corpus_plan_are_the_plan_without_the_other_values() {
    let plans = readable_plans();
    assert!(plans.len() >= 75, "only {} readable plans", plans.len());
    let mut cut_somewhere = 0;
    for keep in ChangeValue::every_set() {
        let view = PlanView {
            keys: None,
            change_values: Some(keep.clone()),
        };
        for (file, plan) in &plans {
            let mut pieces = Vec::new();
            plan.push_view(&view, &mut pieces);
            let text = pieces.concat();
            let got: serde_json::Value = serde_json::from_slice(&text)
                .unwrap_or_else(|e| panic!("{file} keeping {keep:?}: {e}"));
            // What the SDK reads of it parses as a plan.
            serde_json::from_slice::<policy_sdk::terraform::Plan>(&text).unwrap();
            let mut want: serde_json::Value = serde_json::from_str(plan.text()).unwrap();
            for list in ["resource_changes", "resource_drift"] {
                for rc in want
                    .get_mut(list)
                    .and_then(|l| l.as_array_mut())
                    .into_iter()
                    .flatten()
                {
                    let change = rc["change"].as_object_mut().unwrap();
                    for v in ChangeValue::ALL.into_iter().filter(|v| !keep.contains(v)) {
                        if change.get(v.as_str()).is_some_and(|x| !x.is_null()) {
                            change.remove(v.as_str());
                        }
                    }
                }
            }
            cut_somewhere +=
                usize::from(got != serde_json::from_str::<serde_json::Value>(plan.text()).unwrap());
            assert_eq!(got, want, "{file} keeping {keep:?}");
        }
    }
    assert!(
        cut_somewhere > 1000,
        "views differed from the plan only {cut_somewhere} times"
    );
}
