//! Team mode: the store in a PostgreSQL database (schema `opsdeploy`).
//!
//! - the audit log is the table `audit_log`, one row per entry holding the
//!   entry's line exactly as hashed (the chain is the file store's, from
//!   `audit.rs`); appends take a transaction-scoped advisory lock so two
//!   runners never link to the same head, and triggers refuse UPDATE, DELETE
//!   and TRUNCATE;
//! - approvals and overrides are also rows of `approvals`, bound to digests;
//! - an environment lock is a session advisory lock held on a connection of its
//!   own for the lock's lifetime: if the runner dies, its connection goes and
//!   the server releases the lock. `locks` says who holds it;
//! - plan bundles are stored whole (`bundles`, `bundle_files`) and written out
//!   to the local bundles directory when a runner needs one; every file's
//!   content is encrypted under the team's bundle key (`sealed.rs`), which
//!   the database never sees.
//!
//! The schema is created and upgraded from the migrations embedded in the
//! binary, in one transaction, recorded in `schema_version`: at connect when
//! the role may, or by `opsdeploy state init --admin-url`, which also makes
//! the admin role its owner and grants the runtime role opsdeploy connects as
//! only reading and appending (owning nothing, it cannot alter the tables or
//! disable their triggers). Connecting as a superuser or as the tables' owner
//! is warned about.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use postgres::error::SqlState;
use postgres::{Client, GenericClient, NoTls};
use sha2::{Digest, Sha256};

use super::audit::{self, Entry, NewEntry, Verification};
use super::records::EntryData;
use super::sealed::{self, BundleKeys};
use super::{LockGuard, LockHolder, Store, StoreError, now_rfc3339};

/// The embedded migrations, in order; version = position + 1.
const MIGRATIONS: &[&str] = &[include_str!("migrations/0001_init.sql")];

/// Serializes schema migrations of concurrent first connects (an arbitrary
/// constant: "opsd" "migr").
const MIGRATION_LOCK: i64 = 0x6f70_7364_6d69_6772;

/// How long a connect may take before the server counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// TCP keepalive idle time of a lock's connection.
const LOCK_KEEPALIVE: Duration = Duration::from_secs(60);

pub struct PgStore {
    config: postgres::Config,
    /// The URL without its password, for messages.
    shown: String,
    client: Mutex<Client>,
    bundles: PathBuf,
    /// Read at connect; only bundle reads and writes need them.
    keys: Result<BundleKeys, sealed::SealError>,
}

impl PgStore {
    /// Connects to `url`, bringing the schema up to date. `bundles` is the local
    /// directory bundles are written out to (the same layout as the file store's).
    pub fn connect(url: &str, bundles: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Unavailable(format!("the database URL is not valid: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("opsdeploy");
        }
        let shown = shown_url(&config);
        let mut client = open(&config, &shown)?;
        migrate(&mut client, &shown)?;
        warn_if_privileged(&mut client, &shown);
        Ok(PgStore {
            config,
            shown,
            client: Mutex::new(client),
            bundles: bundles.into(),
            keys: BundleKeys::from_env(),
        })
    }

    fn client(&self) -> MutexGuard<'_, Client> {
        // A panic while holding the client leaves it usable: every statement is
        // its own transaction or rolled back when the transaction drops.
        self.client.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn err(&self, doing: &str) -> impl Fn(postgres::Error) -> StoreError + '_ {
        let doing = doing.to_string();
        move |e| db_error(&self.shown, &doing, e)
    }

