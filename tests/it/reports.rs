//! Reports of a real plan bundle — real terraform, trivy reports trivy wrote
//! (replayed by tests/fake-bin/trivy), a careless policy that echoes a secret —
//! in every format: SARIF validated against the official 2.1.0 schema, JUnit
//! parsed back, Markdown under its limit, HTML self-contained, and no planted
//! secret value anywhere.

use predicates::prelude::*;

use crate::support::{corpus, repo};
use crate::workflow::{MAIN_TF, TestProject};

/// The value of a `sensitive = true` terraform variable; the careless policy
/// puts it in a violation message.
pub const PLANTED_TF: &str = "PLANTED-tf-var-7Qx9kLm2";
/// Secrets trivy quotes around a finding (`Code`) and in `Match`.
pub const PLANTED_CODE: &str = "PLANTED-trivy-code-Zk3vR8";
pub const PLANTED_MATCH: &str = "PLANTED-trivy-match-Zk3vR8";

const USER: &str = "alice@example.com";

pub const FORMATS: [&str; 6] = ["human", "json", "sarif", "junit", "markdown", "html"];

/// The project: a hard- and a soft-mandatory policy, two images and the
/// terraform directory scanned. The fake trivy is named in `tools`, so tests
/// that use the real trivy on PATH are not affected.
fn config() -> String {
    let trivy = repo().join("tests/fake-bin/trivy");
    format!(
        r#"
project = "shop"

tools {{
  trivy = "{}"
}}

policy "protected-deletes" {{
  builtin     = true
  enforcement = "hard-mandatory"
}}

policy "careless" {{
  source      = "policies/careless.wasm"
  enforcement = "soft-mandatory"
}}

{off}
environment "staging" {{
  terraform {{ dir = "infra" }}
  scan {{
    images  = ["registry.example.com/shop/web:1.4.2", "alpine:3.10"]
    paths   = ["infra"]
    fail_on = "HIGH"
  }}
  approval {{ self_approve = true }}
}}
"#,
        trivy.display(),
        // The fixture is these two policies; each built-in is tested on its own.
        off = [
            "gates",
            "expand-contract",
            "image-scan",
            "no-secrets",
            "promotion"
        ]
        .map(|p| format!(
            "policy \"{p}\" {{\n  enabled = false\n  reason  = \"tested on its own\"\n}}\n"
        ))
        .concat(),
    )
}

/// A policy written carelessly: it quotes a sensitive value in a message. It
/// also reports a file finding and markup that every format must escape.
fn careless_policy() -> Vec<u8> {
    let out = serde_json::json!({"violations": [
        {"rule": "echoes-secret", "severity": "deny",
         "message": format!("credentials carry password {PLANTED_TF}; this policy should never print it"),
         "address": "terraform_data.credentials"},
        {"rule": "few-replicas", "severity": "warn",
         "message": "web runs only 2 replicas", "path": "infra/main.tf", "line": 14},
        {"rule": "markup", "severity": "info",
         "message": "checked <all> resources & \"quoted\" 'names' | pipes"},
    ]})
    .to_string();
    let escaped = out.replace('\\', "\\\\").replace('"', "\\\"");
    let wat = format!(
        r#"(module
  (import "opsdeploy" "set_output" (func $set_output (param i32 i32)))
  (memory (export "memory") 32)
  (data (i32.const 16) "{escaped}")
  (func (export "opsdeploy_abi_version") (result i32) i32.const 1)
  (func (export "opsdeploy_alloc") (param i32) (result i32) i32.const 65536)
  (func (export "opsdeploy_evaluate") (param i32 i32) (result i32)
    (call $set_output (i32.const 16) (i32.const {len})) (i32.const 0)))"#,
        len = out.len()
    );
    wat::parse_str(wat).expect("valid WAT")
}

