//! The policy engine through its library API: hostile modules fail closed with
//! their reason, results are deterministic, the module cache heals itself.

use std::time::{Duration, Instant};

use opsdeploy::engine::{
    CacheStatus, FailureKind, Limits, ModuleCache, ModuleSource, Outcome, PolicyEngine,
};

use crate::support::{abi_module, abi_module_with_version};

const INPUT: &[u8] =
    br#"{"schema_version":1,"environment":{"name":"staging","project":"shop"},"settings":null}"#;

fn engine() -> PolicyEngine {
    PolicyEngine::new(None).expect("engine starts")
}

fn failure_of(wasm: Vec<u8>, limits: Limits) -> (FailureKind, String) {
    let engine = engine();
    let policy = engine
        .load(&ModuleSource::from_bytes("test.wasm", "test", wasm.into()))
        .expect("module loads");
    let eval = engine.evaluate(&policy, INPUT, &limits);
    assert!(eval.denies(), "a failure must deny");
    let f = eval.failure().expect("evaluation failed").clone();
    (f.kind, f.reason)
}

#[test]
fn infinite_loop_is_stopped_by_fuel() {
    let limits = Limits {
        fuel: 5_000_000,
        ..Limits::default()
    };
    let (kind, reason) = failure_of(abi_module("(loop $l (br $l)) (i32.const 0)", ""), limits);
    assert_eq!(kind, FailureKind::OutOfFuel);
    assert!(reason.contains("5000000"), "{reason}");
}

#[test]
fn infinite_loop_is_stopped_by_the_deadline_within_two_seconds() {
    let limits = Limits {
        fuel: u64::MAX,
        timeout: Duration::from_secs(1),
        ..Limits::default()
    };
    let started = Instant::now();
    let (kind, reason) = failure_of(abi_module("(loop $l (br $l)) (i32.const 0)", ""), limits);
    let took = started.elapsed();
    assert_eq!(kind, FailureKind::Timeout, "{reason}");
    assert!(took >= Duration::from_secs(1), "stopped early: {took:?}");
    assert!(
        took < Duration::from_secs(3),
        "stopped {took:?} after start"
    );
}

#[test]
fn memory_bomb_is_stopped_at_the_cap() {
    let limits = Limits {
        memory_bytes: 16 << 20,
        ..Limits::default()
    };
    let bomb =
        "(loop $l (br_if $l (i32.ne (memory.grow (i32.const 16)) (i32.const -1)))) (i32.const 0)";
    let (kind, reason) = failure_of(abi_module(bomb, ""), limits);
    assert_eq!(kind, FailureKind::MemoryLimit);
    assert!(reason.contains("over the limit of 16.0 MiB"), "{reason}");
}

#[test]
fn deep_recursion_traps_cleanly() {
    let (kind, reason) = failure_of(
        abi_module("(call $down) (i32.const 0)", "(func $down (call $down))"),
        Limits::default(),
    );
    assert_eq!(kind, FailureKind::Trap);
    assert!(reason.contains("stack"), "{reason}");
}

#[test]
fn output_that_is_not_json_is_malformed() {
    let (kind, reason) = failure_of(
        abi_module(
            "(call $set_output (i32.const 64) (i32.const 11)) (i32.const 0)",
            r#"(data (i32.const 64) "not json!!!")"#,
        ),
        Limits::default(),
    );
    assert_eq!(kind, FailureKind::MalformedOutput);
    assert!(reason.contains("not a result document"), "{reason}");
}

#[test]
fn output_pointer_outside_memory_is_malformed() {
    let (kind, reason) = failure_of(
        abi_module(
            "(call $set_output (i32.const -16) (i32.const 100)) (i32.const 0)",
            "",
        ),
        Limits::default(),
    );
    assert_eq!(kind, FailureKind::MalformedOutput);
    assert!(reason.contains("outside its memory"), "{reason}");
}

