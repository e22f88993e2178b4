//! Conformance of the sandboxed Rego runtime with regorus run natively: the
//! conftest-style policies of tests/rego/ over terraform plans and rendered
//! Kubernetes manifests of the corpus give the same verdicts in both. The
//! native side is written here from conftest's conventions (each declared rule
//! evaluated, strings and objects with `msg`), not with the runtime's code.

use opsdeploy::engine::{Limits, PolicyEngine, RegoFile, RegoMode, RegoSource};
use opsdeploy::input::InputDocument;
use policy_sdk::Section;
use regorus::Value;

use crate::support::{corpus, production_document, repo};

#[derive(Clone, Copy)]
enum Input {
    /// A terraform plan JSON: `input` is the plan.
    Plan(&'static str),
    /// Rendered manifests (YAML): `input` is each object in turn.
    Manifests(&'static str),
}

struct Case {
    /// Files under tests/rego, with the Rego version the native side reads them as.
    files: &'static [(&'static str, bool)],
    query: &'static str,
    /// The rules conftest would evaluate in the queried package.
    rules: &'static [&'static str],
    input: Input,
    /// What the native side must find, so agreement is not agreement on nothing.
    min_denies: usize,
    min_warns: usize,
}

const V0: bool = true;
const V1: bool = false;

const CHECKOV_PLAN: &str = "checkov/tests/terraform/runner/resources/plan/tfplan.json";
const SUMMARIZE_PLAN: &str = "tf-summarize/example/tfplan.json";
const OTEL: &str =
    "otel-helm-charts/charts/opentelemetry-demo/examples/default/rendered/component.yaml";
const DATADOG: &str = "datadog-helm-charts/test/datadog/baseline/manifests/default_all.yaml";

const TERRAFORM_V0: &[(&str, bool)] = &[("terraform-v0/deny.rego", V0)];
const TERRAFORM_V1: &[(&str, bool)] = &[("terraform-v1/security.rego", V1), ("lib/tf.rego", V1)];
const K8S: &[(&str, bool)] = &[("k8s/workloads.rego", V1), ("lib/k8s.rego", V1)];
const K8S_RULES: &[&str] = &[
    "deny",
    "violation",
    "deny_host_path",
    "warn",
    "warn_embedded_config",
    "warn_many_ports",
];

const CASES: &[Case] = &[
    Case {
        files: TERRAFORM_V0,
        query: "data.main",
        rules: &["deny", "warn"],
        input: Input::Plan(CHECKOV_PLAN),
        min_denies: 2,
        min_warns: 2,
    },
    Case {
        files: TERRAFORM_V0,
        query: "data.main",
        rules: &["deny", "warn"],
        input: Input::Plan(SUMMARIZE_PLAN),
        min_denies: 0,
        min_warns: 0,
    },
    Case {
        files: TERRAFORM_V1,
        query: "data.terraform.security",
        rules: &[
            "violation",
            "deny_unencrypted_volume",
            "deny_public_key",
            "warn_tag_keys",
        ],
        input: Input::Plan(CHECKOV_PLAN),
        min_denies: 3,
        min_warns: 1,
    },
    Case {
        files: K8S,
        query: "data.main",
        rules: K8S_RULES,
        input: Input::Manifests(OTEL),
        min_denies: 10,
        min_warns: 1,
    },
    Case {
        files: K8S,
        query: "data.main",
        rules: K8S_RULES,
        input: Input::Manifests(DATADOG),
        min_denies: 1,
        min_warns: 0,
    },
];

/// A verdict as both sides can state it.
type Verdict = (String, String, String, Option<String>);

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join("tests/rego").join(rel)).unwrap()
}