    /// Copies already sealed entries (another store's history) after this
    /// log's head, in one transaction, each checked to link to the one before.
    pub fn import(&self, lines: &[String]) -> Result<usize, StoreError> {
        let mut client = self.client();
        let mut tx = client
            .transaction()
            .map_err(self.err("start a transaction on"))?;
        lock_log(&mut tx).map_err(self.err("lock the audit log of"))?;
        let (mut seq, mut prev) = head(&mut tx).map_err(self.err("read the audit log of"))?;
        for line in lines {
            let entry = audit::parse_line(line).map_err(|reason| StoreError::Damaged {
                path: "the imported history".into(),
                position: seq as usize + 1,
                reason,
            })?;
            if entry.seq != seq + 1 || entry.prev != prev {
                return Err(StoreError::Database {
                    what: format!("could not import into {}", self.shown),
                    reason: format!(
                        "entry {} does not follow its entry {seq} (was it written to while copying?); nothing was imported",
                        entry.seq
                    ),
                });
            }
            insert_entry(&mut tx, &entry, line).map_err(self.err("import an audit entry into"))?;
            seq = entry.seq;
            prev = entry.hash;
        }
        tx.commit().map_err(self.err("commit the import into"))?;
        Ok(lines.len())
    }

    /// The database, without its password.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// The stored lines, in order, as `audit verify` reads them.
    pub fn lines(&self) -> Result<Vec<String>, StoreError> {
        let rows = self
            .client()
            .query("SELECT line FROM opsdeploy.audit_log ORDER BY seq", &[])
            .map_err(self.err("read the audit log"))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn keys(&self) -> Result<&BundleKeys, StoreError> {
        self.keys
            .as_ref()
            .map_err(|why| StoreError::BundleKey(why.clone()))
    }

    /// A bundle file's stored bytes as plaintext. Rows from before bundles
    /// were encrypted are plaintext; the digest checks every file either way.
    fn unseal(&self, digest: &str, rel: &str, stored: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        if !sealed::is_sealed(&stored) {
            return Ok(stored);
        }
        self.keys()?
            .open(digest, rel, &stored)
            .map_err(|reason| StoreError::Damaged {
                path: format!("plan bundle {digest} in {}", self.shown),
                position: 0,
                reason,
            })
    }

    /// Stores a sealed bundle directory (idempotent: a digest names one
    /// content), each file encrypted.
    pub fn store_bundle(&self, dir: &Path, digest: &str) -> Result<(), StoreError> {
        let keys = self.keys()?;
        let manifest_path = dir.join(super::bundle::MANIFEST);
        let manifest_bytes =
            std::fs::read(&manifest_path).map_err(|e| StoreError::io("read", &manifest_path, e))?;
        let manifest: serde_json::Value = serde_json::from_slice(&manifest_bytes)
            .map_err(|e| StoreError::io("read", &manifest_path, e.into()))?;
        let mut files = Vec::new();
        collect_files(dir, dir, &mut files)?;
        let mut client = self.client();
        let mut tx = client
            .transaction()
            .map_err(self.err("start a transaction on"))?;
        let field = |k: &str| manifest[k].as_str().unwrap_or_default().to_string();
        tx.execute(
            "INSERT INTO opsdeploy.bundles (digest, environment, planned_by, created_at, manifest)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (digest) DO NOTHING",
            &[
                &digest,
                &field("environment"),
                &field("planned_by"),
                &field("created_at"),
                &manifest,
            ],
        )
        .map_err(self.err("store a plan bundle in"))?;
        for (rel, content) in &files {
            let content = keys
                .seal(digest, rel, content)
                .map_err(StoreError::BundleKey)?;
            // The same digest names the same files: a second store changes nothing.
            tx.execute(
                "INSERT INTO opsdeploy.bundle_files (digest, path, content) VALUES ($1, $2, $3)
                 ON CONFLICT (digest, path) DO NOTHING",
                &[&digest, rel, &content],
            )
            .map_err(self.err("store a plan bundle in"))?;
        }
        tx.commit().map_err(self.err("store a plan bundle in"))
    }
}

fn open(config: &postgres::Config, shown: &str) -> Result<Client, StoreError> {
    config
        .connect(NoTls)
        .map_err(|e| StoreError::Unavailable(format!("{shown}: {}", cause(&e))))
}

/// The schema version in the database; 0 when there is no schema yet.
fn schema_version(client: &mut impl GenericClient) -> Result<i32, postgres::Error> {
    let exists: bool = client
        .query_one(
            "SELECT to_regclass('opsdeploy.schema_version') IS NOT NULL",
            &[],
        )?
        .get(0);
    if !exists {
        return Ok(0);
    }
    Ok(client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM opsdeploy.schema_version",
            &[],
        )?
        .get(0))
}