#[test]
fn huge_output_is_refused_before_copying() {
    let (kind, _) = failure_of(
        abi_module(
            "(call $set_output (i32.const 0) (i32.const 0x7fffffff)) (i32.const 0)",
            "",
        ),
        Limits::default(),
    );
    assert_eq!(kind, FailureKind::OutputTooLarge);
}

#[test]
fn abi_version_two_is_a_mismatch() {
    let (kind, reason) = failure_of(
        abi_module_with_version(
            2,
            "(call $set_output (i32.const 16) (i32.const 17)) (i32.const 0)",
            "",
        ),
        Limits::default(),
    );
    assert_eq!(kind, FailureKind::AbiMismatch);
    assert!(reason.contains("version 2"), "{reason}");
}

#[test]
fn nonzero_status_and_missing_output_fail() {
    let (kind, _) = failure_of(abi_module("(i32.const 7)", ""), Limits::default());
    assert_eq!(kind, FailureKind::Status);
    let (kind, _) = failure_of(abi_module("(i32.const 0)", ""), Limits::default());
    assert_eq!(kind, FailureKind::NoOutput);
}

#[test]
fn guest_fail_message_becomes_the_reason() {
    let (kind, reason) = failure_of(
        abi_module(
            "(call $fail (i32.const 64) (i32.const 12)) unreachable",
            r#"(import "opsdeploy" "fail" (func $fail (param i32 i32))) (data (i32.const 64) "it broke: 42")"#,
        ),
        Limits::default(),
    );
    assert_eq!(kind, FailureKind::Panic);
    assert_eq!(reason, "it broke: 42");
}

#[test]
fn wasi_import_is_refused_at_load_naming_it() {
    let wasm = abi_module(
        "(i32.const 0)",
        r#"(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))"#,
    );
    let err = engine()
        .load(&ModuleSource::from_bytes("wasi.wasm", "wasi", wasm.into()))
        .unwrap_err();
    assert!(err.is_policy_defect());
    assert!(
        err.to_string()
            .contains("`wasi_snapshot_preview1.fd_write`"),
        "{err}"
    );
}

#[test]
fn missing_exports_are_refused_at_load() {
    let wasm = wat::parse_str(r#"(module (memory (export "memory") 1))"#).unwrap();
    let err = engine()
        .load(&ModuleSource::from_bytes(
            "empty.wasm",
            "empty",
            wasm.into(),
        ))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("does not export `opsdeploy_abi_version`"),
        "{err}"
    );
}

#[test]
fn same_module_same_input_gives_byte_identical_results() {
    let engine = engine();
    let source = ModuleSource::builtin("protected-deletes").expect("built in");
    let policy = engine.load(&source).unwrap();
    let doc = crate::support::production_document(Some(
        "terraform-compliance/tests/functional/test_issue_522/plan.out.json",
    ));
    let settings = serde_json::value::RawValue::from_string(
        r#"{"extra_types":["aws_cloudwatch_event_rule"]}"#.into(),
    )
    .unwrap();
    let input = doc.for_policy(policy.reads.as_deref(), Some(&settings));
    let a = engine.evaluate(&policy, &input, &Limits::default());
    let b = engine.evaluate(&policy, &input, &Limits::default());
    let bytes = |e: &opsdeploy::engine::Evaluation| {
        serde_json::to_vec(&(&e.outcome, e.fuel_used, &e.sha256)).unwrap()
    };
    assert!(matches!(&a.outcome, Outcome::Completed { violations } if violations.len() == 1));
    assert_eq!(bytes(&a), bytes(&b));
}

