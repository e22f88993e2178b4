//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A file of the third-party corpus, which is never copied into the
/// repository: tests/corpus.lock.json lists every file with its upstream
/// and sha256. See [`corpus_dir`] for where it is read from.
pub fn corpus(rel: &str) -> PathBuf {
    corpus_dir().join(rel)
}

/// The corpus directory: `OPSDEPLOY_CORPUS`, else `../shared/corpus` beside
/// the repository. Without it every corpus test fails with the same message.
pub fn corpus_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    match DIR.get_or_init(|| find_corpus(std::env::var_os("OPSDEPLOY_CORPUS"), &repo())) {
        Ok(dir) => dir,
        Err(message) => panic!("{message}"),
    }
}

/// Where the corpus is, or the one message that says what to set.
pub fn find_corpus(configured: Option<std::ffi::OsString>, repo: &Path) -> Result<PathBuf, String> {
    let (dir, named) = match configured.filter(|v| !v.is_empty()) {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            let named = format!("OPSDEPLOY_CORPUS={}", dir.display());
            (dir, named)
        }
        None => {
            let dir = repo.join("../shared/corpus");
            let named = format!("../shared/corpus beside the repository ({})", dir.display());
            (dir, named)
        }
    };
    if dir.join("manifest.json").is_file() {
        Ok(dir)
    } else {
        Err(format!(
            "the third-party test corpus is not at {named}: it has no manifest.json; \
             set OPSDEPLOY_CORPUS to the corpus directory, or download it there with scripts/fetch-corpus.sh"
        ))
    }
}

/// The built-in policy `name`, as shipped (embedded module, default limits),
/// on `doc`; a policy that does not complete fails the test.
pub fn evaluate_builtin(
    name: &str,
    doc: &opsdeploy::input::InputDocument,
) -> Vec<policy_sdk::Violation> {
    use opsdeploy::engine::{Limits, ModuleSource, Outcome, PolicyEngine};
    let engine = PolicyEngine::new(None).unwrap();
    let policy = engine
        .load(&ModuleSource::builtin(name).expect("a built-in policy"))
        .unwrap();
    let evaluation = engine.evaluate(
        &policy,
        &doc.for_policy(policy.reads.as_deref(), None),
        &Limits::default(),
    );
    match evaluation.outcome {
        Outcome::Completed { violations } => violations,
        other => panic!("{name} did not complete: {other:?}"),
    }
}

/// The opsdeploy binary with a private module cache and no colour.
pub fn opsdeploy(cache: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("opsdeploy").expect("binary built");
    cmd.env("OPSDEPLOY_CACHE_DIR", cache)
        .env("NO_COLOR", "1")
        .env_remove("OPSDEPLOY_LOG");
    cmd
}

/// Whether a line of `text` holds `row`'s words in order, however the table
/// around them pads its columns (widths follow the content).
pub fn has_row(text: &str, row: &str) -> bool {
    let row = row.split_whitespace().collect::<Vec<_>>().join(" ");
    text.lines().any(|l| {
        l.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .contains(&row)
    })
}

/// `has_row` as a predicate over a command's stdout.
pub fn row(row: &'static str) -> impl predicates::Predicate<str> {
    predicates::function::function(move |text: &str| has_row(text, row))
}

/// `opsdeploy -C DIR ARGS...` as alice@example.com, with `cache` as module cache.
pub fn as_alice(cache: &Path, dir: &Path, args: &[&str]) -> assert_cmd::assert::Assert {
    opsdeploy(cache)
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("OPSDEPLOY_USER", "alice@example.com")
        .assert()
}

/// `opsdeploy init` of the quickstart template (offline): (the temp dir, the
/// project directory in it, a module cache).
pub fn quickstart() -> (tempfile::TempDir, PathBuf, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shop");
    opsdeploy(cache.path())
        .arg("init")
        .arg(&dir)
        .assert()
        .success();
    (tmp, dir, cache)
}

/// The quickstart's stand-in staging app, on a free port the project's
/// opsdeploy.hcl is pointed at instead of the template's 18081; stopped when
/// dropped.
pub struct QuickstartApp(std::process::Child);

impl QuickstartApp {
    pub fn start(dir: &std::path::Path) -> QuickstartApp {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
            .to_string();
        let cfg = std::fs::read_to_string(dir.join("opsdeploy.hcl"))
            .unwrap()
            .replace("18081", &port);
        std::fs::write(dir.join("opsdeploy.hcl"), cfg).unwrap();
        let app = std::process::Command::new("python3")
            .args(["scripts/app.py", &port, "staging"])
            .current_dir(dir)
            .spawn()
            .unwrap();
        QuickstartApp(app)
    }
}

impl Drop for QuickstartApp {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A minimal ABI v1 module whose `opsdeploy_evaluate` body is `evaluate`;
/// `extra` adds imports, data or functions. Memory: 1 page, input at 1024.
pub fn abi_module(evaluate: &str, extra: &str) -> Vec<u8> {
    abi_module_with_version(1, evaluate, extra)
}

pub fn abi_module_with_version(version: i32, evaluate: &str, extra: &str) -> Vec<u8> {
    let wat = format!(
        r#"(module
  (import "opsdeploy" "set_output" (func $set_output (param i32 i32)))
  {extra}
  (memory (export "memory") 1)
  (data (i32.const 16) "{{\"violations\":[]}}")
  (func (export "opsdeploy_abi_version") (result i32) i32.const {version})
  (func (export "opsdeploy_alloc") (param i32) (result i32) i32.const 1024)
  (func (export "opsdeploy_evaluate") (param i32 i32) (result i32)
    {evaluate}))"#
    );
    wat::parse_str(wat).expect("valid WAT")
}