/// Brings the schema to the newest embedded version. A schema already up to
/// date is only read: the runtime role of a set-up database may not create
/// anything.
fn migrate(client: &mut Client, shown: &str) -> Result<(), StoreError> {
    let current = schema_version(client).map_err(|e| db_error(shown, "read the schema of", e))?;
    if current == MIGRATIONS.len() as i32 {
        return Ok(());
    }
    let err = |e: postgres::Error| {
        if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) {
            return StoreError::Database {
                what: format!(
                    "the opsdeploy schema of {shown} is missing or older than this opsdeploy, and this role may not create it"
                ),
                reason: format!(
                    "{}; run `opsdeploy state init --admin-url postgres://ADMIN@HOST/DB` as the database's admin",
                    cause(&e)
                ),
            };
        }
        db_error(shown, "migrate the schema of", e)
    };
    let mut tx = client.transaction().map_err(err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(err)?;
    tx.batch_execute(
        "CREATE SCHEMA IF NOT EXISTS opsdeploy;
         CREATE TABLE IF NOT EXISTS opsdeploy.schema_version (
             version    integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         );",
    )
    .map_err(err)?;
    let current: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM opsdeploy.schema_version",
            &[],
        )
        .map_err(err)?
        .get(0);
    let known = MIGRATIONS.len() as i32;
    if current > known {
        return Err(StoreError::Unavailable(format!(
            "{shown} has opsdeploy schema version {current}, newer than this opsdeploy knows ({known}); upgrade opsdeploy"
        )));
    }
    for (version, sql) in (1..).zip(MIGRATIONS).skip(current as usize) {
        tracing::info!("{shown}: applying opsdeploy schema version {version}");
        tx.batch_execute(sql).map_err(err)?;
        tx.execute(
            "INSERT INTO opsdeploy.schema_version (version) VALUES ($1)",
            &[&version],
        )
        .map_err(err)?;
    }
    tx.commit().map_err(err)
}

/// Serializes appends (an arbitrary constant: "opsd" "audt").
const APPEND_LOCK: i64 = 0x6f70_7364_6175_6474;

/// Blocks other appenders (not readers) until the transaction ends. An
/// advisory lock, not `LOCK TABLE`: that needs UPDATE or DELETE rights the
/// runtime role must not have.
fn lock_log(tx: &mut impl GenericClient) -> Result<(), postgres::Error> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&APPEND_LOCK])
        .map(|_| ())
}

/// The last entry's seq and hash (0 and GENESIS for an empty log).
fn head(tx: &mut impl GenericClient) -> Result<(u64, String), postgres::Error> {
    Ok(tx
        .query_opt(
            "SELECT seq, hash FROM opsdeploy.audit_log ORDER BY seq DESC LIMIT 1",
            &[],
        )?
        .map(|r| (r.get::<_, i64>(0) as u64, r.get(1)))
        .unwrap_or((0, audit::GENESIS.to_string())))
}