/// trivy-action's real secret scan, with planted values where trivy quotes
/// the file (`Code`) and the match, plus a failed misconfiguration check.
fn fs_report() -> serde_json::Value {
    let text = std::fs::read_to_string(corpus("trivy-action/test/data/secret-scan/report.json"))
        .expect("corpus report");
    let mut r: serde_json::Value = serde_json::from_str(&text).unwrap();
    let secret = &mut r["Results"][0]["Secrets"][0];
    secret["Code"]["Lines"][0]["Content"] = format!("export AWS_SECRET={PLANTED_CODE}").into();
    secret["Match"] = format!("export GITHUB_PAT={PLANTED_MATCH}").into();
    r["Results"][0]["Target"] = "main.tf".into();
    r["Results"].as_array_mut().unwrap().push(serde_json::json!({
        "Target": "main.tf", "Class": "config", "Type": "terraform",
        "Misconfigurations": [{
            "ID": "AVD-DS-0001", "AVDID": "AVD-DS-0001", "Type": "Terraform Security Check",
            "Title": "Resource has no owner tag", "Message": "terraform_data.web has no owner tag",
            "Resolution": "Add an owner tag", "Severity": "MEDIUM", "Status": "FAIL",
            "CauseMetadata": {"Resource": "terraform_data.web", "StartLine": 14, "EndLine": 16}
        }, {
            "ID": "AVD-DS-0002", "Title": "Passing check", "Severity": "HIGH", "Status": "PASS"
        }]
    }));
    r
}

/// A planned, overridden and approved bundle with scans and policy findings.
pub struct ReportProject {
    pub p: TestProject,
    reports: tempfile::TempDir,
    pub digest: String,
}

impl ReportProject {
    pub fn new() -> Self {
        let p = TestProject::new(&config());
        let tf = format!(
            "{MAIN_TF}
variable \"db_password\" {{
  type      = string
  sensitive = true
  default   = \"{PLANTED_TF}\"
}}
resource \"terraform_data\" \"credentials\" {{
  input = {{ password = var.db_password }}
}}
"
        );
        std::fs::write(p.file("infra/main.tf"), tf).unwrap();
        std::fs::create_dir_all(p.file("policies")).unwrap();
        std::fs::write(p.file("policies/careless.wasm"), careless_policy()).unwrap();

        let reports = tempfile::tempdir().unwrap();
        for (dir, name, source) in [
            (
                "image",
                "registry.example.com_shop_web_1.4.2",
                "trivy/integration/testdata/alpine-39.json.golden",
            ),
            (
                "image",
                "alpine_3.10",
                "trivy/integration/testdata/debian-buster.json.golden",
            ),
        ] {
            std::fs::create_dir_all(reports.path().join(dir)).unwrap();
            std::fs::copy(
                corpus(source),
                reports.path().join(dir).join(format!("{name}.json")),
            )
            .unwrap();
        }
        std::fs::create_dir_all(reports.path().join("fs")).unwrap();
        std::fs::write(
            reports.path().join("fs/infra.json"),
            serde_json::to_vec_pretty(&fs_report()).unwrap(),
        )
        .unwrap();

        let mut project = ReportProject {
            p,
            reports,
            digest: String::new(),
        };
        // The careless policy denies and is soft-mandatory: the plan is blocked.
        let out = project
            .run(&["plan", "staging", "-q"])
            .code(3)
            .get_output()
            .stdout
            .clone();
        let out = String::from_utf8(out).unwrap();
        let short = out
            .split_whitespace()
            .nth(1)
            .expect("blocked DIGEST")
            .to_string();
        project.digest = std::fs::read_dir(project.p.file(".opsdeploy/bundles"))
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .find(|n| n.starts_with(&short))
            .expect("the bundle directory");
        project
            .run(&[
                "approve",
                "staging",
                "--plan",
                &short,
                "--override",
                "careless",
                "--reason",
                "accepted: the echo is a test fixture",
            ])
            .success();
        project
            .run(&[
                "approve",
                "staging",
                "--plan",
                &short,
                "--comment",
                "reviewed <scan> & plan",
            ])
            .success();
        project
    }

    fn trivy_env(&self) -> (&'static str, String) {
        (
            "FAKE_TRIVY_REPORTS",
            self.reports.path().display().to_string(),
        )
    }

    pub fn run(&self, args: &[&str]) -> assert_cmd::assert::Assert {
        let (k, v) = self.trivy_env();
        self.p.run_with(USER, args, &[(k, &v)])
    }

    /// `opsdeploy report DIGEST --format FORMAT`, stdout.
    pub fn report(&self, format: &str) -> String {
        let out = self
            .run(&["report", &self.digest[..12], "--format", format])
            .success()
            .get_output()
            .stdout
            .clone();
        String::from_utf8(out).expect("reports are UTF-8")
    }
}

