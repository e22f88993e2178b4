//! Rego on the 1,000-resource terraform plan (bench/rego.sh; BENCHMARKS.md,
//! "Rego"): bench/rego/service_limits.rego run by the sandboxed Rego runtime
//! and by regorus natively, and the same policy in Rust with policy-sdk
//! (bench/policies/service-limits) as a wasm module. Each is timed from the
//! plan's bytes to the verdict, in interleaved rounds so that load on the
//! machine hits all three alike; medians and the ratios are printed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use opsdeploy::engine::{Limits, ModuleSource, PolicyEngine, RegoFile, RegoMode, RegoSource};
use opsdeploy::input::InputDocument;
use regorus::Value;

const ENVIRONMENT: &str =
    r#"{"schema_version":1,"environment":{"name":"staging","project":"bench"}}"#;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Regorus natively, conftest's conventions: (severity, message) of every result.
fn native(policy: &str, plan: &str) -> Vec<(String, String)> {
    let mut engine = regorus::Engine::new();
    engine
        .add_policy("service_limits.rego".into(), policy.into())
        .expect("the policy parses");
    engine
        .add_data(Value::from_json_str(r#"{"opsdeploy":{"environment":{"name":"staging","project":"bench"},"settings":null}}"#).expect("json"))
        .expect("data");
    engine.set_input(Value::from_json_str(plan).expect("the plan is JSON"));
    let mut out = Vec::new();
    for (rule, severity) in [("deny", "deny"), ("warn", "warn")] {
        if let Value::Set(items) = engine
            .eval_rule(format!("data.main.{rule}"))
            .expect("evaluates")
        {
            for item in items.iter() {
                out.push((
                    severity.to_string(),
                    item.as_string().expect("a message").to_string(),
                ));
            }
        }
    }
    out.sort();
    out
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; this harness takes no arguments.
    let plan_path = PathBuf::from(
        std::env::var_os("OPSDEPLOY_BENCH_PLAN")
            .expect("set OPSDEPLOY_BENCH_PLAN (bench/rego.sh does)"),
    );
    let rounds: usize = std::env::var("OPSDEPLOY_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(15);
    let plan = std::fs::read_to_string(&plan_path).expect("read the plan");
    let policy_text = std::fs::read_to_string(repo().join("bench/rego/service_limits.rego"))
        .expect("read the policy");

    let engine = PolicyEngine::new(None).expect("engine");
    let limits = Limits::default();
    let rego = engine
        .load_rego(
            &RegoSource {
                name: "service-limits".into(),
                origin: "bench/rego/service_limits.rego".into(),
                files: vec![RegoFile {
                    path: "service_limits.rego".into(),
                    text: policy_text.clone(),
                }],
                query: "data.main".into(),
                input: Some("terraform.plan".into()),
                rego_version: "auto".into(),
            },
            RegoMode::Deny,
        )
        .expect("the Rego policy loads");
    let crates =
        opsdeploy::authoring::build::discover(&repo().join("bench/policies/service-limits"))
            .expect("the Rust policy crate");
    let wasm = opsdeploy::authoring::build::build(&crates).expect("the Rust policy builds");
    let rust = engine
        .load(&ModuleSource::read(&wasm[0]).expect("read the module"))
        .expect("the Rust policy loads");

    let mut doc = InputDocument::from_slice("bench", ENVIRONMENT.as_bytes()).expect("document");
    doc.set_terraform(
        "infra",
        opsdeploy::adapters::terraform::read_plan_file(&plan_path).expect("the plan"),
    );
    let rego_input = doc.for_policy(rego.reads.as_deref(), None);
    let rust_input = doc.for_policy(rust.reads.as_deref(), None);

    // The three agree before any of them is timed.
    let verdicts = |eval: opsdeploy::engine::Evaluation| {
        let mut v: Vec<(String, String)> = eval
            .violations()
            .into_iter()
            .map(|v| (v.severity.to_string(), v.message))
            .collect();
        v.sort();
        v
    };
    let reference = native(&policy_text, &plan);
    assert!(
        !reference.is_empty(),
        "the policy finds something to report"
    );
    assert_eq!(
        verdicts(engine.evaluate(&rego, &rego_input, &limits)),
        reference,
        "sandboxed Rego"
    );
    assert_eq!(
        verdicts(engine.evaluate(&rust, &rust_input, &limits)),
        reference,
        "Rust"
    );

    let mut samples: [Vec<Duration>; 3] = Default::default();
    let mut fuel = [0u64; 2];
    for round in 0..rounds + 2 {
        let t = Instant::now();
        let e = engine.evaluate(&rego, &rego_input, &limits);
        let rego_time = t.elapsed();
        fuel[0] = e.fuel_used.unwrap_or_default();
        let t = Instant::now();
        std::hint::black_box(native(&policy_text, &plan));
        let native_time = t.elapsed();
        let t = Instant::now();
        let e = engine.evaluate(&rust, &rust_input, &limits);
        let rust_time = t.elapsed();
        fuel[1] = e.fuel_used.unwrap_or_default();
        // The first two rounds warm caches and the allocator.
        if round >= 2 {
            samples[0].push(rego_time);
            samples[1].push(native_time);
            samples[2].push(rust_time);
        }
    }
    let [rego_m, native_m, rust_m] = samples.map(median);
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
    println!(
        "plan: {} ({:.1} MB), {} results, {rounds} rounds, medians:",
        plan_path.display(),
        plan.len() as f64 / 1e6,
        reference.len()
    );
    println!(
        "  rego sandboxed (runtime module)   {:>10}   fuel {}",
        ms(rego_m),
        fuel[0]
    );
    println!("  rego native (regorus)             {:>10}", ms(native_m));
    println!(
        "  rust policy-sdk (wasm module)     {:>10}   fuel {}",
        ms(rust_m),
        fuel[1]
    );
    println!(
        "  sandboxed / native regorus = {:.2}x (target: within 2x); rust / native regorus = {:.2}x",
        rego_m.as_secs_f64() / native_m.as_secs_f64(),
        rust_m.as_secs_f64() / native_m.as_secs_f64()
    );
}