fn insert_entry(
    tx: &mut impl GenericClient,
    entry: &Entry,
    line: &str,
) -> Result<(), postgres::Error> {
    let seq = entry.seq as i64;
    tx.execute(
        "INSERT INTO opsdeploy.audit_log (seq, at, kind, actor, environment, digest, prev, hash, line)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            &seq,
            &entry.at,
            &entry.kind().as_str(),
            &entry.actor,
            &entry.environment,
            &entry.digest,
            &entry.prev,
            &entry.hash,
            &line,
        ],
    )?;
    let (policy, reason, comment) = match &entry.data {
        EntryData::Approval(a) => (None, None, a.comment.as_deref()),
        EntryData::Override(o) => (Some(o.policy.as_str()), Some(o.reason.as_str()), None),
        _ => return Ok(()),
    };
    if let Some(digest) = &entry.digest {
        tx.execute(
            "INSERT INTO opsdeploy.approvals (seq, digest, kind, environment, actor, at, policy, reason, comment)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &seq,
                digest,
                &entry.kind().as_str(),
                &entry.environment,
                &entry.actor,
                &entry.at,
                &policy,
                &reason,
                &comment,
            ],
        )?;
    }
    Ok(())
}

/// Warns when the role opsdeploy runs as could disable the audit log's
/// triggers or rewrite it: a superuser, or the owner of its tables.
fn warn_if_privileged(client: &mut Client, shown: &str) {
    let row = client.query_one(
        "SELECT current_user::text, r.rolsuper, pg_get_userbyid(c.relowner) = current_user
           FROM pg_roles r, pg_class c
          WHERE r.rolname = current_user AND c.oid = 'opsdeploy.audit_log'::regclass",
        &[],
    );
    match row {
        Ok(row) => {
            let (role, superuser, owner): (String, bool, bool) =
                (row.get(0), row.get(1), row.get(2));
            let what = if superuser {
                "a superuser"
            } else if owner {
                "the owner of opsdeploy's tables"
            } else {
                return;
            };
            tracing::warn!(
                "connected to {shown} as {role}, {what}: it can disable the audit log's triggers and rewrite the log; \
                 run `opsdeploy state init --admin-url ...` once as an admin and connect as a runtime role that may only insert and read"
            );
        }
        Err(e) => tracing::debug!("could not check the role's privileges: {}", cause(&e)),
    }
}

/// What `opsdeploy state init` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RolesSetUp {
    pub database: String,
    pub admin: String,
    pub runtime: String,
}

/// `opsdeploy state init --admin-url`: as the admin role, creates (or
/// upgrades) the schema, takes ownership of it, and grants `runtime` only
/// what opsdeploy needs: read and append the audit log and approvals, store
/// and read bundles, hold locks. Owning nothing, the runtime role cannot
/// alter the tables or disable their triggers.
pub fn set_up_roles(admin_url: &str, runtime: &str) -> Result<RolesSetUp, StoreError> {
    let config: postgres::Config = admin_url.parse().map_err(|e| {
        StoreError::Unavailable(format!("the admin database URL is not valid: {e}"))
    })?;
    let shown = shown_url(&config);
    let mut client = open(&config, &shown)?;
    migrate(&mut client, &shown)?;
    let shown_ref = shown.as_str();
    let err = |doing: &'static str| move |e| db_error(shown_ref, doing, e);
    let mut tx = client
        .transaction()
        .map_err(err("start a transaction on"))?;
    let admin: String = tx
        .query_one("SELECT current_user::text", &[])
        .map_err(err("read the role of"))?
        .get(0);
    if admin == runtime {
        return Err(StoreError::Database {
            what: format!("could not set up roles in {shown}"),
            reason: format!(
                "the runtime role {runtime} is the admin role; opsdeploy must connect as a role that owns nothing"
            ),
        });
    }
    let exists = tx
        .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&runtime])
        .map_err(err("read the roles of"))?
        .is_some();
    if !exists {
        return Err(StoreError::Database {
            what: format!("could not set up roles in {shown}"),
            reason: format!(
                "there is no role {runtime}; create it first (CREATE ROLE {runtime} LOGIN PASSWORD '...')"
            ),
        });
    }
    let rt: String = tx
        .query_one("SELECT quote_ident($1)", &[&runtime])
        .map_err(err("quote a role name in"))?
        .get(0);
    // Everything opsdeploy created belongs to the admin (whoever connected first).
    let tables: Vec<String> = tx
        .query(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = 'opsdeploy' AND c.relkind = 'r'",
            &[],
        )
        .map_err(err("list the tables of"))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut sql = String::from(
        "ALTER SCHEMA opsdeploy OWNER TO CURRENT_USER;
         ALTER FUNCTION opsdeploy.refuse_change() OWNER TO CURRENT_USER;\n",
    );
    for t in &tables {
        sql.push_str(&format!(
            "ALTER TABLE opsdeploy.{t} OWNER TO CURRENT_USER;\n"
        ));
    }
    sql.push_str(&format!(
        "REVOKE ALL ON SCHEMA opsdeploy FROM {rt};
         GRANT USAGE ON SCHEMA opsdeploy TO {rt};
         REVOKE ALL ON ALL TABLES IN SCHEMA opsdeploy FROM {rt};
         GRANT SELECT ON opsdeploy.schema_version TO {rt};
         GRANT SELECT, INSERT ON opsdeploy.audit_log, opsdeploy.approvals, opsdeploy.bundles TO {rt};
         GRANT SELECT, INSERT, UPDATE ON opsdeploy.bundle_files TO {rt};
         GRANT SELECT, INSERT, UPDATE, DELETE ON opsdeploy.locks TO {rt};"
    ));
    tx.batch_execute(&sql)
        .map_err(err("grant the runtime role's rights in"))?;
    tx.commit().map_err(err("commit the roles of"))?;
    Ok(RolesSetUp {
        database: shown_ref.to_string(),
        admin,
        runtime: runtime.to_string(),
    })
}