pub fn sarif_validator() -> jsonschema::Validator {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("tests/data/sarif-schema-2.1.0.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        schema["id"],
        "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
    );
    jsonschema::validator_for(&schema).expect("the SARIF schema compiles")
}

pub fn schema_errors(v: &jsonschema::Validator, doc: &serde_json::Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[test]
fn every_format_of_a_real_bundle_is_well_formed_and_never_shows_a_secret() {
    let rp = ReportProject::new();
    for format in FORMATS {
        let out = rp.report(format);
        for planted in [PLANTED_TF, PLANTED_CODE, PLANTED_MATCH] {
            assert!(!out.contains(planted), "{format} report shows {planted}");
        }
        assert!(!out.is_empty(), "{format} report is empty");
    }
    // The plan's own output in every report format, too.
    for format in FORMATS {
        let out = rp.run(&["plan", "staging", "--format", format]).code(3);
        let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
        for planted in [PLANTED_TF, PLANTED_CODE, PLANTED_MATCH] {
            assert!(
                !stdout.contains(planted),
                "plan --format {format} shows {planted}"
            );
        }
    }
    // `policy eval` of the careless policy on the bundle's terraform plan.
    let plan =
        rp.p.file(&format!(".opsdeploy/bundles/{}/plan.json", rp.digest));
    let wasm = rp.p.file("policies/careless.wasm");
    for format in FORMATS {
        let out = rp
            .run(&[
                "policy",
                "eval",
                wasm.to_str().unwrap(),
                "--terraform-plan",
                plan.to_str().unwrap(),
                "--format",
                format,
            ])
            .code(3);
        let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
        assert!(stdout.contains("****(23 chars)"), "{format}: {stdout}");
        assert!(
            !stdout.contains(PLANTED_TF),
            "policy eval --format {format} shows it"
        );
    }
    // Nor does the audit log, or its rendering for people.
    for log in [".opsdeploy/audit.jsonl", "AUDIT_LOG.md"] {
        let text = rp.p.read(log);
        assert!(!text.is_empty(), "{log} is written");
        for planted in [PLANTED_TF, PLANTED_CODE, PLANTED_MATCH] {
            assert!(!text.contains(planted), "{log} holds {planted}");
        }
    }
    // Nor do the stored results: the careless policy's message is scrubbed
    // before results.json is written (the saved plan itself must keep the
    // value terraform needs).
    let results =
        rp.p.read(&format!(".opsdeploy/bundles/{}/results.json", rp.digest));
    assert!(results.contains("****(23 chars)"), "{results}");
    assert!(!results.contains(PLANTED_TF), "results.json holds it");
    // The bundle still holds what trivy wrote: the secrets were there to leak.
    let raw = std::fs::read_to_string(
        rp.p.file(&format!(".opsdeploy/bundles/{}/scans/fs-0.json", rp.digest)),
    )
    .unwrap();
    assert!(raw.contains(PLANTED_CODE) && raw.contains(PLANTED_MATCH));
}

#[test]
fn sarif_validates_against_the_official_schema_with_a_run_per_tool() {
    let rp = ReportProject::new();
    let sarif: serde_json::Value = serde_json::from_str(&rp.report("sarif")).unwrap();
    let validator = sarif_validator();
    let errors = schema_errors(&validator, &sarif);
    assert!(errors.is_empty(), "{errors:#?}");

    let runs = sarif["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["tool"]["driver"]["name"], "opsdeploy");
    assert_eq!(runs[1]["tool"]["driver"]["name"], "trivy");
    for run in runs {
        let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
        for rule in rules {
            assert!(
                rule["shortDescription"]["text"]
                    .as_str()
                    .is_some_and(|t| !t.is_empty())
            );
            assert!(rule["help"]["text"].as_str().is_some_and(|t| !t.is_empty()));
        }
        for result in run["results"].as_array().unwrap() {
            let loc = &result["locations"][0]["physicalLocation"];
            assert!(
                loc["artifactLocation"]["uri"]
                    .as_str()
                    .is_some_and(|u| !u.is_empty())
            );
            assert!(loc["region"]["startLine"].as_u64().unwrap() >= 1);
            let i = result["ruleIndex"].as_u64().unwrap() as usize;
            assert_eq!(rules[i]["id"], result["ruleId"]);
        }
    }
    let results = runs[0]["results"].as_array().unwrap();
    let echo = results
        .iter()
        .find(|r| r["ruleId"] == "careless/echoes-secret")
        .unwrap();
    assert_eq!(echo["level"], "error");
    // Address-only finding: placed where the resource is declared.
    assert_eq!(
        echo["locations"][0]["logicalLocations"][0]["fullyQualifiedName"],
        "terraform_data.credentials"
    );
    assert_eq!(
        echo["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "infra/main.tf"
    );
    let tf = std::fs::read_to_string(rp.p.file("infra/main.tf")).unwrap();
    let declared = tf
        .lines()
        .position(|l| l.starts_with("resource \"terraform_data\" \"credentials\""))
        .unwrap() as u64
        + 1;
    assert_eq!(
        echo["locations"][0]["physicalLocation"]["region"]["startLine"],
        declared
    );
    let replicas = results
        .iter()
        .find(|r| r["ruleId"] == "careless/few-replicas")
        .unwrap();
    assert_eq!(replicas["level"], "warning");
    assert_eq!(
        replicas["locations"][0]["physicalLocation"]["region"]["startLine"],
        14
    );

    let trivy = runs[1]["results"].as_array().unwrap();
    let level_of = |id: &str| {
        trivy
            .iter()
            .find(|r| r["ruleId"] == id)
            .unwrap_or_else(|| panic!("no result {id}"))["level"]
            .clone()
    };
    // alpine-39: CVE-2019-1549 is MEDIUM, CVE-2019-14697 CRITICAL.
    assert_eq!(level_of("CVE-2019-14697"), "error");
    assert_eq!(level_of("CVE-2019-1549"), "warning");
    assert_eq!(level_of("secret/github-pat"), "error");
    let secret = trivy
        .iter()
        .find(|r| r["ruleId"] == "secret/github-pat")
        .unwrap();
    assert_eq!(
        secret["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "infra/main.tf"
    );
    assert_eq!(
        secret["locations"][0]["physicalLocation"]["region"]["startLine"],
        5
    );
    // Passed checks are not results.
    assert!(trivy.iter().all(|r| r["ruleId"] != "AVD-DS-0002"));
}

#[test]
fn the_schema_test_catches_invalid_sarif() {
    let rp = ReportProject::new();
    let mut sarif: serde_json::Value = serde_json::from_str(&rp.report("sarif")).unwrap();
    sarif["runs"][0]["results"][0]
        .as_object_mut()
        .unwrap()
        .remove("message");
    sarif["runs"][1]["results"][0]["level"] = "critical".into();
    let errors = schema_errors(&sarif_validator(), &sarif);
    assert!(errors.len() >= 2, "{errors:#?}");
}

/// A test case read back: classname, name, failure message.
pub type JunitCase = (String, String, Option<String>);

/// Test suites (name, cases) parsed back from JUnit XML.
pub fn parse_junit(xml: &str) -> Vec<(String, Vec<JunitCase>)> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut suites: Vec<(String, Vec<JunitCase>)> = Vec::new();
    let attr = |e: &quick_xml::events::BytesStart, name: &str| -> String {
        e.attributes()
            .map(|a| a.expect("well-formed attribute"))
            .find(|a| a.key.as_ref() == name)
            .map(|a| {
                a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .expect("escaped value")
                    .into_owned()
            })
            .unwrap_or_default()
    };
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) | Event::Empty(e) => match e.name().as_ref() {
                "testsuite" => suites.push((attr(&e, "name"), Vec::new())),
                "testcase" => suites
                    .last_mut()
                    .expect("a testcase inside a testsuite")
                    .1
                    .push((attr(&e, "classname"), attr(&e, "name"), None)),
                "failure" => {
                    let case = suites.last_mut().unwrap().1.last_mut().unwrap();
                    case.2 = Some(attr(&e, "message"));
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    suites
}

#[test]
fn junit_has_a_suite_per_policy_and_a_case_per_resource_and_parses_back() {
    let rp = ReportProject::new();
    let xml = rp.report("junit");
    let suites = parse_junit(&xml);
    let names: Vec<&str> = suites.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "policy protected-deletes (hard-mandatory)",
            "policy careless (soft-mandatory)",
            "trivy registry.example.com/shop/web:1.4.2",
            "trivy alpine:3.10",
            "trivy infra",
        ]
    );
    let careless = &suites[1].1;
    let case_names: Vec<&str> = careless.iter().map(|c| c.1.as_str()).collect();
    assert_eq!(
        case_names,
        ["(plan)", "infra/main.tf", "terraform_data.credentials"]
    );
    // Overridden: reported, not failed.
    assert!(careless.iter().all(|c| c.2.is_none()), "{careless:?}");
    assert_eq!(suites[0].1[0].1, "all resources");
    // fail_on = HIGH: the critical package fails, a medium-only one does not.
    let web = &suites[2].1;
    assert!(
        web.iter()
            .any(|c| c.2.as_deref().is_some_and(|m| m.starts_with("CRITICAL")))
    );
    assert!(web.iter().any(|c| c.2.is_none()));
    // Markup in messages survives the round trip.
    assert!(
        xml.contains("&lt;all&gt; resources &amp; &quot;quoted&quot;"),
        "{xml}"
    );
    let totals: usize = suites.iter().map(|s| s.1.len()).sum();
    assert!(xml.contains(&format!("tests=\"{totals}\"")));
}

#[test]
fn markdown_is_a_compact_table_with_details_folded() {
    let rp = ReportProject::new();
    let md = rp.report("markdown");
    assert!(md.len() < 65_000);
    assert!(
        md.contains("| policy | enforcement | result | findings |"),
        "{md}"
    );
    assert!(
        md.contains("| careless | soft-mandatory | ↩️ overridden | 3 |"),
        "{md}"
    );
    assert!(
        md.contains("<details><summary>`alpine:3.10` — 2 findings</summary>"),
        "{md}"
    );
    assert!(
        md.contains("\\| pipes"),
        "a pipe in a message must not break the table: {md}"
    );
    assert!(md.contains("Approvals: alice@example.com."), "{md}");
}

#[test]
fn html_is_one_self_contained_file_with_counts_chart_and_redacted_secrets() {
    let rp = ReportProject::new();
    let html = rp.report("html");
    if let Some(out) = std::env::var_os("OPSDEPLOY_REPORT_HTML") {
        // bench/html-screenshot.sh renders this very report.
        std::fs::write(out, &html).unwrap();
    }
    for external in ["<script", "<link", "src=", "url(", "@import"] {
        assert!(!html.contains(external), "HTML loads something: {external}");
    }
    assert!(html.contains(&rp.digest), "the full bundle digest");
    assert!(html.contains("<svg"), "the severity chart");
    assert!(
        html.contains("reviewed &lt;scan&gt; &amp; plan"),
        "approval comment, escaped"
    );
    assert!(html.contains("GitHub Personal Access Token"));
    assert!(html.contains("class=\"redacted\">redacted<"));
    // alpine-39: 2 critical, 4 medium.
    assert!(
        html.contains("<td class=\"n\">2</td><td class=\"n\">0</td><td class=\"n\">4</td>"),
        "{html}"
    );
}

#[test]
fn json_is_the_documented_report_model() {
    let rp = ReportProject::new();
    let r: serde_json::Value = serde_json::from_str(&rp.report("json")).unwrap();
    assert_eq!(r["schema"], 1);
    assert_eq!(r["verdict"], "warn");
    assert_eq!(r["bundle"]["digest"], rp.digest.as_str());
    assert_eq!(
        r["bundle"]["approvals"][0]["comment"],
        "reviewed <scan> & plan"
    );
    assert_eq!(r["bundle"]["overrides"][0]["policy"], "careless");
    let careless = &r["policies"][1];
    assert_eq!(careless["status"], "overridden");
    assert_eq!(careless["blocks"], false);
    assert!(
        careless["findings"][0]["message"]
            .as_str()
            .unwrap()
            .contains("****(23 chars)"),
        "{careless:#}"
    );
    let web = &r["scans"][0];
    assert_eq!(web["counts"]["critical"], 2);
    assert_eq!(web["counts"]["medium"], 4);
    let configured = config()
        .lines()
        .position(|l| l.contains("\"registry.example.com/shop/web:1.4.2\""))
        .unwrap()
        + 1;
    assert_eq!(web["configured_at"], configured);
    let fs = &r["scans"][2];
    assert_eq!(fs["secrets"][0]["path"], "infra/main.tf");
    assert!(fs["secrets"][0].get("match").is_none());
}

#[test]
fn report_writes_to_a_file_and_refuses_report_formats_elsewhere() {
    let rp = ReportProject::new();
    let out = rp.p.file("out/report.html");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    rp.run(&[
        "report",
        &rp.digest[..8],
        "--format",
        "html",
        "-o",
        out.to_str().unwrap(),
    ])
    .success()
    .stdout("")
    .stderr(predicate::str::contains("wrote "));
    assert!(
        std::fs::read_to_string(&out)
            .unwrap()
            .starts_with("<!DOCTYPE html>")
    );
    // A bundle directory works as well as a digest.
    let dir = rp.p.file(&format!(".opsdeploy/bundles/{}", rp.digest));
    rp.run(&["report", dir.to_str().unwrap(), "--format", "junit"])
        .success()
        .stdout(predicate::str::starts_with("<?xml"));
    rp.run(&["status", "--format", "sarif"])
        .code(2)
        .stderr(predicate::str::contains(
            "error: --format sarif is for reports",
        ))
        .stderr(predicate::str::contains(
            "hint: use it with `opsdeploy plan`",
        ));
    rp.run(&["report", "0000000000", "--format", "json"])
        .code(2)
        .stderr(predicate::str::contains(
            "there is no plan bundle 0000000000",
        ));
}

/// What varies between runs: digests, module hashes, fingerprints, times and
/// the terraform version.
pub fn snapshot_filters() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"[0-9a-f]{64}", "[DIGEST]"),
        (r"[0-9a-f]{32}", "[FINGERPRINT]"),
        (r"\b[0-9a-f]{12}\b", "[SHORT]"),
        (r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z", "[TIME]"),
        (
            r#""terraform_version": "[^"]+""#,
            r#""terraform_version": "[VERSION]""#,
        ),
    ]
}

