//! no-secrets: no plaintext secret in anything a deployment ships — terraform's
//! planned values, provider and resource arguments written in the
//! configuration, variables, `.tf`/`.tfvars`/compose/`.env` files,
//! `opsdeploy.hcl` and the scripts its commands run, helm values
//! and rendered manifests (env values, ConfigMaps, literal `Secret` data), and
//! what `trivy fs` found. References are fine: `secretKeyRef`, vault paths,
//! `${VAR}`, `data.aws_secretsmanager_*`, and values terraform marks sensitive
//! (they come from a variable or the environment; where such a variable is
//! written in a `.tfvars` file, that file's finding reports it). Findings name
//! the key and where it is, and show the value masked, never the value.

pub mod detect;
pub mod stand_in;

use std::collections::BTreeSet;

use detect::{Finding, Syntax, check_value, is_secret_key, scan_text, secret_key_finding};
use policy_sdk::input::tree;
use policy_sdk::prelude::*;
use policy_sdk::scan::ScanKind;
use policy_sdk::terraform::ConfigModule;
use policy_sdk::text::glob_match;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Keys whose values are never secrets here (compared case-insensitively).
    ignore_keys: Vec<String>,
    /// Project files not scanned (`*` matches any run of characters).
    ignore_files: Vec<String>,
}

impl Settings {
    fn ignores_key(&self, key: &str) -> bool {
        self.ignore_keys.iter().any(|k| k.eq_ignore_ascii_case(key))
    }
}

const HINT: &str = "keep it in a secret store and reference it: a sensitive variable set from the environment, secretKeyRef, or a vault path";

fn describe(f: &Finding) -> String {
    match &f.key {
        Some(key) => format!("{} in `{key}` ({})", f.what, f.redacted),
        None => format!("{} ({})", f.what, f.redacted),
    }
}

/// Calls `visit(key, value)` for every string in a JSON tree, skipping what the
/// parallel `sensitive` tree (terraform's `after_sensitive`) marks `true`.
/// A Kubernetes `{name, value}` pair is judged as `name = value`. Public for
/// the native baseline of bench/compare.sh, which applies the same rule.
pub fn walk(
    value: &Value,
    key: &str,
    sensitive: Option<&Value>,
    visit: &mut dyn FnMut(&str, &str),
) {
    if sensitive == Some(&Value::Bool(true)) {
        return;
    }
    match value {
        Value::String(s) => visit(key, s),
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                walk(v, key, sensitive.and_then(|s| s.get(i)), visit);
            }
        }
        Value::Object(map) => {
            if let (Some(Value::String(name)), Some(Value::String(v))) =
                (map.get("name"), map.get("value"))
            {
                visit(name, v);
                return;
            }
            for (k, v) in map {
                walk(v, k, sensitive.and_then(|s| s.get(k)), visit);
            }
        }
        _ => {}
    }
}

pub fn evaluate(input: &Input) -> Vec<Violation> {
    let settings: Settings = match input.settings_or_denial("no-secrets") {
        Ok(s) => s,
        Err(denial) => return vec![denial],
    };
    let mut out = Vec::new();
    terraform(input, &settings, &mut out);
    helm(input, &settings, &mut out);
    files(input, &settings, &mut out);
    trivy(input, &mut out);
    out
}