/// Writes `bytes` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write test file");
    path
}

/// An input document for environment `production` of project `shop`, with a
/// terraform plan of the corpus as its `terraform` section when given.
pub fn production_document(plan: Option<&str>) -> opsdeploy::input::InputDocument {
    let mut doc = opsdeploy::input::InputDocument::from_slice(
        "doc",
        br#"{"schema_version":1,"environment":{"name":"production","project":"shop"}}"#,
    )
    .expect("a valid document");
    if let Some(rel) = plan {
        doc.set_terraform(
            ".",
            opsdeploy::adapters::terraform::read_plan_file(&corpus(rel)).expect("a plan"),
        );
    }
    doc
}

/// A small input document for environment `staging`.
pub fn small_input(dir: &Path) -> PathBuf {
    write(
        dir,
        "input.json",
        br#"{"schema_version":1,"environment":{"name":"staging","project":"shop"}}"#,
    )
}

/// The store a test project keeps its state in.
#[derive(Debug, Clone)]
pub enum Backend {
    File,
    /// A database of its own on the test server.
    Postgres {
        url: String,
    },
}

impl Backend {
    /// A fresh database on the test server (`OPSDEPLOY_TEST_DATABASE_URL`,
    /// started by scripts/test.sh). Without a server: a failure under CI or
    /// `OPSDEPLOY_REQUIRE_PG`, else `None` and a note (an ad hoc `cargo test`).
    pub fn postgres() -> Option<Backend> {
        test_server().map(|admin| Backend::Postgres {
            url: create_database(&admin),
        })
    }

    /// What opsdeploy.hcl says to use this backend.
    pub fn state_block(&self) -> &'static str {
        match self {
            Backend::File => "",
            Backend::Postgres { .. } => {
                "\nstate {\n  backend = \"postgres\"\n  url     = env(\"OPSDEPLOY_DATABASE_URL\")\n}\n"
            }
        }
    }

    /// The environment opsdeploy needs to reach it.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        match self {
            Backend::File => Vec::new(),
            Backend::Postgres { url } => vec![("OPSDEPLOY_DATABASE_URL", url.clone())],
        }
    }
}

/// Defines `mod NAME { #[test] fn file(); #[test] fn postgres() }`, running
/// the body once per store backend (the PostgreSQL one per [`Backend::postgres`]).
macro_rules! on_both_backends {
    ($(#[$meta:meta])* fn $name:ident($backend:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn run($backend: $crate::support::Backend) $body

            #[test]
            fn file() {
                run($crate::support::Backend::File)
            }

            #[test]
            fn postgres() {
                if let Some(backend) = $crate::support::Backend::postgres() {
                    run(backend)
                }
            }
        }
    };
}

/// The test server's admin URL, per the rule in [`Backend::postgres`].
pub fn test_server() -> Option<String> {
    if let Ok(url) = std::env::var("OPSDEPLOY_TEST_DATABASE_URL") {
        return Some(url);
    }
    let required = ["CI", "OPSDEPLOY_REQUIRE_PG"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()));
    assert!(
        !required,
        "OPSDEPLOY_TEST_DATABASE_URL is not set, and PostgreSQL tests are required here (CI or OPSDEPLOY_REQUIRE_PG): run them with scripts/test.sh, which starts a server"
    );
    eprintln!(
        "note: PostgreSQL test skipped: OPSDEPLOY_TEST_DATABASE_URL is not set (scripts/test.sh starts a throwaway server)"
    );
    None
}

/// Creates an empty database on the server at `admin` (a URL ending in
/// `/DBNAME`, as scripts/pg.sh prints) and returns its URL: every test its
/// own, so tests run in parallel.
pub fn create_database(admin: &str) -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let name = format!(
        "it_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let mut client =
        postgres::Client::connect(admin, postgres::NoTls).expect("connect to the test server");
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create a test database");
    let (base, _) = admin.rsplit_once('/').expect("a URL ending in /DBNAME");
    format!("{base}/{name}")
}

/// A PostgreSQL server of a test's own (scripts/pg.sh), for tests that stop
/// it; removed on drop.
pub struct PgServer {
    dir: tempfile::TempDir,
    /// The admin URL (database `postgres`).
    pub url: String,
}

impl PgServer {
    pub fn start() -> PgServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = pg_sh("start", dir.path())
            .trim()
            .strip_prefix("export OPSDEPLOY_TEST_DATABASE_URL=")
            .expect("scripts/pg.sh start prints the URL")
            .to_string();
        PgServer { dir, url }
    }

    /// Stops the server (fast shutdown: clients are disconnected).
    pub fn stop(&self) {
        pg_sh("stop", self.dir.path());
    }

    /// Starts it again, same data and port.
    pub fn restart(&self) {
        pg_sh("start", self.dir.path());
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // Best effort, and never a panic while a failed test unwinds.
        let _ = std::process::Command::new(repo().join("scripts/pg.sh"))
            .arg("destroy")
            .arg(self.dir.path().join("server"))
            .status();
    }
}

fn pg_sh(cmd: &str, dir: &Path) -> String {
    let out = std::process::Command::new(repo().join("scripts/pg.sh"))
        .arg(cmd)
        .arg(dir.join("server"))
        .output()
        .expect("run scripts/pg.sh");
    assert!(
        out.status.success(),
        "scripts/pg.sh {cmd} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
