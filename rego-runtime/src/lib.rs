//! The Rego runtime: the regorus interpreter as an ABI v1 policy module, so Rego
//! policies run in the same sandbox, under the same limits, as every other policy.
//!
//! The host hands it `PROGRAM\nINPUT_DOCUMENT`: the Rego sources with what to
//! evaluate (one line of JSON), a newline, and the usual input document. Conftest's
//! conventions apply: the rules `deny`, `violation` and `warn` (and `deny_*`,
//! `violation_*`, `warn_*`) of the queried package yield strings or objects
//! with `msg`; each yielded item is one violation.

mod lexical;

use policy_sdk::{Output, Severity, Violation};
use regorus::{Engine, Value};
use serde::Deserialize;

/// What to evaluate, as the host sends it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Program {
    pub modules: Vec<ModuleText>,
    /// The package whose rules are read, e.g. `data.main`.
    pub query: String,
    /// Where in the input document Rego's `input` comes from (see [`select`]);
    /// the whole document when absent.
    #[serde(default)]
    pub input: Option<String>,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub rego_version: RegoVersion,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleText {
    /// Shown in errors; project-relative.
    pub path: String,
    pub text: String,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Conftest's deny / violation / warn rules.
    #[default]
    Deny,
    /// The `test_*` rules of `*_test.rego` modules, as `conftest verify` runs them.
    Test,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegoVersion {
    /// Each module as Rego v1, else as v0 (what conftest policies in the wild mix).
    #[default]
    Auto,
    V0,
    V1,
}

/// Rule ids of what the runtime reports about the Rego itself.
pub const PARSE_ERROR: &str = "rego-parse-error";
pub const EVAL_ERROR: &str = "rego-eval-error";
pub const BAD_RESULT: &str = "rego-bad-result";
pub const TEST_PASSED: &str = "rego-test-passed";
pub const TEST_FAILED: &str = "rego-test-failed";

/// The result for one wrapped input: violations, or why the input itself was unusable.
/// The program comes first, on one line, so the (large) document is scanned
/// only once, by the parse that builds Rego's values.
pub fn evaluate_wrapped(bytes: &[u8]) -> Result<Output, String> {
    let newline = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("the Rego runtime's input has no program line")?;
    let program: Program = serde_json::from_slice(&bytes[..newline])
        .map_err(|e| format!("the Rego runtime's program is not valid: {e}"))?;
    let document = std::str::from_utf8(&bytes[newline + 1..])
        .map_err(|e| format!("the input document is not UTF-8: {e}"))?;
    let document = Value::from_json_str(document)
        .map_err(|e| format!("the input document is not JSON: {e}"))?;
    Ok(Output {
        violations: evaluate(&program, &document),
    })
}

/// Evaluates a program on a parsed input document. Errors in the Rego are
/// denials naming file and line, never a failure of the module.
pub fn evaluate(program: &Program, document: &Value) -> Vec<Violation> {
    let mut engine = Engine::new();
    let mut packages = Vec::new();
    let mut violations = Vec::new();
    let wanted = |m: &&ModuleText| (program.mode == Mode::Test) == is_test_module(&m.path);
    for module in program.modules.iter().filter(wanted) {
        match add_module(&mut engine, module, program.rego_version) {
            Ok(package) => packages.push((package, module)),
            Err(e) => violations.push(error_violation(PARSE_ERROR, &module.path, &e)),
        }
    }
    // Non-test modules are libraries for the tests (`import data.lib`).
    if program.mode == Mode::Test {
        for module in program.modules.iter().filter(|m| !is_test_module(&m.path)) {
            if let Err(e) = add_module(&mut engine, module, program.rego_version) {
                violations.push(error_violation(PARSE_ERROR, &module.path, &e));
            }
        }
    }
    if !violations.is_empty() {
        return violations;
    }
    let data = object([(
        "opsdeploy",
        object([
            ("environment", document["environment"].clone()),
            ("settings", document["settings"].clone()),
        ]),
    )]);
    if let Err(e) = engine.add_data(data) {
        return vec![error_violation(EVAL_ERROR, "", &e)];
    }
    match program.mode {
        Mode::Deny => {
            let rules = conftest_rules(&packages, &program.query);
            for (input, address) in select(document, program.input.as_deref()) {
                engine.set_input(input);
                for rule in &rules {
                    match evaluate_rule(&mut engine, &format!("{}.{rule}", program.query)) {
                        Ok(value) => violations.extend(
                            results(rule, &value)
                                .into_iter()
                                .map(|v| at_document(v, address.as_deref())),
                        ),
                        Err(e) => violations.push(error_violation(EVAL_ERROR, "", &e)),
                    }
                }
            }
        }
        Mode::Test => {
            engine.set_input(Value::new_object());
            for (package, module) in &packages {
                for name in lexical::identifiers(&module.text) {
                    if !name.starts_with("test_") {
                        continue;
                    }
                    let path = format!("{package}.{name}");
                    let verdict = match evaluate_rule(&mut engine, &path) {
                        Ok(None) => continue,
                        Ok(Some(v)) if v == Value::from(true) => Ok(()),
                        Ok(Some(v)) => Err(format!("{path} is {}", describe(&v))),
                        Err(e) => Err(error_message(&e)),
                    };
                    violations.push(
                        match verdict {
                            Ok(()) => Violation::info(TEST_PASSED, format!("{path} passed")),
                            Err(why) => {
                                Violation::deny(TEST_FAILED, format!("{path} failed: {why}"))
                            }
                        }
                        .at_address(path)
                        .at_path(module.path.clone()),
                    );
                }
            }
        }
    }
    violations
}

fn is_test_module(path: &str) -> bool {
    path.ends_with("_test.rego")
}

/// Adds one module and returns its package (`data.main`).
fn add_module(
    engine: &mut Engine,
    module: &ModuleText,
    version: RegoVersion,
) -> anyhow::Result<String> {
    let mut add = |v0: bool| {
        engine.set_rego_v0(v0);
        engine.add_policy(module.path.clone(), module.text.clone())
    };
    match version {
        RegoVersion::V0 => add(true),
        RegoVersion::V1 => add(false),
        RegoVersion::Auto => match add(false) {
            Ok(package) => Ok(package),
            Err(v1) => match add(true) {
                Ok(package) => Ok(package),
                // The reading that got further is the one the author meant.
                Err(v0) if location(&v0).map(|l| l.1) > location(&v1).map(|l| l.1) => Err(v0),
                Err(_) => Err(v1),
            },
        },
    }
}

/// The conftest rules declared in the queried package, in source order.
fn conftest_rules(packages: &[(String, &ModuleText)], query: &str) -> Vec<String> {
    let mut rules: Vec<String> = Vec::new();
    for (_, module) in packages.iter().filter(|(p, _)| p == query) {
        for name in lexical::identifiers(&module.text) {
            if severity_of(name).is_some() && !rules.iter().any(|r| r == name) {
                rules.push(name.to_string());
            }
        }
    }
    rules
}

fn severity_of(rule: &str) -> Option<Severity> {
    let kind = rule.split_once('_').map_or(rule, |(head, _)| head);
    match kind {
        "deny" | "violation" => Some(Severity::Deny),
        "warn" => Some(Severity::Warn),
        _ => None,
    }
}

/// The rule's value; `None` when no such rule exists (a name that is only a variable).
fn evaluate_rule(engine: &mut Engine, path: &str) -> anyhow::Result<Option<Value>> {
    match engine.eval_rule(path.to_string()) {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.to_string() == "not a valid rule path" => Ok(None),
        Err(e) => Err(e),
    }
}

/// The violations one conftest rule's value stands for.
fn results(rule: &str, value: &Option<Value>) -> Vec<Violation> {
    let Some(severity) = severity_of(rule) else {
        return Vec::new();
    };
    let items: Vec<&Value> = match value {
        None | Some(Value::Undefined) => Vec::new(),
        Some(Value::Set(s)) => s.iter().collect(),
        Some(Value::Array(a)) => a.iter().collect(),
        Some(other) => vec![other],
    };
    items
        .into_iter()
        .filter_map(|item| result(rule, severity, item))
        .collect()
}

fn result(rule: &str, severity: Severity, item: &Value) -> Option<Violation> {
    let v = match item {
        Value::String(msg) => Violation::new(rule, severity, msg.to_string()),
        Value::Bool(false) => return None,
        // A boolean rule (`deny { ... }`) says only that it failed.
        Value::Bool(true) => Violation::new(rule, severity, format!("{rule} is true")),
        Value::Object(fields) => {
            let text = |key: &str| match fields.get(&Value::from(key)) {
                Some(Value::String(s)) => Some(s.to_string()),
                _ => None,
            };
            let Some(msg) = text("msg") else {
                return Some(Violation::deny(
                    BAD_RESULT,
                    format!(
                        "rule {rule} yielded an object without a string `msg`: {}",
                        describe(item)
                    ),
                ));
            };
            let mut v = Violation::new(
                text("rule").unwrap_or_else(|| rule.to_string()),
                severity,
                msg,
            );
            v.address = text("address").or_else(|| text("resource"));
            v.path = text("path");
            v.line = fields
                .get(&Value::from("line"))
                .and_then(|l| l.as_u32().ok());
            v
        }
        other => Violation::deny(
            BAD_RESULT,
            format!(
                "rule {rule} yielded {}, not a string or an object with `msg`",
                describe(other)
            ),
        ),
    };
    Some(v)
}

/// A violation about a whole document names the document, when there are several.
fn at_document(mut v: Violation, address: Option<&str>) -> Violation {
    if v.address.is_none() {
        v.address = address.map(str::to_string);
    }
    v
}

fn describe(v: &Value) -> String {
    match v {
        Value::Undefined => "undefined".into(),
        v => v.to_json_str().unwrap_or_else(|_| format!("{v:?}")),
    }
}

fn object<const N: usize>(fields: [(&str, Value); N]) -> Value {
    let map = fields
        .into_iter()
        .map(|(k, v)| (Value::from(k), v))
        .collect::<std::collections::BTreeMap<_, _>>();
    Value::from(map)
}

/// The documents Rego's `input` takes, one evaluation each, with the address
/// of each when there are several. `selector` is a dotted path into the input
/// document where `name[]` visits each element of an array; `kubernetes` is
/// every rendered manifest of every helm release.
pub fn select(document: &Value, selector: Option<&str>) -> Vec<(Value, Option<String>)> {
    let selector = match selector {
        Some("kubernetes") => "helm[].manifests[].object",
        Some(s) => s,
        None => "",
    };
    let mut current = vec![document.clone()];
    let mut each = false;
    for part in selector.split('.').filter(|p| !p.is_empty()) {
        let (key, many) = match part.strip_suffix("[]") {
            Some(key) => (key, true),
            None => (part, false),
        };
        each |= many;
        current = current
            .iter()
            .flat_map(|v| {
                let child = v[key].clone();
                match (many, child) {
                    (true, Value::Array(a)) => a.iter().cloned().collect::<Vec<_>>(),
                    (true, _) | (false, Value::Undefined) => Vec::new(),
                    (false, child) => vec![child],
                }
            })
            .collect();
    }
    current
        .into_iter()
        .map(|v| {
            let address = each.then(|| kubernetes_name(&v)).flatten();
            (v, address)
        })
        .collect()
}

/// `Kind/name`, as kubectl names an object.
fn kubernetes_name(v: &Value) -> Option<String> {
    match (&v["kind"], &v["metadata"]["name"]) {
        (Value::String(kind), Value::String(name)) => Some(format!("{kind}/{name}")),
        _ => None,
    }
}

/// `(file, line)` from a regorus error (`--> file:line:col`).
fn location(e: &anyhow::Error) -> Option<(String, u32)> {
    let text = format!("{e:#}");
    let at = text.split("--> ").nth(1)?.lines().next()?;
    let mut parts = at.rsplitn(3, ':');
    let _col = parts.next()?;
    let line = parts.next()?.parse().ok()?;
    Some((parts.next()?.to_string(), line))
}

/// The error's own words, without regorus's source excerpt.
fn error_message(e: &anyhow::Error) -> String {
    let text = format!("{e:#}");
    let what = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("error: "))
        .unwrap_or_else(|| text.trim());
    match location(e) {
        Some((file, line)) => format!("{file}:{line}: {what}"),
        None => what.to_string(),
    }
}