fn terraform(input: &Input, settings: &Settings, out: &mut Vec<Violation>) {
    let Some(plan) = input.plan() else { return };
    // (address, key) already reported, so a literal in the configuration and
    // the planned value it becomes are one finding.
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    let mut report = |address: &str, f: Finding, from: &str, out: &mut Vec<Violation>| {
        let key = f.key.clone().unwrap_or_default();
        if settings.ignores_key(&key) || !seen.insert((address.to_string(), key)) {
            return;
        }
        out.push(
            Violation::deny(
                "plaintext-secret",
                format!("{} {from}; {HINT}", describe(&f)),
            )
            .at_address(address),
        );
    };
    if let Some(config) = &plan.configuration {
        for (name, provider) in &config.provider_config {
            if let Some(expr) = provider.expressions {
                let address = format!("provider.{name}");
                // No credential belongs in a provider block, example or mock
                // value included: the provider reads them from the environment.
                for f in constants(expr.get(), true) {
                    report(&address, f, "is written in the provider configuration", out);
                }
            }
        }
        if let Some(root) = &config.root_module {
            let mut stack: Vec<(String, &ConfigModule)> = vec![(String::new(), root)];
            while let Some((prefix, module)) = stack.pop() {
                for r in &module.resources {
                    if let Some(expr) = r.expressions {
                        let address = format!("{prefix}{}", r.address);
                        for f in constants(expr.get(), false) {
                            report(&address, f, "is written in the configuration", out);
                        }
                    }
                }
                for (name, call) in &module.module_calls {
                    if let Some(m) = &call.module {
                        stack.push((format!("{prefix}module.{name}."), m));
                    }
                }
            }
        }
    }
    for rc in &plan.resource_changes {
        let actions = &rc.change.actions;
        if !(actions.0.contains(&Action::Create) || actions.0.contains(&Action::Update)) {
            continue;
        }
        let after = rc.change.after_value();
        let sensitive: Option<Value> = rc
            .change
            .after_sensitive
            .map(|r| tree(r.get(), "change.after_sensitive"));
        let mut found = Vec::new();
        walk(&after, "", sensitive.as_ref(), &mut |k, v| {
            found.extend(check_value(k, v));
        });
        for f in found {
            report(&rc.address, f, "is planned in clear text", out);
        }
    }
    // Variables declared sensitive come from outside the plan's files.
    let sensitive_vars: BTreeSet<String> = plan
        .configuration
        .as_ref()
        .and_then(|c| c.root_module.as_ref())
        .and_then(|m| m.variables)
        .map(|v| tree(v.get(), "configuration.root_module.variables"))
        .and_then(|vars| match vars {
            Value::Object(vars) => Some(vars),
            _ => None,
        })
        .map(|vars| {
            vars.into_iter()
                .filter(|(_, v)| v.get("sensitive") == Some(&Value::Bool(true)))
                .map(|(k, _)| k)
                .collect()
        })
        .unwrap_or_default();
    for (name, var) in &plan.variables {
        if sensitive_vars.contains(name.as_ref()) {
            continue;
        }
        let value = var
            .value
            .map_or(Value::Null, |r| tree(r.get(), "variables"));
        let mut found = Vec::new();
        walk(&value, name, None, &mut |k, v| {
            found.extend(check_value(k, v))
        });
        for f in found {
            let address = format!("var.{name}");
            report(&address, f, "is a variable not marked sensitive", out);
        }
    }
}

/// Findings among the `constant_value`s of a configuration `expressions` map
/// (nested blocks are lists of such maps); `strict` counts every non-empty
/// literal under a secret key.
pub fn constants(expressions: &str, strict: bool) -> Vec<Finding> {
    fn visit(v: &Value, strict: bool, out: &mut Vec<Finding>) {
        let Value::Object(map) = v else {
            if let Value::Array(items) = v {
                items.iter().for_each(|i| visit(i, strict, out));
            }
            return;
        };
        for (attr, expr) in map {
            match expr.get("constant_value") {
                Some(c) => walk(c, attr, None, &mut |k, s| {
                    if strict && is_secret_key(k) && !s.trim().is_empty() {
                        out.push(secret_key_finding(k, s));
                    } else {
                        out.extend(check_value(k, s));
                    }
                }),
                None => visit(expr, strict, out),
            }
        }
    }
    let mut out = Vec::new();
    visit(
        &tree(expressions, "configuration expressions"),
        strict,
        &mut out,
    );
    out
}