#[test]
fn corrupted_cache_entry_is_detected_and_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    let engine = PolicyEngine::new(Some(ModuleCache::new(dir.path()))).unwrap();
    let source = ModuleSource::builtin("protected-deletes").unwrap();
    assert_eq!(
        engine.load(&source).unwrap().cache_status,
        CacheStatus::Miss
    );
    assert_eq!(engine.load(&source).unwrap().cache_status, CacheStatus::Hit);

    let entry = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .expect("a cache entry was written");
    let mut bytes = std::fs::read(&entry).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&entry, &bytes).unwrap();

    let policy = engine.load(&source).unwrap();
    assert_eq!(policy.cache_status, CacheStatus::Corrupt);
    let eval = engine.evaluate(
        &policy,
        br#"{"schema_version":1,"environment":{"name":"s","project":"p"}}"#,
        &Limits::default(),
    );
    assert!(!eval.denies(), "{:?}", eval.outcome);
    assert_eq!(engine.load(&source).unwrap().cache_status, CacheStatus::Hit);
}

#[test]
fn the_start_function_and_a_reactors_initialize_run_once_before_evaluation() {
    // $g ends at 3 only if the start function (+1) and _initialize (+2) each ran once.
    let wasm = abi_module(
        r#"(if (i32.ne (global.get $g) (i32.const 3)) (then (return (i32.const 7))))
           (call $set_output (i32.const 16) (i32.const 17))
           (i32.const 0)"#,
        r#"(global $g (mut i32) (i32.const 0))
           (func $start (global.set $g (i32.add (global.get $g) (i32.const 1))))
           (start $start)
           (func (export "_initialize") (global.set $g (i32.add (global.get $g) (i32.const 2))))"#,
    );
    let engine = engine();
    let policy = engine
        .load(&ModuleSource::from_bytes(
            "reactor.wasm",
            "reactor",
            wasm.into(),
        ))
        .unwrap();
    let eval = engine.evaluate(&policy, INPUT, &Limits::default());
    assert!(
        matches!(eval.outcome, Outcome::Completed { .. }),
        "{eval:?}"
    );
}

#[test]
fn only_the_pinned_webassembly_features_load() {
    let load = |extra: &str| {
        engine().load(&ModuleSource::from_bytes(
            "f.wasm",
            "f",
            abi_module("(i32.const 0)", extra).into(),
        ))
    };
    // WebAssembly 2.0: fixed-width SIMD, bulk memory, sign extension.
    load("(func (drop (v128.const i32x4 0 0 0 0)) (memory.fill (i32.const 0) (i32.const 0) (i32.const 0)) (drop (i32.extend8_s (i32.const 1))))")
        .expect("wasm 2.0 features load");
    for (feature, extra) in [
        ("threads", "(func (drop (i32.atomic.load (i32.const 0))))"),
        ("tail calls", "(func $t (return_call $t))"),
        (
            "relaxed SIMD",
            "(func (drop (i32x4.relaxed_trunc_f32x4_s (v128.const i32x4 0 0 0 0))))",
        ),
        ("multiple memories", "(memory $second 1)"),
    ] {
        let err = load(extra).expect_err(feature);
        assert!(err.is_policy_defect(), "{feature}: {err}");
    }
}

/// What the built-ins say they read of a plan, from the metadata in their
/// built modules: the host cuts the rest out of the plan it passes them.
#[test]
fn the_builtins_read_only_the_plan_values_they_declare() {
    use opsdeploy::adapters::plan_view::ChangeValue;
    let engine = engine();
    let view = |name: &str| {
        engine
            .load(&ModuleSource::builtin(name).unwrap())
            .unwrap()
            .plan_view
    };
    let protected = view("protected-deletes");
    assert_eq!(protected.keys, Some(vec!["resource_changes".to_string()]));
    assert_eq!(protected.change_values, Some(vec![ChangeValue::Before]));
    let secrets = view("no-secrets");
    assert_eq!(
        secrets.change_values,
        Some(vec![ChangeValue::After, ChangeValue::AfterSensitive])
    );
    // promotion reads the configuration's digest, never the plan.
    assert_eq!(view("promotion").keys, Some(vec![]));
    // A policy without the declaration gets every value.
    assert_eq!(view("gates").change_values, None);
}
