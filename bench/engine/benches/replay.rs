//! Policy replay throughput (issue 18): `opsdeploy policy replay` against
//! evaluating the same stored input documents the way `policy eval` does,
//! in one process. Run it with `bench/replay.sh`, which makes the stores.
//!
//! Arguments: `PROJECT N RUNS`. PROJECT holds one sealed plan bundle (the
//! model); it is cloned into N bundles (each with its own input.json copy and
//! its own digest; the files replay never reads are hard links). Then, RUNS
//! times, alternating so the shared machine's load hits every side:
//!
//! - `eval 1 thread`: per document, what `policy eval --input` does after
//!   start-up: read the file, parse it into an input document, narrow it to
//!   the sections the policy reads, evaluate. One policy loaded once.
//! - `eval parallel`: the same, the documents spread over every core (rayon),
//!   as replay spreads its bundles;
//! - `replay`: `opsdeploy::workflow::replay::replay` on the project: listing
//!   the store, checking each manifest against its digest and each input
//!   document against its manifest, the audit log, the stored results, the
//!   evaluation and the comparison.
//!
//! Printed: each run's seconds, the medians, bundles per second and the
//! ratios replay / eval.

use std::path::{Path, PathBuf};
use std::time::Instant;

use opsdeploy::engine::{Limits, ModuleCache, ModuleSource, PolicyEngine};
use opsdeploy::input::InputDocument;
use opsdeploy::store::bundle::{MANIFEST, Manifest, sha256_hex};
use opsdeploy::workflow::Project;
use opsdeploy::workflow::replay::{self, Selection, Subject};
use rayon::prelude::*;
use serde_json::value::RawValue;

#[global_allocator]
static GLOBAL: opsdeploy::GlobalAllocator = opsdeploy::GlobalAllocator {};

const POLICY: &str = "protected-deletes";
const SETTINGS: &str = r#"{"types":["terraform_data"]}"#;

fn fail(message: String) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1)
}

/// The sealed bundle directories of the project's file store.
fn bundles(project: &Path) -> Vec<PathBuf> {
    let dir = project.join(".opsdeploy/bundles");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| fail(format!("cannot read {}: {e}", dir.display())))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.len() == 64 && p.join(MANIFEST).is_file()
        })
        .collect();
    out.sort();
    out
}

/// Clones the model bundle until there are `n`: a new `created_at` names a
/// new manifest, so a new digest; input.json is copied, the rest linked.
fn clone_to(project: &Path, n: usize) {
    let existing = bundles(project);
    let Some(model) = existing.first() else {
        fail(format!("no plan bundle in {}", project.display()));
    };
    let manifest: Manifest = serde_json::from_slice(&std::fs::read(model.join(MANIFEST)).unwrap())
        .unwrap_or_else(|e| fail(format!("the model bundle's manifest: {e}")));
    let root = project.join(".opsdeploy/bundles");
    for i in existing.len()..n {
        let tmp = root.join(format!(".building-bench-{i}"));
        let _ = std::fs::remove_dir_all(&tmp);
        for entry in walk(model) {
            let rel = entry.strip_prefix(model).unwrap();
            if rel == Path::new(MANIFEST) {
                continue;
            }
            let to = tmp.join(rel);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            if rel == Path::new("input.json") {
                std::fs::copy(&entry, &to).unwrap();
            } else {
                std::fs::hard_link(&entry, &to).unwrap();
            }
        }
        let mut m = manifest.clone();
        m.created_at = opsdeploy::store::rfc3339(1_700_000_000 + i as i64 * 60);
        let bytes = serde_json::to_vec_pretty(&m).unwrap();
        std::fs::write(tmp.join(MANIFEST), &bytes).unwrap();
        std::fs::rename(&tmp, root.join(sha256_hex(&bytes))).unwrap();
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let [project, n, runs] = args.as_slice() else {
        fail("usage: replay PROJECT N RUNS (see bench/replay.sh)".into());
    };
    let project = PathBuf::from(project);
    let n: usize = n
        .parse()
        .unwrap_or_else(|_| fail(format!("N is not a number: {n}")));
    let runs: usize = runs
        .parse()
        .unwrap_or_else(|_| fail(format!("RUNS is not a number: {runs}")));
    clone_to(&project, n);
    let dirs = bundles(&project);
    if dirs.len() != n {
        fail(format!(
            "{} holds {} bundles, not {n}",
            project.display(),
            dirs.len()
        ));
    }
    let inputs: Vec<PathBuf> = dirs.iter().map(|d| d.join("input.json")).collect();
    let mib = inputs
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum::<u64>() as f64
        / (1 << 20) as f64;
    println!("{n} bundles, input documents {mib:.1} MiB in all");

    let cache = std::env::var_os("OPSDEPLOY_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| fail("set OPSDEPLOY_CACHE_DIR (bench/replay.sh does)".into()));
    let engine = PolicyEngine::new(Some(ModuleCache::new(cache))).unwrap();
    let policy = engine
        .load(&ModuleSource::builtin(POLICY).unwrap())
        .unwrap();
    let settings = RawValue::from_string(SETTINGS.into()).unwrap();
    policy
        .check_settings(&serde_json::from_str(SETTINGS).unwrap())
        .unwrap();
    let limits = Limits::default();
    let eval = |path: &PathBuf| {
        let doc = InputDocument::from_slice("input.json", &std::fs::read(path).unwrap()).unwrap();
        let input = doc.for_policy(policy.reads.as_deref(), Some(&settings));
        let e = engine.evaluate(&policy, &input, &limits);
        assert!(e.failure().is_none(), "{:?}", e.failure());
    };
    let opened = Project::open(&project).unwrap();
    let subject = Subject::Policy {
        policy: format!("builtin:{POLICY}"),
        settings: Some(serde_json::from_str(SETTINGS).unwrap()),
    };

    let (mut seq, mut par, mut rep) = (Vec::new(), Vec::new(), Vec::new());
    for run in 1..=runs {
        let t = Instant::now();
        inputs.iter().for_each(eval);
        seq.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        inputs.par_iter().for_each(eval);
        par.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let r = replay::replay(&opened, &subject, &Selection::default()).unwrap();
        rep.push(t.elapsed().as_secs_f64());
        assert_eq!(
            r.summary.replayed, n,
            "every bundle replayed: {:?}",
            r.skipped
        );
        println!(
            "run {run}: eval 1 thread {:.3} s, eval parallel {:.3} s, replay {:.3} s",
            seq[run - 1],
            par[run - 1],
            rep[run - 1]
        );
    }
    let (seq, par, rep) = (median(seq), median(par), median(rep));
    let per_s = |s: f64| n as f64 / s;
    println!(
        "medians of {runs}: eval 1 thread {seq:.3} s ({:.0} bundles/s), eval parallel {par:.3} s ({:.0}/s), replay {rep:.3} s ({:.0}/s)",
        per_s(seq),
        per_s(par),
        per_s(rep)
    );
    println!(
        "replay / eval 1 thread = {:.2}, replay / eval parallel = {:.2} (target: <= 1.5)",
        rep / seq,
        rep / par
    );
}