/// Findings among the strings of a JSON tree, minus the keys settings ignore.
fn tree_findings(tree: &Value, settings: &Settings) -> Vec<Finding> {
    let mut found = Vec::new();
    walk(tree, "", None, &mut |k, v| found.extend(check_value(k, v)));
    found.retain(|f| !settings.ignores_key(f.key.as_deref().unwrap_or("")));
    found
}

fn helm(input: &Input, settings: &Settings, out: &mut Vec<Violation>) {
    for release in &input.helm {
        let name = &release.release;
        if let Some(values) = release.values.map(|r| tree(r.get(), "helm values")) {
            for f in tree_findings(&values, settings) {
                out.push(
                    Violation::deny(
                        "plaintext-secret",
                        format!("helm release {name} values: {}; {HINT}", describe(&f)),
                    )
                    .at_address(format!("helm:{name}")),
                );
            }
        }
        for manifest in &release.manifests {
            let object = manifest.object_value();
            let at = format!("helm:{name}/{}", manifest.display_name());
            if manifest.kind == "Secret" {
                // A Secret rendered from the chart carries its value in the
                // chart or its values; base64 is an encoding, not encryption.
                let mut keys: Vec<&str> = Vec::new();
                for field in ["data", "stringData"] {
                    let Some(Value::Object(data)) = object.get(field) else {
                        continue;
                    };
                    for (k, v) in data {
                        let Some(v) = v.as_str() else { continue };
                        let value = match field {
                            "data" => detect::decode_base64(v.trim())
                                .map(|b| String::from_utf8_lossy(&b).into_owned())
                                .unwrap_or_else(|| v.to_string()),
                            _ => v.to_string(),
                        };
                        // `MISSING`, empty, a template: the chart's stand-in until a
                        // real value is set. Any other literal is what the cluster
                        // will use, a stand-in word (`admin`) included.
                        let lower = value.trim().to_ascii_lowercase();
                        let unset = lower.is_empty()
                            || matches!(lower.as_str(), "missing" | "null" | "none" | "-")
                            || stand_in::is_template(value.trim());
                        if !unset {
                            keys.push(k);
                        }
                    }
                }
                if !keys.is_empty() {
                    out.push(
                        Violation::deny(
                            "secret-in-manifest",
                            format!(
                                "helm release {name} renders {} with literal data for {}; its values live in the chart or its values files. Create it outside the chart (External Secrets, Sealed Secrets) and reference it",
                                manifest.display_name(),
                                keys.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
                            ),
                        )
                        .at_address(at),
                    );
                }
                continue;
            }
            for f in tree_findings(&object, settings) {
                out.push(
                    Violation::deny(
                        "plaintext-secret",
                        format!(
                            "helm release {name} renders {}: {}; {HINT}",
                            manifest.display_name(),
                            describe(&f)
                        ),
                    )
                    .at_address(at.clone()),
                );
            }
        }
    }
}

fn files(input: &Input, settings: &Settings, out: &mut Vec<Violation>) {
    for file in &input.files {
        if settings
            .ignore_files
            .iter()
            .any(|p| glob_match(p, &file.path))
        {
            continue;
        }
        let syntax = match &*file.kind {
            // opsdeploy.hcl is HCL: literals are quoted, bare words expressions.
            "terraform" | "tfvars" | "opsdeploy" => Syntax::Terraform,
            "compose" | "env" | "helm-values" => Syntax::KeyValue,
            _ => Syntax::Text,
        };
        for f in scan_text(&file.content, syntax) {
            if settings.ignores_key(f.key.as_deref().unwrap_or("")) {
                continue;
            }
            let lines = match (f.line, f.end_line) {
                (Some(a), Some(b)) if b > a => format!("lines {a}-{b}"),
                (Some(a), _) => format!("line {a}"),
                _ => String::new(),
            };
            let mut v = Violation::deny(
                "plaintext-secret",
                format!("{} {lines}: {}; {HINT}", file.path, describe(&f)),
            )
            .at_path(&*file.path);
            if let Some(line) = f.line {
                v = v.at_line(line);
            }
            out.push(v);
        }
    }
}