fn error_violation(rule: &str, fallback_path: &str, e: &anyhow::Error) -> Violation {
    let mut v = Violation::deny(rule, error_message(e));
    match location(e) {
        Some((file, line)) => {
            v.path = Some(file);
            v.line = Some(line);
        }
        None if !fallback_path.is_empty() => v.path = Some(fallback_path.to_string()),
        None => {}
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program(modules: &[(&str, &str)], input: Option<&str>) -> Program {
        Program {
            modules: modules
                .iter()
                .map(|(path, text)| ModuleText {
                    path: path.to_string(),
                    text: text.to_string(),
                })
                .collect(),
            query: "data.main".into(),
            input: input.map(str::to_string),
            mode: Mode::Deny,
            rego_version: RegoVersion::Auto,
        }
    }

    fn run(modules: &[(&str, &str)], input: Option<&str>, doc: &str) -> Vec<Violation> {
        evaluate(
            &program(modules, input),
            &Value::from_json_str(doc).unwrap(),
        )
    }

    const DOC: &str =
        r#"{"environment":{"name":"prod"},"settings":{"min":2},"terraform":{"plan":{"n":1}}}"#;

    #[test]
    fn strings_objects_and_booleans_are_conftest_results() {
        let v = run(
            &[(
                "p.rego",
                r#"package main
import rego.v1
deny contains "plain" if input.n == 1
violation contains {"msg": "object", "rule": "custom", "address": "a.b", "line": 3, "extra": true} if true
warn_low contains {"msg": sprintf("below %d", [data.opsdeploy.settings.min])} if input.n < data.opsdeploy.settings.min
deny_flag if true
helper contains "not a conftest rule" if true
"#,
            )],
            Some("terraform.plan"),
            DOC,
        );
        type Row = (String, Severity, String, Option<String>, Option<u32>);
        let got: Vec<Row> = v
            .into_iter()
            .map(|v| (v.rule, v.severity, v.message, v.address, v.line))
            .collect();
        assert_eq!(
            got,
            vec![
                ("deny".into(), Severity::Deny, "plain".into(), None, None),
                (
                    "custom".into(),
                    Severity::Deny,
                    "object".into(),
                    Some("a.b".into()),
                    Some(3)
                ),
                (
                    "warn_low".into(),
                    Severity::Warn,
                    "below 2".into(),
                    None,
                    None
                ),
                (
                    "deny_flag".into(),
                    Severity::Deny,
                    "deny_flag is true".into(),
                    None,
                    None
                ),
            ]
        );
    }

    #[test]
    fn v0_and_v1_files_mix_and_errors_name_file_and_line() {
        let v0 = ("old.rego", "package main\ndeny[msg] { msg := `v0` }\n");
        let v1 = (
            "new.rego",
            "package main\nimport rego.v1\ndeny contains `v1` if true\n",
        );
        let v = run(&[v0, v1], None, DOC);
        let mut messages: Vec<&str> = v.iter().map(|v| v.message.as_str()).collect();
        messages.sort();
        assert_eq!(messages, ["v0", "v1"]);
        let broken = (
            "bad.rego",
            "package main\nimport rego.v1\n\ndeny contains x if {\n  x := [1,\n}\n",
        );
        let v = run(&[broken], None, DOC);
        assert_eq!(v[0].rule, PARSE_ERROR);
        assert_eq!(v[0].path.as_deref(), Some("bad.rego"));
        assert!(v[0].line.is_some_and(|l| l >= 5), "{v:?}");
        assert!(v[0].message.starts_with("bad.rego:"), "{v:?}");
    }

    #[test]
    fn an_object_without_msg_is_a_bad_result() {
        let typo = "package main\nimport rego.v1\ndeny contains {`message`: `typo`} if true\n";
        let v = run(&[("p.rego", typo)], None, DOC);
        assert_eq!(v[0].rule, BAD_RESULT, "{v:?}");
    }

    #[test]
    fn each_element_selector_evaluates_per_document_and_names_it() {
        let doc = r#"{"helm":[{"manifests":[{"object":{"kind":"Pod","metadata":{"name":"a"}}},{"object":{"kind":"Pod","metadata":{"name":"b"}}}]}]}"#;
        let v = run(
            &[(
                "p.rego",
                "package main\nimport rego.v1\ndeny contains `pod` if input.kind == `Pod`\n",
            )],
            Some("kubernetes"),
            doc,
        );
        let addresses: Vec<&str> = v.iter().filter_map(|v| v.address.as_deref()).collect();
        assert_eq!(addresses, ["Pod/a", "Pod/b"]);
    }
}

#[cfg(target_arch = "wasm32")]
mod exports {
    /// No `reads`: the host decides which sections a Rego policy gets from its
    /// `input` setting.
    #[unsafe(link_section = "opsdeploy.metadata")]
    #[used]
    static METADATA: [u8; METADATA_JSON.len()] =
        policy_sdk::__private::to_array::<{ METADATA_JSON.len() }>(METADATA_JSON);
    const METADATA_JSON: &str = concat!(
        "{\"abi_version\":1,\"name\":\"rego\",\"version\":\"",
        env!("CARGO_PKG_VERSION"),
        "\",\"description\":\"Rego policies evaluated by regorus\"}"
    );

    #[link(wasm_import_module = "opsdeploy")]
    unsafe extern "C" {
        fn set_output(ptr: i32, len: i32);
        fn fail(ptr: i32, len: i32);
    }

    fn report_failure(message: &str) {
        // SAFETY: the host copies `len` bytes from `ptr` within this module's memory.
        unsafe { fail(message.as_ptr() as i32, message.len() as i32) }
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn opsdeploy_abi_version() -> i32 {
        policy_sdk::ABI_VERSION as i32
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn opsdeploy_alloc(len: i32) -> i32 {
        policy_sdk::__private::alloc(len)
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn opsdeploy_evaluate(ptr: i32, len: i32) -> i32 {
        std::panic::set_hook(Box::new(|info| report_failure(&info.to_string())));
        // SAFETY: the host wrote `len` bytes at `ptr`, a buffer it got from `opsdeploy_alloc`.
        let bytes = unsafe { std::slice::from_raw_parts(ptr as *const u8, len.max(0) as usize) };
        let json = match super::evaluate_wrapped(bytes).and_then(|out| {
            serde_json::to_vec(&out).map_err(|e| format!("could not encode the result: {e}"))
        }) {
            Ok(json) => json,
            Err(e) => {
                report_failure(&e);
                return 1;
            }
        };
        // SAFETY: as in `report_failure`.
        unsafe { set_output(json.as_ptr() as i32, json.len() as i32) };
        0
    }
}
