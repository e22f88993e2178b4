//! Where the tests find the third-party corpus, and scripts/fetch-corpus.sh,
//! which downloads it for people outside the team. The download is tested
//! offline, from a `file://` mirror laid out like raw.githubusercontent.com
//! and built here from the corpus itself.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

use crate::support::{corpus_dir, find_corpus, repo};

#[derive(Deserialize)]
struct Lock {
    files: Vec<Locked>,
}

#[derive(Deserialize)]
struct Locked {
    file: String,
    repo: String,
    path: String,
    commit: String,
    derived: Option<String>,
}

fn lock() -> Lock {
    let text = std::fs::read_to_string(repo().join("tests/corpus.lock.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn fetch_corpus(args: &[&Path], source: Option<&Path>) -> std::process::Output {
    let mut cmd = Command::new(repo().join("scripts/fetch-corpus.sh"));
    cmd.args(args).env_remove("OPSDEPLOY_CORPUS");
    match source {
        Some(mirror) => cmd.env(
            "OPSDEPLOY_CORPUS_SOURCE",
            format!("file://{}", mirror.display()),
        ),
        None => cmd.env("OPSDEPLOY_CORPUS_SOURCE", "file:///nonexistent"),
    };
    cmd.output().expect("run scripts/fetch-corpus.sh")
}

fn put(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_missing_corpus_fails_with_one_message_saying_what_to_set() {
    let nowhere = tempfile::tempdir().unwrap();
    let configured = find_corpus(Some(nowhere.path().into()), &repo()).unwrap_err();
    assert!(
        configured.contains(&format!(
            "not at OPSDEPLOY_CORPUS={}",
            nowhere.path().display()
        )),
        "{configured}"
    );
    let default = find_corpus(None, &nowhere.path().join("checkout")).unwrap_err();
    for needed in [
        "not at ../shared/corpus beside the repository",
        "set OPSDEPLOY_CORPUS",
        "scripts/fetch-corpus.sh",
    ] {
        assert!(default.contains(needed), "{default}");
    }
    assert_eq!(default.lines().count(), 1, "{default}");
}

#[test]
fn the_corpus_the_tests_read_is_the_one_the_lock_records() {
    let out = fetch_corpus(&[Path::new("--verify"), corpus_dir()], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A mirror of every upstream file the lock names: plain files are the corpus
/// copies; the sources of derived files are written around the corpus copy,
/// the way upstream holds it (a Rust test's raw string, a report with entries
/// about files that were not copied) — except txtar archives, which the
/// corpus holds verbatim.
fn mirror(dir: &Path, lock: &Lock) {
    let upstream = |e: &Locked, path: &str| {
        dir.join(&e.repo)
            .join(&e.commit)
            .join(path.split(' ').next().unwrap())
    };
    for e in lock.files.iter().filter(|e| e.derived.is_none()) {
        put(
            &upstream(e, &e.path),
            &std::fs::read(corpus_dir().join(&e.file)).unwrap(),
        );
    }
    let mut rust_sources: std::collections::BTreeMap<PathBuf, String> = Default::default();
    for e in lock.files.iter().filter(|e| e.derived.is_some()) {
        let text = std::fs::read_to_string(corpus_dir().join(&e.file)).unwrap();
        let target = upstream(e, &e.path);
        if e.path.contains(" :: section ") {
            assert!(target.is_file(), "{} is in the corpus", target.display());
        } else if let Some((_, rest)) = e.path.split_once(" (test fn ") {
            let (func, rest) = rest.split_once(", raw string `").unwrap();
            let var = rest.trim_end_matches("`)");
            assert!(!text.contains("\"###"), "{}", e.file);
            rust_sources.entry(target).or_default().push_str(&format!(
                "#[test]\nfn {func}() {{\n    let other = \"x\";\n    let {var} = r###\"{text}\"###;\n}}\n\n"
            ));
        } else {
            // Upstream's full report: one more entry, about a file not copied.
            let full = format!(
                "{},\n {{\"rule\": \"not copied\", \"line_data_list\": [{{\"path\": \"./tests/samples/not_copied\"}}]}}\n]",
                text.trim_end().strip_suffix(']').unwrap().trim_end()
            );
            put(&target, full.as_bytes());
        }
    }
    for (path, source) in rust_sources {
        put(&path, source.as_bytes());
    }
}

#[test]
fn fetch_corpus_downloads_cuts_derived_files_and_refuses_a_wrong_sha256() {
    let lock = lock();
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("mirror");
    mirror(&source, &lock);

    // A partly downloaded corpus: plain files kept, every derived file and a
    // few plain ones missing, one plain file corrupted.
    let dest = tmp.path().join("corpus");
    let plain: Vec<&Locked> = lock.files.iter().filter(|e| e.derived.is_none()).collect();
    for e in plain.iter().skip(3) {
        put(
            &dest.join(&e.file),
            &std::fs::read(corpus_dir().join(&e.file)).unwrap(),
        );
    }
    put(&dest.join(&plain[4].file), b"corrupted\n");

    let out = fetch_corpus(&[&dest], Some(&source));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let derived = lock.files.len() - plain.len();
    assert!(
        stdout.contains(&format!("{} files downloaded", derived + 4)),
        "{stdout}"
    );
    let verify = fetch_corpus(&[Path::new("--verify"), &dest], None);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );

    // Upstream changed under the recorded commit: refused, not written.
    let victim = plain[0];
    std::fs::remove_file(dest.join(&victim.file)).unwrap();
    put(
        &source
            .join(&victim.repo)
            .join(&victim.commit)
            .join(&victim.path),
        b"tampered\n",
    );
    let out = fetch_corpus(&[&dest], Some(&source));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{}: sha256", victim.file))
            && stderr.contains("not written")
            && stderr.contains("hint:"),
        "{stderr}"
    );
    assert!(!dest.join(&victim.file).exists());
    let verify = fetch_corpus(&[Path::new("--verify"), &dest], None);
    assert_eq!(verify.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&verify.stderr).contains(&format!("{}: missing", victim.file)));
}
