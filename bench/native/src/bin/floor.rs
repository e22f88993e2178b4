//! The native floor of bench/compare.sh: what a hand-written Rust program
//! doing a built-in policy's rule costs, whole process. It reads the plan
//! into a `serde_json::Value` (with mimalloc, as opsdeploy allocates) and
//! applies the rule with the policy's own functions, natively:
//!
//! `floor protected-deletes PLAN` — settings `{"addresses":["*"]}`;
//! `floor no-secrets PLAN` — default settings, the plan's parts of the rule
//! (configuration constants, planned values of creates and updates,
//! variables not declared sensitive).
//!
//! Prints `{"violations":N}`.

use std::collections::BTreeSet;

use serde_json::Value;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, rule, path] = args.as_slice() else {
        eprintln!("usage: floor protected-deletes|no-secrets PLAN");
        std::process::exit(2);
    };
    let bytes = std::fs::read(path).unwrap_or_else(|e| fail(&format!("{path}: {e}")));
    let plan: Value =
        serde_json::from_slice(&bytes).unwrap_or_else(|e| fail(&format!("{path}: {e}")));
    let violations = match rule.as_str() {
        "protected-deletes" => protected_deletes(&plan),
        "no-secrets" => no_secrets(&plan),
        other => fail(&format!("unknown rule {other}")),
    };
    println!("{{\"violations\":{}}}", violations.len());
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1);
}

/// protected-deletes with `addresses = ["*"]`: every planned destroy of a
/// managed resource is protected (by its type or by the pattern).
fn protected_deletes(plan: &Value) -> Vec<String> {
    let addresses = ["*"];
    let mut out = Vec::new();
    for rc in plan["resource_changes"].as_array().into_iter().flatten() {
        if rc["mode"] == "data" {
            continue;
        }
        let actions: Vec<&str> = rc["change"]["actions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if !actions.contains(&"delete") {
            continue;
        }
        let ty = rc["type"].as_str().unwrap_or("");
        let address = rc["address"].as_str().unwrap_or("");
        let why = if protected_deletes::DEFAULT_TYPES.contains(&ty) {
            Some(format!("type {ty} is protected"))
        } else {
            addresses
                .iter()
                .find(|p| policy_sdk::text::glob_match(p, address))
                .map(|p| format!("address matches protected pattern `{p}`"))
        };
        if let Some(why) = why {
            out.push(format!("{address} would be destroyed: {why}"));
        }
    }
    out
}

/// no-secrets' terraform rule, over the `Value`.
fn no_secrets(plan: &Value) -> Vec<String> {
    use no_secrets::detect::{Finding, check_value};
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    let mut out = Vec::new();
    let mut report = |address: &str, f: Finding, out: &mut Vec<String>| {
        let key = f.key.clone().unwrap_or_default();
        if seen.insert((address.to_string(), key.clone())) {
            out.push(format!("{} in `{key}` ({}) at {address}", f.what, f.redacted));
        }
    };
    let config = &plan["configuration"];
    for (name, provider) in config["provider_config"].as_object().into_iter().flatten() {
        if let Some(expr) = provider.get("expressions") {
            for f in no_secrets::constants(&expr.to_string(), true) {
                report(&format!("provider.{name}"), f, &mut out);
            }
        }
    }
    let mut stack = vec![(String::new(), &config["root_module"])];
    while let Some((prefix, module)) = stack.pop() {
        for r in module["resources"].as_array().into_iter().flatten() {
            if let Some(expr) = r.get("expressions") {
                let address = format!("{prefix}{}", r["address"].as_str().unwrap_or(""));
                for f in no_secrets::constants(&expr.to_string(), false) {
                    report(&address, f, &mut out);
                }
            }
        }
        for (name, call) in module["module_calls"].as_object().into_iter().flatten() {
            stack.push((format!("{prefix}module.{name}."), &call["module"]));
        }
    }
    for rc in plan["resource_changes"].as_array().into_iter().flatten() {
        let actions = &rc["change"]["actions"];
        let writes = actions
            .as_array()
            .into_iter()
            .flatten()
            .any(|a| a == "create" || a == "update");
        if !writes {
            continue;
        }
        let mut found = Vec::new();
        let sensitive = rc["change"].get("after_sensitive");
        no_secrets::walk(&rc["change"]["after"], "", sensitive, &mut |k, v| {
            found.extend(check_value(k, v))
        });
        let address = rc["address"].as_str().unwrap_or("");
        for f in found {
            report(address, f, &mut out);
        }
    }
    let declared = &config["root_module"]["variables"];
    for (name, var) in plan["variables"].as_object().into_iter().flatten() {
        if declared[name]["sensitive"] == true {
            continue;
        }
        let mut found = Vec::new();
        no_secrets::walk(&var["value"], name, None, &mut |k, v| {
            found.extend(check_value(k, v))
        });
        for f in found {
            report(&format!("var.{name}"), f, &mut out);
        }
    }
    out
}
