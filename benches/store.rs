//! Store backends side by side: audit appends and approvals per second (one
//! writer, then four racing), and lock handoff latency (from the holder's
//! release to the waiter holding the lock). A plain timing harness printing
//! medians: run it with `bench/store.sh`, which starts a throwaway PostgreSQL.

use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use opsdeploy::store::records::{ApprovalData, StepData};
use opsdeploy::store::{EntryData, EntryKind, FileStore, LockHolder, NewEntry, PgStore, Store};

const APPENDS: usize = 400;
const WRITERS: usize = 4;
const HANDOFFS: usize = 40;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn holder(who: &str) -> LockHolder {
    LockHolder {
        actor: who.into(),
        host: "bench".into(),
        pid: std::process::id(),
        since: opsdeploy::store::now_rfc3339(),
        purpose: "bench".into(),
    }
}

fn entry(kind: EntryKind, i: usize) -> NewEntry {
    let data = match kind {
        EntryKind::Approval => EntryData::Approval(ApprovalData {
            comment: Some(format!("entry {i}")),
            signed: None,
        }),
        _ => EntryData::ApplyStep(StepData::new("terraform", true, format!("entry {i}"), 1)),
    };
    NewEntry::new("bench@example.com", "staging", data).digest("3f9a0c21aa")
}

/// Median latency of one append, one writer.
fn appends(store: &dyn Store, kind: EntryKind) -> Duration {
    let times = (0..APPENDS)
        .map(|i| {
            let t = Instant::now();
            store.append(entry(kind, i)).expect("append");
            t.elapsed()
        })
        .collect();
    median(times)
}

/// Appends per second with `WRITERS` stores appending at once.
fn racing_appends(open: &(dyn Fn() -> Box<dyn Store> + Sync)) -> f64 {
    let started = Instant::now();
    thread::scope(|s| {
        for _ in 0..WRITERS {
            s.spawn(|| {
                let store = open();
                for i in 0..APPENDS / WRITERS {
                    store
                        .append(entry(EntryKind::ApplyStep, i))
                        .expect("append");
                }
            });
        }
    });
    APPENDS as f64 / started.elapsed().as_secs_f64()
}

/// Median time from the holder dropping the lock to the waiter holding it.
fn handoff(holder_store: &dyn Store, waiter: Arc<dyn Store>) -> Duration {
    let times = (0..HANDOFFS)
        .map(|_| {
            let guard = holder_store
                .lock("production", &holder("a"), Duration::ZERO)
                .expect("lock");
            let (tx, rx) = mpsc::channel();
            let w = waiter.clone();
            let t = thread::spawn(move || {
                let g = w
                    .lock("production", &holder("b"), Duration::from_secs(30))
                    .expect("waiter gets the lock");
                let got = Instant::now();
                tx.send(()).ok();
                drop(g);
                got
            });
            // Let the waiter start waiting.
            thread::sleep(Duration::from_millis(150));
            let released = Instant::now();
            drop(guard);
            rx.recv().expect("waiter");
            t.join().expect("waiter thread") - released
        })
        .collect();
    median(times)
}

struct Row {
    backend: &'static str,
    audit: Duration,
    approval: Duration,
    racing: f64,
    handoff: Duration,
}

fn measure(backend: &'static str, open: &(dyn Fn() -> Box<dyn Store> + Sync)) -> Row {
    let store = open();
    let audit = appends(&*store, EntryKind::ApplyStep);
    let approval = appends(&*store, EntryKind::Approval);
    let racing = racing_appends(open);
    let handoff = handoff(&*store, Arc::from(open()));
    Row {
        backend,
        audit,
        approval,
        racing,
        handoff,
    }
}

fn per_sec(d: Duration) -> f64 {
    1.0 / d.as_secs_f64()
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let Ok(admin) = std::env::var("OPSDEPLOY_TEST_DATABASE_URL") else {
        eprintln!(
            "error: OPSDEPLOY_TEST_DATABASE_URL is not set\nhint: run bench/store.sh, which starts a throwaway PostgreSQL"
        );
        std::process::exit(1);
    };
    let mut admin_client =
        postgres::Client::connect(&admin, postgres::NoTls).expect("connect to the server");
    let db = format!("bench_{}", std::process::id());
    admin_client
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .expect("create the bench database");
    let (base, _) = admin.rsplit_once('/').expect("URL ends in /DBNAME");
    let url = format!("{base}/{db}");
    let dir = tempfile::tempdir().expect("temp dir");
    let bundles = dir.path().join("bundles");

    let file_root = dir.path().join("file");
    let rows = [
        measure("file", &|| Box::new(FileStore::new(&file_root))),
        measure("postgres", &|| {
            Box::new(PgStore::connect(&url, &bundles).expect("connect"))
        }),
    ];
    println!(
        "| backend | audit append (median) | audit appends/s | approval append (median) | approvals/s | appends/s, {WRITERS} writers racing | lock handoff (median) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {:.2} ms | {:.0} | {:.2} ms | {:.0} | {:.0} | {:.2} ms |",
            r.backend,
            r.audit.as_secs_f64() * 1e3,
            per_sec(r.audit),
            r.approval.as_secs_f64() * 1e3,
            per_sec(r.approval),
            r.racing,
            r.handoff.as_secs_f64() * 1e3
        );
    }
    let (f, p) = (&rows[0], &rows[1]);
    println!(
        "\npostgres / file: audit appends/s {:.2}x, approvals/s {:.2}x, racing appends/s {:.2}x, lock handoff latency {:.3}x",
        per_sec(p.audit) / per_sec(f.audit),
        per_sec(p.approval) / per_sec(f.approval),
        p.racing / f.racing,
        p.handoff.as_secs_f64() / f.handoff.as_secs_f64()
    );
    admin_client
        .batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)"))
        .ok();
}