/// Every file under `dir`, relative, with its content.
fn collect_files(
    root: &Path,
    dir: &Path,
    out: &mut Vec<(String, Vec<u8>)>,
) -> Result<(), StoreError> {
    let entries = std::fs::read_dir(dir).map_err(|e| StoreError::io("read", dir, e))?;
    for entry in entries {
        let path = entry.map_err(|e| StoreError::io("read", dir, e))?.path();
        if path.is_dir() {
            collect_files(root, &path, out)?;
        } else {
            let bytes = std::fs::read(&path).map_err(|e| StoreError::io("read", &path, e))?;
            let rel = path.strip_prefix(root).unwrap_or(&path);
            out.push((rel.to_string_lossy().into_owned(), bytes));
        }
    }
    Ok(())
}

/// The advisory lock key of an environment: stable across versions and
/// machines (not PostgreSQL's hash functions, which may change).
fn lock_key(environment: &str) -> i64 {
    let hash = Sha256::digest(format!("opsdeploy environment lock\0{environment}"));
    i64::from_be_bytes(hash[..8].try_into().expect("8 bytes"))
}

const HOLDER_COLUMNS: &str = "l.actor, l.host, l.pid, l.since, l.purpose";

/// Whether backend `pid` (an SQL expression) holds the environment lock whose
/// key is `key` (a parameter): a bigint key shows in pg_locks as classid =
/// high half, objid = low half.
fn held_by(pid: &str, key: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM pg_locks k
          WHERE k.locktype = 'advisory' AND k.granted AND k.objsubid = 1
            AND k.pid = {pid}
            AND k.database = (SELECT oid FROM pg_database WHERE datname = current_database())
            AND ((k.classid::bigint << 32) | k.objid::bigint) = {key})"
    )
}

fn holder_from(row: &postgres::Row) -> LockHolder {
    LockHolder {
        actor: row.get(0),
        host: row.get(1),
        pid: row.get::<_, i64>(2) as u32,
        since: row.get(3),
        purpose: row.get(4),
    }
}

fn query_holder(
    client: &mut impl GenericClient,
    environment: &str,
    held: bool,
) -> Result<Option<LockHolder>, postgres::Error> {
    let sql = format!(
        "SELECT {HOLDER_COLUMNS} FROM opsdeploy.locks l WHERE l.environment = $1 AND {}{}",
        if held { "" } else { "NOT " },
        held_by("l.backend_pid", "$2")
    );
    Ok(client
        .query_opt(&sql, &[&environment, &lock_key(environment)])?
        .as_ref()
        .map(holder_from))
}

