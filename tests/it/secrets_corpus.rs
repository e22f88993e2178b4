//! The no-secrets policy, as shipped (the embedded wasm module, default
//! limits), against the secrets corpus and its labels
//! (`tests/data/secrets-labels.json`), and `trivy fs --scanners secret` on the
//! same files. Prints recall and false-positive rate of both; holds no-secrets
//! to recall ≥ 95 % and false positives ≤ 2 % of the lines that hold no secret.
//!
//! Run with `cargo test --test it secrets_corpus -- --nocapture` to see the
//! figures and every miss.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use opsdeploy::input::InputDocument;
use policy_sdk::Section;
use serde::Deserialize;

use crate::support::{corpus, evaluate_builtin, repo};

#[derive(Deserialize)]
struct Labels {
    files: Vec<LabelledFile>,
    excluded: Vec<Excluded>,
}

#[derive(Deserialize)]
struct LabelledFile {
    file: String,
    /// The lines of each labelled secret.
    secrets: Vec<Vec<u32>>,
}

#[derive(Deserialize)]
struct Excluded {
    file: String,
    #[serde(default)]
    lines: Vec<u32>,
}

fn labels() -> Labels {
    let text = std::fs::read_to_string(repo().join("tests/data/secrets-labels.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Recall and false positives of one detector's findings (file → lines).
struct Score {
    labelled: usize,
    hit: usize,
    negative_lines: usize,
    false_positive_lines: usize,
    misses: Vec<String>,
    false_positives: Vec<String>,
}

impl Score {
    fn recall(&self) -> f64 {
        self.hit as f64 / self.labelled as f64
    }
    fn fp_rate(&self) -> f64 {
        self.false_positive_lines as f64 / self.negative_lines as f64
    }
    fn summary(&self) -> String {
        format!(
            "recall {:.1} % ({}/{} labelled secrets), false positives {:.2} % ({}/{} lines without a secret)",
            100.0 * self.recall(),
            self.hit,
            self.labelled,
            100.0 * self.fp_rate(),
            self.false_positive_lines,
            self.negative_lines
        )
    }
}

fn score(labels: &Labels, found: &BTreeMap<String, BTreeSet<u32>>) -> Score {
    let excluded: BTreeSet<(&str, u32)> = labels
        .excluded
        .iter()
        .flat_map(|e| e.lines.iter().map(move |l| (e.file.as_str(), *l)))
        .collect();
    let mut s = Score {
        labelled: 0,
        hit: 0,
        negative_lines: 0,
        false_positive_lines: 0,
        misses: Vec::new(),
        false_positives: Vec::new(),
    };
    for f in &labels.files {
        let lines = found.get(&f.file).cloned().unwrap_or_default();
        for secret in &f.secrets {
            s.labelled += 1;
            if secret.iter().any(|l| lines.contains(l)) {
                s.hit += 1;
            } else {
                s.misses.push(format!("{}:{}", f.file, secret[0]));
            }
        }
        let bytes = std::fs::read(corpus(&f.file)).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        let secret_line = |l: u32| {
            f.secrets.iter().any(|s| s.contains(&l)) || excluded.contains(&(f.file.as_str(), l))
        };
        for (i, line) in text.lines().enumerate() {
            let no = i as u32 + 1;
            if line.trim().is_empty() || secret_line(no) {
                continue;
            }
            s.negative_lines += 1;
            if lines.contains(&no) {
                s.false_positive_lines += 1;
                s.false_positives.push(format!(
                    "{}:{no} {}",
                    f.file,
                    line.chars().take(60).collect::<String>()
                ));
            }
        }
    }
    s
}

fn no_secrets_findings(labels: &Labels) -> BTreeMap<String, BTreeSet<u32>> {
    let files: Vec<serde_json::Value> = labels
        .files
        .iter()
        .map(|f| {
            let bytes = std::fs::read(corpus(&f.file)).unwrap();
            serde_json::json!({
                "path": f.file,
                "kind": "other",
                "content": String::from_utf8_lossy(&bytes),
            })
        })
        .collect();
    let mut doc = InputDocument::from_slice(
        "corpus",
        br#"{"schema_version":1,"environment":{"name":"staging","project":"corpus"}}"#,
    )
    .unwrap();
    doc.set(Section::Files, &files);
    let violations = evaluate_builtin("no-secrets", &doc);
    // Nothing a finding says may contain a labelled secret's text: spot-check
    // the values the corpus plants.
    let all = serde_json::to_string(&violations).unwrap();
    for planted in [
        "Ce7shE0ENPiBlE_EdEose0cBAA",
        "SqLpa5sW0rD",
        "8ae31cacf141669ddfb5da",
        "AKIA0123456789ABCDEF",
    ] {
        assert!(
            !all.contains(planted),
            "a finding shows the secret {planted}"
        );
    }
    let mut found: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
    for v in violations {
        if let (Some(path), Some(line)) = (v.path, v.line) {
            found.entry(path).or_default().insert(line);
        }
    }
    found
}

/// `trivy fs --scanners secret` over copies of the same files (flattened, so
/// trivy's path-based allow rules for `testdata/` do not hide them).
fn trivy_findings(labels: &Labels) -> BTreeMap<String, BTreeSet<u32>> {
    let trivy = [repo().join(".tools/bin/trivy"), PathBuf::from("trivy")]
        .into_iter()
        .find(|t| {
            Command::new(t)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("trivy is installed (run scripts/setup.sh)");
    let dir = tempfile::tempdir().unwrap();
    let mut names = BTreeMap::new();
    for (i, f) in labels.files.iter().enumerate() {
        let base = f.file.rsplit('/').next().unwrap();
        let name = format!("{i:02}-{base}");
        std::fs::copy(corpus(&f.file), dir.path().join(&name)).unwrap();
        names.insert(name, f.file.clone());
    }
    let cache = tempfile::tempdir().unwrap();
    let out = Command::new(trivy)
        .args([
            "fs",
            "--scanners",
            "secret",
            "--format",
            "json",
            "--quiet",
            "--cache-dir",
        ])
        .arg(cache.path())
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "trivy failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut found: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
    for result in report["Results"].as_array().into_iter().flatten() {
        let target = result["Target"].as_str().unwrap_or_default();
        let Some(file) = names.get(target) else {
            continue;
        };
        for s in result["Secrets"].as_array().into_iter().flatten() {
            let start = s["StartLine"].as_u64().unwrap_or(0) as u32;
            let end = s["EndLine"].as_u64().unwrap_or(start as u64) as u32;
            found.entry(file.clone()).or_default().extend(start..=end);
        }
    }
    found
}

#[test]
fn no_secrets_meets_recall_and_false_positive_targets_and_is_compared_with_trivy() {
    let labels = labels();
    let ours = score(&labels, &no_secrets_findings(&labels));
    let theirs = score(&labels, &trivy_findings(&labels));
    println!("no-secrets:                {}", ours.summary());
    println!("trivy fs --scanners secret: {}", theirs.summary());
    println!("no-secrets misses: {:?}", ours.misses);
    println!("no-secrets false positives: {:?}", ours.false_positives);
    assert!(
        ours.recall() >= 0.95,
        "{}\nmisses: {:?}",
        ours.summary(),
        ours.misses
    );
    assert!(
        ours.fp_rate() <= 0.02,
        "{}\nfalse positives: {:?}",
        ours.summary(),
        ours.false_positives
    );
    // trivy does run and find the formats it knows; the gap is the point of the comparison.
    assert!(theirs.hit > 0, "trivy found nothing: {}", theirs.summary());
}

/// Evaluates no-secrets on real `helm template` output from the corpus.
fn rendered_chart_findings(rel: &str) -> Vec<policy_sdk::Violation> {
    let yaml = std::fs::read_to_string(corpus(rel)).unwrap();
    let rendered = opsdeploy::adapters::helm::parse_manifests("demo", &yaml).unwrap();
    let manifests: Vec<_> = rendered.iter().map(|r| r.as_input()).collect();
    let release = serde_json::json!([{
        "release": "demo", "chart": "demo", "namespace": "demo", "manifests": manifests,
    }]);
    let mut doc = InputDocument::from_slice(
        "chart",
        br#"{"schema_version":1,"environment":{"name":"staging","project":"corpus"}}"#,
    )
    .unwrap();
    doc.set(Section::Helm, &release);
    evaluate_builtin("no-secrets", &doc)
}

#[test]
fn rendered_charts_the_secrets_the_corpus_names_and_no_others() {
    let base = "otel-helm-charts/charts/opentelemetry-demo/examples/default/rendered";
    let found = rendered_chart_findings(&format!("{base}/component.yaml"));
    let text = serde_json::to_string(&found).unwrap();
    // What the corpus manifest lists for the opentelemetry-demo render.
    for expected in [
        "password in a connection string in `DB_CONNECTION_STRING`",
        "password in a URL in `DB_CONNECTION_STRING`",
        "`SECRET_KEY_BASE`",
        "metrics/config: password`",
    ] {
        assert!(text.contains(expected), "{expected} not reported: {text}");
    }
    // The traps: an empty API_KEY, `$(API_KEY)`, VALKEY_ADDR, and
    // POSTGRES_PASSWORD's `changeit`, a stand-in word only.
    for trap in [
        "`API_KEY`",
        "`OPENAI_API_KEY`",
        "VALKEY_ADDR",
        "`POSTGRES_PASSWORD`",
    ] {
        assert!(!text.contains(trap), "{trap} reported: {text}");
    }
    for planted in ["astronomy_password", "monitoring_password", "changeit"] {
        assert!(!text.contains(planted), "a finding shows {planted}");
    }
    assert_eq!(found.len(), 4, "{text}");

    let init = rendered_chart_findings(&format!("{base}/posgresql-init-config.yaml"));
    assert_eq!(init.len(), 1, "{init:?}");
    assert!(
        init[0].message.contains("`init.sql: PASSWORD`"),
        "{:?}",
        init[0]
    );
    let grafana = rendered_chart_findings(&format!("{base}/grafana/secret.yaml"));
    assert_eq!(grafana.len(), 1, "{grafana:?}");
    assert_eq!(grafana[0].rule, "secret-in-manifest");
    for clean in [
        format!("{base}/grafana/deployment.yaml"),
        format!("{base}/opentelemetry-collector/daemonset.yaml"),
        "datadog-helm-charts/test/datadog/baseline/manifests/default_all.yaml".into(),
        "datadog-helm-charts/test/datadog/baseline/manifests/cluster-agent-deployment_default.yaml"
            .into(),
    ] {
        let found = rendered_chart_findings(&clean);
        assert!(found.is_empty(), "{clean}: {found:?}");
    }
}