#[test]
fn every_format_of_a_real_bundle_matches_its_snapshot() {
    let rp = ReportProject::new();
    for format in FORMATS {
        let out = rp.report(format);
        insta::with_settings!({filters => snapshot_filters()}, {
            insta::assert_snapshot!(format!("report_{format}"), out);
        });
    }
}

#[test]
fn in_team_mode_a_report_is_made_from_another_checkout() {
    let Some(crate::support::Backend::Postgres { url }) = crate::support::Backend::postgres()
    else {
        return;
    };
    let config = crate::workflow::config("http://127.0.0.1:9/", "");
    let backend = || crate::support::Backend::Postgres { url: url.clone() };
    let planner = TestProject::with_backend(&config, backend());
    let digest = planner.plan(USER, "staging");
    planner
        .run(
            USER,
            &["approve", "staging", "--comment", "from the planner"],
        )
        .success();
    // Another machine: the same project files, none of the first one's state.
    let reviewer = TestProject::with_backend(&config, backend());
    assert!(!reviewer.file(".opsdeploy").exists());
    let out = reviewer
        .run(USER, &["report", &digest[..10], "--format", "json"])
        .success()
        .get_output()
        .stdout
        .clone();
    let r: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert!(r["bundle"]["digest"].as_str().unwrap().starts_with(&digest));
    assert_eq!(r["bundle"]["approvals"][0]["comment"], "from the planner");
}