/// An environment's advisory lock and the connection holding it.
struct PgLock {
    client: Client,
    environment: String,
    took_over: Option<LockHolder>,
}

impl LockGuard for PgLock {
    fn took_over_from(&self) -> Option<&LockHolder> {
        self.took_over.as_ref()
    }

    fn still_held(&mut self) -> Result<(), StoreError> {
        let lost = |reason: String| StoreError::Database {
            what: format!("lost the lock on \"{}\"", self.environment),
            reason,
        };
        // On the lock's own connection: a closed connection is a lost lock.
        let held: bool = self
            .client
            .query_one(
                &format!("SELECT {}", held_by("pg_backend_pid()", "$1")),
                &[&lock_key(&self.environment)],
            )
            .map(|row| row.get(0))
            .map_err(|e| lost(format!("its connection failed: {}", cause(&e))))?;
        if held {
            Ok(())
        } else {
            Err(lost("the server no longer holds it".into()))
        }
    }
}

impl Drop for PgLock {
    fn drop(&mut self) {
        // No row means released cleanly; then the lock goes (and with the
        // connection anyway, should the unlock not get through).
        let released = self
            .client
            .execute(
                "DELETE FROM opsdeploy.locks WHERE environment = $1 AND backend_pid = pg_backend_pid()",
                &[&self.environment],
            )
            .and_then(|_| {
                self.client.execute(
                    "SELECT pg_advisory_unlock($1)",
                    &[&lock_key(&self.environment)],
                )
            });
        if let Err(e) = released {
            tracing::warn!(
                "could not release the lock on \"{}\" cleanly: {}; the server releases it with the connection",
                self.environment,
                cause(&e)
            );
        }
    }
}

impl Store for PgStore {
    fn append(&self, new: NewEntry) -> Result<Entry, StoreError> {
        let entry = {
            let mut client = self.client();
            let mut tx = client
                .transaction()
                .map_err(self.err("start a transaction on"))?;
            lock_log(&mut tx).map_err(self.err("lock the audit log of"))?;
            let (seq, prev) = head(&mut tx).map_err(self.err("read the audit log of"))?;
            let (entry, line) = audit::seal(new, seq + 1, now_rfc3339(), &prev);
            insert_entry(&mut tx, &entry, &line).map_err(self.err("append to the audit log of"))?;
            tx.commit().map_err(self.err("commit an audit entry to"))?;
            entry
        };
        Ok(entry)
    }

    fn entries(&self) -> Result<Vec<Entry>, StoreError> {
        self.lines()?
            .iter()
            .enumerate()
            .map(|(i, line)| {
                audit::parse_line(line).map_err(|reason| StoreError::Damaged {
                    path: self.describe(),
                    position: i + 1,
                    reason,
                })
            })
            .collect()
    }

    fn verify(&self) -> Result<Verification, StoreError> {
        let lines = self.lines()?;
        Ok(audit::verify(lines.iter().map(String::as_str)))
    }

