//! The policy engine on real terraform plans (issue 2) and the typed plan
//! model against a generic JSON tree (issue 3). Run it with
//! `bench/policy-engine.sh`, which generates the plans first.
//!
//! - `policy_engine`: compiling the built-in protected-deletes without a
//!   cache, loading it from the on-disk cache, evaluating it (fresh instance,
//!   input copied in, guest parse, policy, output parse) on a document without
//!   a plan and on the 1,000- and 10,000-resource plans, and the same check in
//!   native Rust: `serde_json::Value` of the same `terraform` section bytes,
//!   then a walk of `resource_changes`.
//! - `plan_parse`: `policy_sdk::terraform::Plan` (borrowed, raw sub-documents)
//!   against `serde_json::Value` on the same plan JSON.
//! - `policy_engine/compile_child`: the same compile as `compile_cold`, in a
//!   child process held to the policy's limits, as the opsdeploy binary
//!   compiles (this bench binary is its own child, as opsdeploy is).
//!
//! After measuring, the medians criterion wrote for this run are printed with
//! the ratios the issues set targets for.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use opsdeploy::adapters::terraform::read_plan_file;
use opsdeploy::engine::{Limits, ModuleCache, ModuleSource, Outcome, Policy, PolicyEngine};
use opsdeploy::input::InputDocument;
use serde_json::value::RawValue;

// The allocator the opsdeploy binary uses: serde_json's trees (native side)
// and the host's buffers are allocated as they are in production.
#[global_allocator]
static GLOBAL: opsdeploy::GlobalAllocator = opsdeploy::GlobalAllocator {};

const SIZES: [usize; 2] = [1_000, 10_000];
const POLICY: &str = "protected-deletes";
/// Every resource of the generated plans is a terraform_data: protecting the
/// type makes the policy's type check run against each destroy it meets.
const PROTECTED_TYPE: &str = "terraform_data";
const SETTINGS: &str = r#"{"types":["terraform_data"]}"#;

/// The workspace root (this package lives in bench/engine).
fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// The plan `bench/gen-plans.sh N` wrote.
fn plan_path(resources: usize) -> PathBuf {
    let path = repo().join(format!("target/bench-data/tf-{resources}/plan.json"));
    if !path.is_file() {
        eprintln!(
            "error: no {resources}-resource plan at {}\nhint: run `bench/gen-plans.sh {resources}` (or bench/policy-engine.sh)",
            path.display()
        );
        std::process::exit(1);
    }
    path
}

fn document(plan: Option<&Path>) -> InputDocument {
    let mut doc = InputDocument::new(&policy_sdk::input::Environment {
        name: "staging".into(),
        project: "bench".into(),
        strategy: None,
        promote_from: None,
        plan_digest: None,
        rollback_runbook: None,
        now: None,
        allow_unverified: false,
    });
    if let Some(plan) = plan {
        doc.set_terraform("infra", read_plan_file(plan).expect("a valid plan"));
    }
    doc
}

/// What protected-deletes checks, natively: planned destroys (a delete or a
/// replacement) of managed resources of a protected type.
fn native_protected_deletes(plan: &[u8]) -> usize {
    let plan: serde_json::Value = serde_json::from_slice(plan).expect("valid JSON");
    let Some(changes) = plan["resource_changes"].as_array() else {
        return 0;
    };
    changes
        .iter()
        .filter(|rc| rc["mode"] != "data" && rc["type"] == PROTECTED_TYPE)
        .filter(|rc| {
            rc["change"]["actions"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == "delete"))
        })
        .count()
}

fn violations(engine: &PolicyEngine, policy: &Policy, input: &[u8]) -> usize {
    match engine.evaluate(policy, input, &Limits::default()).outcome {
        Outcome::Completed { violations } => violations.len(),
        Outcome::Failed(f) => panic!("{POLICY} failed: {f:?}"),
    }
}

fn policy_engine(c: &mut Criterion) {
    let source = ModuleSource::builtin(POLICY).expect("a built-in policy");
    let settings = RawValue::from_string(SETTINGS.into()).expect("valid JSON");
    let mut group = c.benchmark_group("policy_engine");

    let uncached = PolicyEngine::new(None).expect("engine");
    group.sample_size(10);
    group.bench_function("compile_cold", |b| {
        b.iter(|| uncached.load(&source).expect("compiles"))
    });

    let cache_dir = tempfile::tempdir().expect("temp dir");
    let engine = PolicyEngine::new(Some(ModuleCache::new(cache_dir.path()))).expect("engine");
    engine.load(&source).expect("compiles and fills the cache");
    let policy = engine.load(&source).expect("loads");
    assert_eq!(policy.cache_status, opsdeploy::engine::CacheStatus::Hit);
    group.sample_size(100);
    group.bench_function("load_cached", |b| {
        b.iter(|| engine.load(&source).expect("loads from the cache"))
    });

    let reads = policy.reads.as_deref();
    let no_plan = document(None).for_policy(reads, Some(&settings));
    group.bench_function(BenchmarkId::new("evaluate_wasm", "no_plan"), |b| {
        b.iter(|| violations(&engine, &policy, &no_plan))
    });

    // A 10k-resource evaluation takes about a second: equal-sized samples.
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    for resources in SIZES {
        let doc = document(Some(&plan_path(resources)));
        let input = doc
            .parts(reads, &policy.plan_view, Some(&settings))
            .concat();
        let section = doc.terraform_plan().expect("set above").text().as_bytes();
        // Same answer both ways, or the comparison means nothing.
        assert_eq!(
            violations(&engine, &policy, &input),
            native_protected_deletes(section)
        );
        group.throughput(Throughput::Bytes(section.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("evaluate_wasm", resources),
            &input,
            |b, input| b.iter(|| violations(&engine, &policy, input)),
        );
        group.bench_with_input(
            BenchmarkId::new("native", resources),
            section,
            |b, section| b.iter(|| native_protected_deletes(section)),
        );
    }
    group.finish();
}

/// Last: from here on every compile of this process goes to a child.
fn compile_child(c: &mut Criterion) {
    let source = ModuleSource::builtin(POLICY).expect("a built-in policy");
    opsdeploy::engine::compile_in_child(std::env::current_exe().expect("the bench binary"));
    let uncached = PolicyEngine::new(None).expect("engine");
    let mut group = c.benchmark_group("policy_engine");
    group.sample_size(10);
    group.bench_function("compile_child", |b| {
        b.iter(|| uncached.load(&source).expect("compiles in a child"))
    });
    group.finish();
}

fn plan_parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("plan_parse");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    for resources in SIZES {
        let bytes = std::fs::read(plan_path(resources)).expect("readable plan");
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_with_input(BenchmarkId::new("typed", resources), &bytes, |b, bytes| {
            b.iter(|| {
                serde_json::from_slice::<policy_sdk::terraform::Plan>(bytes)
                    .expect("a plan")
                    .resource_changes
                    .len()
            })
        });
        group.bench_with_input(BenchmarkId::new("value", resources), &bytes, |b, bytes| {
            b.iter(|| serde_json::from_slice::<serde_json::Value>(bytes).expect("JSON"))
        });
    }
    group.finish();
}

