//! regorus (the Rust Rego engine) as a whole process, for bench/compare.sh:
//! `rego POLICY.rego RULE PLAN` loads the policy, reads the plan as the
//! input document and evaluates RULE (a set of violations).
//!
//! Prints `{"violations":N}`.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, policy, rule, plan] = args.as_slice() else {
        eprintln!("usage: rego POLICY.rego RULE PLAN");
        std::process::exit(2);
    };
    let fail = |what: &str, e: &dyn std::fmt::Display| -> ! {
        eprintln!("error: {what}: {e}");
        std::process::exit(1);
    };
    let mut engine = regorus::Engine::new();
    engine
        .add_policy_from_file(policy)
        .unwrap_or_else(|e| fail(policy, &e));
    let input = std::fs::read_to_string(plan).unwrap_or_else(|e| fail(plan, &e));
    engine
        .set_input_json(&input)
        .unwrap_or_else(|e| fail(plan, &e));
    drop(input);
    let result = engine
        .eval_rule(rule.clone())
        .unwrap_or_else(|e| fail(rule, &e));
    let n = result
        .as_set()
        .map(|s| s.len())
        .unwrap_or_else(|e| fail(rule, &e));
    println!("{{\"violations\":{n}}}");
}