    fn lock(
        &self,
        environment: &str,
        holder: &LockHolder,
        wait: Duration,
    ) -> Result<Box<dyn LockGuard>, StoreError> {
        let key = lock_key(environment);
        // The lock lives as long as this connection, which sits idle while
        // terraform or a monitor window runs: probe a dead peer within
        // minutes, and keep the server's idle-session timeout (PostgreSQL
        // 14+) from closing it.
        let mut config = self.config.clone();
        config.keepalives_idle(config.get_keepalives_idle().min(LOCK_KEEPALIVE));
        let mut client = open(&config, &self.shown)?;
        if let Err(e) = client.batch_execute("SET idle_session_timeout = 0") {
            tracing::debug!(
                "idle_session_timeout not set on the lock connection: {}",
                cause(&e)
            );
        }
        let err = self.err("take a lock in");
        let started = Instant::now();
        let got: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
            .map_err(&err)?
            .get(0);
        if !got {
            let current = query_holder(&mut client, environment, true).map_err(&err)?;
            let locked = |current: Option<LockHolder>, waited| {
                StoreError::locked(environment, current, waited)
            };
            if wait.is_zero() {
                return Err(locked(current, Duration::ZERO));
            }
            if let Some(h) = &current {
                tracing::warn!(
                    "waiting up to {wait:?} for {} to finish with \"{environment}\"",
                    h.describe()
                );
            }
            // The server wakes the waiter the moment the holder releases: no polling.
            client
                .batch_execute(&format!("SET lock_timeout = {}", wait.as_millis().max(1)))
                .map_err(&err)?;
            match client.execute("SELECT pg_advisory_lock($1)", &[&key]) {
                Ok(_) => {}
                Err(e) if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => {
                    let now = query_holder(&mut client, environment, true)
                        .map_err(&err)?
                        .or(current);
                    return Err(locked(now, started.elapsed()));
                }
                Err(e) => return Err(err(e)),
            }
            client.batch_execute("RESET lock_timeout").map_err(&err)?;
        }
        // A row left while the lock was free belongs to a holder that died.
        let mut tx = client.transaction().map_err(&err)?;
        let took_over = tx
            .query_opt(
                &format!("SELECT {HOLDER_COLUMNS} FROM opsdeploy.locks l WHERE l.environment = $1"),
                &[&environment],
            )
            .map_err(&err)?
            .as_ref()
            .map(holder_from);
        tx.execute(
            "INSERT INTO opsdeploy.locks (environment, actor, host, pid, since, purpose, backend_pid)
             VALUES ($1, $2, $3, $4, $5, $6, pg_backend_pid())
             ON CONFLICT (environment) DO UPDATE SET actor = EXCLUDED.actor, host = EXCLUDED.host,
                 pid = EXCLUDED.pid, since = EXCLUDED.since, purpose = EXCLUDED.purpose,
                 backend_pid = EXCLUDED.backend_pid",
            &[
                &environment,
                &holder.actor,
                &holder.host,
                &i64::from(holder.pid),
                &holder.since,
                &holder.purpose,
            ],
        )
        .map_err(&err)?;
        tx.commit().map_err(&err)?;
        Ok(Box::new(PgLock {
            client,
            environment: environment.to_string(),
            took_over,
        }))
    }

    fn lock_holder(&self, environment: &str) -> Result<Option<LockHolder>, StoreError> {
        query_holder(&mut *self.client(), environment, true).map_err(self.err("read the locks of"))
    }

    fn stale_lock(&self, environment: &str) -> Option<LockHolder> {
        query_holder(&mut *self.client(), environment, false)
            .inspect_err(|e| tracing::warn!("could not read the locks of {}: {e}", self.shown))
            .ok()
            .flatten()
    }

    fn bundles_dir(&self) -> PathBuf {
        self.bundles.clone()
    }

    fn publish_bundle(&self, dir: &Path, digest: &str) -> Result<(), StoreError> {
        self.store_bundle(dir, digest)
    }

    fn check_bundle_storage(&self) -> Result<(), StoreError> {
        self.keys().map(|_| ())
    }