/// Native regorus, conftest's conventions.
fn native(case: &Case, inputs: &[(Value, Option<String>)]) -> Vec<Verdict> {
    let mut engine = regorus::Engine::new();
    for (file, v0) in case.files {
        engine.set_rego_v0(*v0);
        engine.add_policy(file.to_string(), read(file)).unwrap();
    }
    engine
        .add_data(
            Value::from_json_str(r#"{"opsdeploy":{"environment":{"name":"production","project":"shop"},"settings":null}}"#)
                .unwrap(),
        )
        .unwrap();
    let mut out = Vec::new();
    for (input, address) in inputs {
        engine.set_input(input.clone());
        for rule in case.rules {
            let severity = if rule.starts_with("warn") {
                "warn"
            } else {
                "deny"
            };
            let value = engine
                .eval_rule(format!("{}.{rule}", case.query))
                .unwrap_or_else(|e| panic!("{rule}: {e}"));
            let items: Vec<Value> = match value {
                Value::Set(s) => s.iter().cloned().collect(),
                Value::Undefined => Vec::new(),
                other => panic!("{rule} is {other:?}"),
            };
            for item in items {
                let (id, msg) = match &item {
                    Value::String(s) => (rule.to_string(), s.to_string()),
                    Value::Object(o) => {
                        let msg = o
                            .get(&Value::from("msg"))
                            .expect("msg")
                            .as_string()
                            .unwrap();
                        (rule.to_string(), msg.to_string())
                    }
                    other => panic!("{rule} yielded {other:?}"),
                };
                let at = match &item {
                    Value::Object(o) => o
                        .get(&Value::from("address"))
                        .map(|a| a.as_string().unwrap().to_string()),
                    _ => None,
                }
                .or_else(|| address.clone());
                out.push((severity.to_string(), id, msg, at));
            }
        }
    }
    out.sort();
    out
}

fn sandboxed(
    engine: &PolicyEngine,
    case: &Case,
    doc: &InputDocument,
    selector: &str,
    limits: &Limits,
) -> Vec<Verdict> {
    let source = RegoSource {
        name: "conformance".into(),
        origin: "tests/rego".into(),
        files: case
            .files
            .iter()
            .map(|(f, _)| RegoFile {
                path: f.to_string(),
                text: read(f),
            })
            .collect(),
        query: case.query.into(),
        input: Some(selector.into()),
        rego_version: "auto".into(),
    };
    let policy = engine.load_rego(&source, RegoMode::Deny).unwrap();
    let evaluation = engine.evaluate(
        &policy,
        &doc.for_policy(policy.reads.as_deref(), None),
        limits,
    );
    let mut out: Vec<Verdict> = evaluation
        .violations()
        .into_iter()
        .map(|v| (v.severity.to_string(), v.rule, v.message, v.address))
        .collect();
    out.sort();
    out
}

/// The input document, what the sandbox selects from it, and the native inputs.
fn inputs(input: Input) -> (InputDocument, &'static str, Vec<(Value, Option<String>)>) {
    match input {
        Input::Plan(rel) => {
            let plan =
                Value::from_json_str(&std::fs::read_to_string(corpus(rel)).unwrap()).unwrap();
            (
                production_document(Some(rel)),
                "terraform.plan",
                vec![(plan, None)],
            )
        }
        Input::Manifests(rel) => {
            let mut doc = production_document(None);
            let yaml = std::fs::read_to_string(corpus(rel)).unwrap();
            let rendered = opsdeploy::adapters::helm::parse_manifests("demo", &yaml).unwrap();
            let manifests: Vec<_> = rendered.iter().map(|r| r.as_input()).collect();
            doc.set(
                Section::Helm,
                &serde_json::json!([{"release": "demo", "chart": "demo", "namespace": "demo", "manifests": manifests}]),
            );
            let objects = rendered
                .iter()
                .map(|r| {
                    (
                        Value::from_json_str(r.object.get()).unwrap(),
                        Some(r.display_name()),
                    )
                })
                .collect();
            (doc, "kubernetes", objects)
        }
    }
}

#[test]
fn conftest_policies_give_the_same_verdicts_sandboxed_as_in_native_regorus() {
    let engine = PolicyEngine::new(None).unwrap();
    let limits = Limits::default();
    let mut problems = Vec::new();
    for case in CASES {
        let (doc, selector, native_inputs) = inputs(case.input);
        let expected = native(case, &native_inputs);
        let got = sandboxed(&engine, case, &doc, selector, &limits);
        let what = format!(
            "{:?} on {:?}",
            case.files,
            match case.input {
                Input::Plan(p) | Input::Manifests(p) => p,
            }
        );
        if got != expected {
            problems.push(format!("{what}: sandboxed {got:#?}\nnative {expected:#?}"));
        }
        let count = |s: &str| expected.iter().filter(|v| v.0 == s).count();
        if count("deny") < case.min_denies || count("warn") < case.min_warns {
            problems.push(format!(
                "{what}: {} denials and {} warnings, expected at least {} and {}",
                count("deny"),
                count("warn"),
                case.min_denies,
                case.min_warns
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

fn error_case(file: &str, input: &str) -> Vec<policy_sdk::Violation> {
    let engine = PolicyEngine::new(None).unwrap();
    let source = RegoSource {
        name: "broken".into(),
        origin: "tests/rego/errors".into(),
        files: vec![RegoFile {
            path: format!("errors/{file}"),
            text: read(&format!("errors/{file}")),
        }],
        query: "data.main".into(),
        input: None,
        rego_version: "auto".into(),
    };
    let policy = engine.load_rego(&source, RegoMode::Deny).unwrap();
    let doc = InputDocument::from_slice("t", input.as_bytes()).unwrap();
    let evaluation = engine.evaluate(&policy, &doc.for_policy(None, None), &Limits::default());
    assert!(evaluation.denies(), "{evaluation:?}");
    evaluation.violations()
}

#[test]
fn rego_errors_are_denials_naming_file_and_line() {
    let env = r#"{"schema_version":1,"environment":{"name":"p","project":"x"}}"#;
    for (file, rule, line) in [
        ("parse_error.rego", "rego-parse-error", 6),
        ("undefined_function.rego", "rego-eval-error", 6),
    ] {
        let v = error_case(file, env);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].rule, rule, "{v:?}");
        assert_eq!(
            v[0].path.as_deref(),
            Some(format!("errors/{file}").as_str())
        );
        assert_eq!(v[0].line, Some(line), "{v:?}");
        assert!(
            v[0].message.starts_with(&format!("errors/{file}:{line}: ")),
            "{v:?}"
        );
    }
    let v = error_case("conflict.rego", env);
    assert_eq!(v[0].rule, "rego-eval-error", "{v:?}");
    assert_eq!(v[0].path.as_deref(), Some("errors/conflict.rego"), "{v:?}");
    assert!(v[0].line.is_some(), "{v:?}");
}

#[test]
fn a_runaway_rego_policy_is_stopped_by_the_same_fuel_limit() {
    let engine = PolicyEngine::new(None).unwrap();
    let source = RegoSource {
        name: "spin".into(),
        origin: "inline".into(),
        files: vec![RegoFile {
            path: "spin.rego".into(),
            // Nine million steps, no memory to speak of: only fuel stops it.
            text: "package main\nimport rego.v1\ndeny contains i if {\n some i in numbers.range(1, 3000)\n some j in numbers.range(1, 3000)\n i * j < 0\n}\n".into(),
        }],
        query: "data.main".into(),
        input: None,
        rego_version: "auto".into(),
    };
    let policy = engine.load_rego(&source, RegoMode::Deny).unwrap();
    let limits = Limits {
        fuel: 200_000_000,
        ..Limits::default()
    };
    let evaluation = engine.evaluate(
        &policy,
        &production_document(None).for_policy(None, None),
        &limits,
    );
    assert_eq!(
        evaluation.violations()[0].rule,
        "policy-out-of-fuel",
        "{evaluation:?}"
    );
}

#[test]
fn a_configured_rego_policy_is_in_the_plan_digest_and_denies_with_file_and_line() {
    use opsdeploy::config::Config;
    use opsdeploy::workflow::{policies, sources};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("policies/tf")).unwrap();
    std::fs::write(
        dir.join("opsdeploy.hcl"),
        "project = \"shop\"\npolicy \"tf\" {\n  rego  = [\"policies/tf/*.rego\"]\n  input = \"terraform.plan\"\n}\nenvironment \"staging\" {\n  approval { self_approve = true }\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("policies/tf/deny.rego"),
        read("terraform-v0/deny.rego"),
    )
    .unwrap();
    std::fs::write(dir.join("policies/tf/notes.md"), "not policy").unwrap();
    let config = Config::load(dir).unwrap();
    let env = config.environment("staging").unwrap();
    let files: Vec<String> = sources::collect(&config, env)
        .unwrap()
        .into_iter()
        .map(|f| f.rel)
        .collect();
    assert!(
        files.contains(&"policies/tf/deny.rego".to_string()),
        "{files:?}"
    );
    assert!(
        !files.contains(&"policies/tf/notes.md".to_string()),
        "{files:?}"
    );

    let engine = PolicyEngine::new(None).unwrap();
    let (mut doc, _, _) = inputs(Input::Plan(CHECKOV_PLAN));
    doc.set_environment(&policy_sdk::input::Environment {
        name: "staging".into(),
        project: "shop".into(),
        strategy: None,
        promote_from: None,
        plan_digest: None,
        rollback_runbook: None,
        now: None,
        allow_unverified: false,
    });
    let loaded = policies::load(&config, &engine, "staging").unwrap();
    assert!(
        loaded[0].origin().starts_with("rego:"),
        "{}",
        loaded[0].origin()
    );
    let decisions = policies::evaluate(&engine, &loaded, &doc, &[]);
    assert!(
        decisions[0].denied && decisions[0].blocks,
        "{:?}",
        decisions[0]
    );
    assert!(
        decisions[0]
            .violations
            .iter()
            .all(|v| v.rule == "deny" || v.rule == "warn")
    );

    // The same policy with a syntax error: a denial at its file and line.
    std::fs::write(
        dir.join("policies/tf/deny.rego"),
        read("errors/parse_error.rego"),
    )
    .unwrap();
    let loaded = policies::load(&config, &engine, "staging").unwrap();
    let decisions = policies::evaluate(&engine, &loaded, &doc, &[]);
    let v = &decisions[0].violations[0];
    assert_eq!(v.rule, "rego-parse-error", "{v:?}");
    assert_eq!(v.path.as_deref(), Some("policies/tf/deny.rego"));
    assert!(v.line.is_some(), "{v:?}");
}

#[test]
fn policy_eval_runs_a_rego_file_on_a_terraform_plan() {
    let tmp = tempfile::tempdir().unwrap();
    crate::support::opsdeploy(&tmp.path().join("cache"))
        .args(["policy", "eval"])
        .arg(repo().join("tests/rego/terraform-v0/deny.rego"))
        .arg("--terraform-plan")
        .arg(corpus(CHECKOV_PLAN))
        .assert()
        .code(3)
        .stdout(predicates::str::contains("is created without a Name tag"));
}