/// Where criterion writes (its own rule, minus `cargo metadata`: this
/// workspace does not move its target directory).
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return home.into();
    }
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"))
        .join("criterion")
}

/// The median criterion estimated for `id` in this run; `None` when the
/// benchmark was filtered out (its estimates are older than `since`).
fn median(id: &str, since: SystemTime) -> Option<Duration> {
    let path = criterion_dir().join(id).join("new/estimates.json");
    let fresh = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t >= since);
    if !fresh {
        return None;
    }
    let estimates: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    let ns = estimates["median"]["point_estimate"].as_f64()?;
    Some(Duration::from_secs_f64(ns / 1e9))
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// Medians and the ratios the issues set targets for.
fn report(since: SystemTime) {
    let m = |id: &str| median(id, since);
    println!("\n## medians (this run)\n");
    println!("| benchmark | median |");
    println!("|---|---|");
    let mut ids = vec![
        "policy_engine/compile_cold".to_string(),
        "policy_engine/compile_child".to_string(),
        "policy_engine/load_cached".to_string(),
        "policy_engine/evaluate_wasm/no_plan".to_string(),
    ];
    for n in SIZES {
        ids.push(format!("policy_engine/evaluate_wasm/{n}"));
        ids.push(format!("policy_engine/native/{n}"));
    }
    for n in SIZES {
        ids.push(format!("plan_parse/typed/{n}"));
        ids.push(format!("plan_parse/value/{n}"));
    }
    for id in &ids {
        if let Some(d) = m(id) {
            println!("| {id} | {} |", ms(d));
        }
    }
    println!();
    let verdict = |ok: bool| if ok { "meets" } else { "MISSES" };
    if let (Some(cold), Some(child)) = (
        m("policy_engine/compile_cold"),
        m("policy_engine/compile_child"),
    ) {
        println!(
            "compile in a child: {} vs {} in process (+{}, {:.2}x)",
            ms(child),
            ms(cold),
            ms(child.saturating_sub(cold)),
            child.as_secs_f64() / cold.as_secs_f64()
        );
    }
    if let Some(load) = m("policy_engine/load_cached") {
        let ok = load < Duration::from_millis(5);
        println!(
            "cached load: {} ({} the < 5 ms target)",
            ms(load),
            verdict(ok)
        );
    }
    for n in SIZES {
        let wasm = m(&format!("policy_engine/evaluate_wasm/{n}"));
        let native = m(&format!("policy_engine/native/{n}"));
        if let (Some(wasm), Some(native)) = (wasm, native) {
            let ratio = wasm.as_secs_f64() / native.as_secs_f64();
            println!(
                "{n} resources: wasm {} / native {} = {ratio:.2}x ({} the <= 1.5x target)",
                ms(wasm),
                ms(native),
                verdict(ratio <= 1.5)
            );
        }
    }
    for n in SIZES {
        let typed = m(&format!("plan_parse/typed/{n}"));
        let value = m(&format!("plan_parse/value/{n}"));
        if let (Some(typed), Some(value)) = (typed, value) {
            // Speed is the inverse of time: typed's speed relative to Value's.
            let speed = value.as_secs_f64() / typed.as_secs_f64();
            println!(
                "{n}-resource plan parse: typed {} vs Value {}: typed runs at {speed:.2}x the speed of Value ({} the >= 0.5x target)",
                ms(typed),
                ms(value),
                verdict(speed >= 0.5)
            );
        }
    }
}

fn main() -> std::process::ExitCode {
    // The policy compiler child of `compile_child` is this binary.
    if std::env::args_os().nth(1).as_deref() == Some(opsdeploy::engine::COMPILE_CHILD_ARG.as_ref())
    {
        return opsdeploy::engine::compile_child_main();
    }
    let started = SystemTime::now();
    let mut c = Criterion::default().configure_from_args();
    policy_engine(&mut c);
    plan_parse(&mut c);
    compile_child(&mut c);
    c.final_summary();
    report(started);
    std::process::ExitCode::SUCCESS
}