    fn bundle_digests(&self) -> Result<Vec<String>, StoreError> {
        let rows = self
            .client()
            .query("SELECT digest FROM opsdeploy.bundles ORDER BY digest", &[])
            .map_err(self.err("read plan bundles from"))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn read_bundle_file(&self, digest: &str, rel: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = self
            .client()
            .query_opt(
                "SELECT content FROM opsdeploy.bundle_files WHERE digest = $1 AND path = $2",
                &[&digest, &rel],
            )
            .map_err(self.err("read plan bundles from"))?;
        row.map(|r| self.unseal(digest, rel, r.get(0))).transpose()
    }

    fn fetch_bundle(&self, digest: &str) -> Result<(), StoreError> {
        let err = self.err("read plan bundles from");
        let mut client = self.client();
        // A prefix names every bundle it matches, so an ambiguous one is
        // reported as such by `Bundle::open`; a few are enough to say so.
        let digests: Vec<String> = client
            .query(
                "SELECT digest FROM opsdeploy.bundles WHERE starts_with(digest, $1) ORDER BY digest LIMIT 5",
                &[&digest],
            )
            .map_err(&err)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        for d in digests {
            let target = self.bundles.join(&d);
            if target.is_dir() {
                continue;
            }
            let files = client
                .query(
                    "SELECT path, content FROM opsdeploy.bundle_files WHERE digest = $1",
                    &[&d],
                )
                .map_err(&err)?;
            std::fs::create_dir_all(&self.bundles)
                .map_err(|e| StoreError::io("create", &self.bundles, e))?;
            // Written aside, then renamed: a bundle directory is complete or absent.
            let tmp = tempfile::Builder::new()
                .prefix(".fetching-")
                .tempdir_in(&self.bundles)
                .map_err(|e| StoreError::io("create a directory in", &self.bundles, e))?;
            for row in &files {
                let rel: String = row.get(0);
                let content = self.unseal(&d, &rel, row.get(1))?;
                let path = safe_join(tmp.path(), &rel).ok_or_else(|| StoreError::Damaged {
                    path: format!("plan bundle {d} in {}", self.shown),
                    position: 0,
                    reason: format!("its file name {rel:?} leaves the bundle directory"),
                })?;
                crate::fsutil::write_atomic(&path, &content)
                    .map_err(|e| StoreError::io("write", &path, e))?;
            }
            let kept = tmp.keep();
            if let Err(e) = std::fs::rename(&kept, &target) {
                let _ = std::fs::remove_dir_all(&kept);
                // Another process wrote it out first: the same content.
                if !target.is_dir() {
                    return Err(StoreError::io("move the bundle to", &target, e));
                }
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("{} (table opsdeploy.audit_log)", self.shown)
    }
}

/// `rel` under `root`, unless it is absolute or climbs out with `..`.
fn safe_join(root: &Path, rel: &str) -> Option<PathBuf> {
    let rel = Path::new(rel);
    rel.components()
        .all(|c| matches!(c, std::path::Component::Normal(_)))
        .then(|| root.join(rel))
}

/// `postgres://user@host:port/db`, never the password.
fn shown_url(config: &postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            postgres::config::Host::Tcp(name) => name.clone(),
            postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("");
    let at = if user.is_empty() { "" } else { "@" };
    format!(
        "postgres://{user}{at}{host}:{port}/{}",
        config.get_dbname().unwrap_or(user)
    )
}

/// The innermost message: "connection refused", not "error connecting to server".
fn cause(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return db.message().to_string();
    }
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    let inner = source.to_string();
    let outer = e.to_string();
    if inner == outer {
        outer
    } else {
        format!("{outer}: {inner}")
    }
}

/// A lost connection is `Unavailable` (exit 1, "check the server"); anything
/// else the database said is named with what opsdeploy was doing.
fn db_error(shown: &str, doing: &str, e: postgres::Error) -> StoreError {
    // Class 08 is "connection exception"; 57P01..57P03 a server shutting down
    // or starting up.
    let gone = e.code().is_some_and(|c| {
        c.code().starts_with("08") || matches!(c.code(), "57P01" | "57P02" | "57P03")
    });
    if gone || e.is_closed() || e.as_db_error().is_none() {
        StoreError::Unavailable(format!("{shown}: {}", cause(&e)))
    } else {
        StoreError::Database {
            what: format!("could not {doing} {shown}"),
            reason: cause(&e),
        }
    }
}
