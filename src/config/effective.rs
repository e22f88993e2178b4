//! The effective configuration of one environment: every setting an apply of
//! it depends on, after `env()` and defaults, as `name → value`.
//!
//! opsdeploy.hcl's bytes are in the plan bundle, but the same bytes can mean
//! something else at apply time: `enforcement = env("ENF")` or `approvers =
//! ...` read from the environment, or a default that changed with a new
//! opsdeploy. The plan records a salted hash of each of these values (values
//! may be secrets read through `env()`) and apply refuses when one differs,
//! naming it.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Config, Environment, Notify, PolicySource};
use crate::engine::Limits;

/// Every setting that shapes a plan or an apply of `env`, by a name that
/// says where it is written (`policy "gates" enforcement`).
pub fn settings(config: &Config, env: &Environment) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let mut set = |name: String, value: Value| {
        out.insert(name, value);
    };
    set("project".into(), json!(config.project));
    set("state_file".into(), json!(config.files.state_file));
    set(
        "continuity_file".into(),
        json!(config.files.continuity_file),
    );
    set(
        "security_checklist".into(),
        json!(config.files.security_checklist),
    );
    let t = &config.tools;
    set(
        "tools".into(),
        json!({"terraform": t.terraform, "helm": t.helm, "trivy": t.trivy}),
    );
    set("notify".into(), notify(config.notify.as_ref()));
    for p in config.policies_for(&env.name) {
        let at = |key: &str| format!("policy \"{}\" {key}", p.name);
        let source = match &p.source {
            PolicySource::Builtin => json!("builtin"),
            PolicySource::File(f) => json!(f),
            PolicySource::Rego(r) => json!({
                "rego": r.files,
                "query": r.query,
                "input": r.input,
                "rego_version": r.rego_version,
            }),
        };
        let limits = Limits::default().overridden(p.fuel, p.memory, p.timeout);
        set(at("source"), source);
        set(at("enforcement"), json!(p.enforcement));
        set(at("settings"), p.settings.clone().unwrap_or(Value::Null));
        set(at("environments"), json!(p.environments));
        set(at("fuel"), json!(limits.fuel));
        set(at("memory"), json!(limits.memory_bytes));
        set(at("timeout"), json!(limits.timeout.as_millis() as u64));
    }
    for off in config.policies_off_for(&env.name) {
        set(format!("policy \"{}\" off", off.name), json!(off.reason));
    }
    let at = |key: &str| format!("environment \"{}\" {key}", env.name);
    set(at("promote_from"), json!(env.promote_from));
    set(at("strategy"), json!(env.strategy));
    set(at("lock_timeout"), millis(env.lock_timeout));
    set(
        at("terraform"),
        json!(env.terraform.as_ref().map(|t| json!({
            "dir": t.dir, "var_files": t.var_files, "vars": t.vars,
            "workspace": t.workspace, "binary": t.binary,
        }))),
    );
    for h in &env.helm {
        set(
            at(&format!("helm \"{}\"", h.name)),
            json!({
                "chart": h.chart, "namespace": h.namespace, "version": h.version,
                "values": h.values, "set": h.set, "timeout": millis(h.timeout),
            }),
        );
    }
    set(
        at("scan"),
        json!(env.scan.as_ref().map(|s| json!({
            "images": s.images, "paths": s.paths, "fail_on": s.fail_on.as_str(),
            "allowlist": s.allowlist,
        }))),
    );
    set(
        at("migrations"),
        json!(
            env.migrations
                .as_ref()
                .map(|m| json!({"dir": m.dir, "command": m.command}))
        ),
    );
    set(
        at("health"),
        json!(env.health.as_ref().map(|h| json!({
            "url": h.url, "timeout": millis(h.timeout), "interval": millis(h.interval),
            "expect_status": h.expect_status,
        }))),
    );
    set(
        at("smoke_test"),
        json!(
            env.smoke_test
                .as_ref()
                .map(|s| json!({"command": s.command, "timeout": millis(s.timeout)}))
        ),
    );
    set(
        at("monitor"),
        json!(env.monitor.as_ref().map(|m| json!({
            "window": millis(m.window), "interval": millis(m.interval),
            "error_rate_query": m.error_rate_query, "max_error_rate": m.max_error_rate,
        }))),
    );
    set(at("approval.approvers"), json!(env.approval.approvers));
    set(at("approval.min"), json!(env.approval.min));
    set(
        at("approval.self_approve"),
        json!(env.approval.self_approve),
    );
    set(
        at("rollback"),
        json!(env.rollback.as_ref().map(|r| &r.runbook)),
    );
    set(at("notify"), notify(env.notify.as_ref()));
    out
}

fn notify(n: Option<&Notify>) -> Value {
    json!(n.map(|n| &n.webhook))
}

fn millis(d: std::time::Duration) -> Value {
    json!(d.as_millis() as u64)
}