/// What `trivy fs --scanners secret` found in the project.
fn trivy(input: &Input, out: &mut Vec<Violation>) {
    let Some(scans) = &input.scans else { return };
    for scan in scans.reports.iter().filter(|s| s.kind == ScanKind::Fs) {
        for result in &scan.report.results {
            for s in &result.secrets {
                let mut v = Violation::deny(
                    "trivy-secret",
                    format!(
                        "trivy found {} ({}, {}) in {}; {HINT}",
                        s.title.as_deref().unwrap_or(&s.rule_id),
                        s.rule_id,
                        s.severity,
                        result.target
                    ),
                )
                .at_path(&*result.target);
                if let Some(line) = s.start_line {
                    v = v.at_line(line);
                }
                out.push(v);
            }
        }
    }
}

policy_sdk::export_policy! {
    name: "no-secrets",
    description: "Deny plaintext secrets in terraform values and files, helm values and manifests, and what trivy's secret scan found",
    reads: [terraform, helm, files, scans],
    terraform_plan: [resource_changes, configuration, variables],
    // What a resource becomes and which of it terraform marks sensitive.
    change_values: [after, after_sensitive],
    settings_schema: r#"{"type":"object","additionalProperties":false,"properties":{"ignore_keys":{"type":"array","items":{"type":"string"}},"ignore_files":{"type":"array","items":{"type":"string"}}}}"#,
    evaluate: evaluate,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_literal_in_the_configuration_is_denied_once_even_when_the_plan_marks_it_sensitive() {
        let doc = r#"{"schema_version":1,"environment":{"name":"staging","project":"shop"},
          "terraform":{"dir":"infra","plan":{"format_version":"1.2","resource_changes":[{"address":"aws_db_instance.db","mode":"managed","type":"aws_db_instance","name":"db",
            "change":{"actions":["create"],"before":null,"after":{"password":"Tq7-lantern-83!"},"after_sensitive":{"password":true}}}],
          "configuration":{"root_module":{"resources":[{"address":"aws_db_instance.db","mode":"managed","type":"aws_db_instance","name":"db",
            "expressions":{"password":{"constant_value":"Tq7-lantern-83!"}}}]}}}}}"#;
        let v = evaluate(&Input::from_json(doc).unwrap());
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            v[0].message
                .contains("`password` (****) is written in the configuration"),
            "{}",
            v[0].message
        );
        assert!(!format!("{v:?}").contains("lantern"));
    }

    #[test]
    fn env_pairs_secret_refs_and_sensitive_values() {
        let doc = r#"{"schema_version":1,"environment":{"name":"staging","project":"shop"},
          "helm":[{"release":"api","chart":"api","namespace":"shop","values":{"db":{"password":"Hunter2-prod!"},"apiKey":"{{ .Values.x }}"},
            "manifests":[{"api_version":"apps/v1","kind":"Deployment","name":"api","object":{"spec":{"template":{"spec":{"containers":[{"name":"api","env":[
              {"name":"DB_PASSWORD","valueFrom":{"secretKeyRef":{"name":"db","key":"pw"}}},
              {"name":"API_TOKEN","value":"tok_Xq7PzL2mWk9RvB4nTy8c"},
              {"name":"OPENAI_API_KEY","value":"$(API_KEY)"}]}]}}}}},
              {"api_version":"v1","kind":"Secret","name":"db","object":{"data":{"pw":"aHVudGVyMg==","empty":""}}}]}]}"#;
        let v = evaluate(&Input::from_json(doc).unwrap());
        let text = format!("{v:?}");
        assert_eq!(v.len(), 3, "{text}");
        assert!(
            text.contains("`password`")
                && text.contains("`API_TOKEN`")
                && text.contains("literal data for `pw`"),
            "{text}"
        );
        for secret in ["Hunter2-prod!", "tok_Xq7PzL2mWk9RvB4nTy8c", "aHVudGVyMg=="] {
            assert!(!text.contains(secret), "{secret} leaked");
        }
    }
}
