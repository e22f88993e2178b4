//! Migrations: the reader over real corpus files, the expand-contract fixtures
//! and the policy through the CLI.
//!
//! The fixtures under policies/expand-contract/fixtures are generated here by
//! opsdeploy's own reader from SQL written in this file (third-party SQL is
//! read from the corpus, never copied into the repository), so what
//! `opsdeploy policy test` checks is what a real migrations directory
//! produces. The corpus files those cases were modelled on go through the
//! same fixture runner, built in memory, in
//! `corpus_migrations_keep_their_verdicts`. After changing the reader or a
//! spec, regenerate the fixtures with
//! `OPSDEPLOY_UPDATE_FIXTURES=1 cargo test --test it fixtures_are`.

use std::path::Path;

use opsdeploy::adapters::migrations::{RanOn, Source, migrations_from_sources, read_migrations};
use opsdeploy::input::InputDocument;
use policy_sdk::Section;
use policy_sdk::migration::{Run, StatementKind};
use serde_json::{Value, json};

use crate::support::{corpus, opsdeploy, repo};

/// Compares generated fixtures with the committed files of `policies/POLICY/fixtures`,
/// which holds nothing else; with `OPSDEPLOY_UPDATE_FIXTURES=1` it writes them
/// (and removes the others) instead.
pub fn check_fixtures(policy: &str, fixtures: Vec<(&str, Value)>) {
    let dir = repo().join("policies").join(policy).join("fixtures");
    let update = std::env::var_os("OPSDEPLOY_UPDATE_FIXTURES").is_some();
    let mut stale = Vec::new();
    let mut generated = Vec::new();
    for (name, fixture) in fixtures {
        let path = dir.join(format!("{name}.json"));
        let text = serde_json::to_string_pretty(&fixture).unwrap() + "\n";
        if update {
            std::fs::write(&path, &text).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(path.display().to_string());
        }
        generated.push(path);
    }
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if !generated.contains(&path) {
            if update {
                std::fs::remove_file(&path).unwrap();
            } else {
                stale.push(format!("{} (not generated)", path.display()));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "fixtures differ from what the readers build (regenerate with OPSDEPLOY_UPDATE_FIXTURES=1):\n{}",
        stale.join("\n")
    );
}

/// The text of step `n` of an eugene multi-script example: from its `-- N.sql`
/// marker to the next one, verbatim.
fn eugene_step(rel: &str, n: u32) -> String {
    let text = file(rel);
    let marker = format!("-- {n}.sql");
    let start = text
        .find(&marker)
        .unwrap_or_else(|| panic!("{rel} has no {marker}"));
    let end = text[start..]
        .find(&format!("\n-- {}.sql", n + 1))
        .map_or(text.len(), |i| start + i + 1);
    text[start..end].trim_end().to_string() + "\n"
}

/// An atlas test directory as a migrations directory: the baseline `1.sql`
/// already ran on staging, `2.sql` is pending.
fn atlas_dir(base: &str) -> Dir<'static> {
    Dir {
        files: vec![
            ("1.sql", file(&format!("{base}/1.sql"))),
            ("2.sql", file(&format!("{base}/2.sql"))),
        ],
        ran: &[("1", "staging")],
        edited: &[],
    }
}

/// Runs `opsdeploy policy eval builtin:POLICY --input INPUT`, expects a
/// denial (exit 3) and returns the human report.
pub fn eval_denial(tmp: &Path, policy: &str, input: &Path) -> String {
    let out = opsdeploy(tmp)
        .args(["policy", "eval", &format!("builtin:{policy}"), "--input"])
        .arg(input)
        .assert()
        .code(3)
        .get_output()
        .stdout
        .clone();
    String::from_utf8(out).unwrap()
}

/// Snapshot filters for a human report: module hashes, fuel and time vary.
pub fn report_filters() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"sha256 [0-9a-f]{12}", "sha256 [SHA]"),
        (r"fuel [0-9,]+ · [0-9.]+ ms", "fuel [FUEL] · [TIME] ms"),
    ]
}

fn file(rel: &str) -> String {
    std::fs::read_to_string(corpus(rel)).unwrap()
}

/// A migrations directory as (file name, text), where each ran (id → envs;
/// `edited` envs ran a different version of the file).
pub struct Dir<'a> {
    pub files: Vec<(&'a str, String)>,
    pub ran: &'a [(&'a str, &'a str)],
    pub edited: &'a [(&'a str, &'a str)],
}

pub fn migrations_section(dir: &Dir) -> Value {
    let paths: Vec<String> = dir
        .files
        .iter()
        .map(|(name, _)| format!("db/migrations/{name}"))
        .collect();
    let sources: Vec<Source> = dir
        .files
        .iter()
        .zip(&paths)
        .map(|((name, text), path)| Source {
            file_name: name,
            path,
            bytes: text.as_bytes(),
        })
        .collect();
    let mut migrations = migrations_from_sources(&sources).unwrap();
    for m in &mut migrations {
        for (_, env) in dir.ran.iter().filter(|(id, _)| *id == m.id) {
            m.ran_on.push(Run {
                environment: env.to_string().into(),
                sha256: m.sha256.clone(),
                bundle: None,
                at: Some("2025-03-01T09:00:00Z".into()),
                release_healthy: None,
            });
        }
        for (_, env) in dir.edited.iter().filter(|(id, _)| *id == m.id) {
            m.ran_on.push(Run {
                environment: env.to_string().into(),
                sha256: "0000000000000000000000000000000000000000000000000000000000000000".into(),
                bundle: None,
                at: Some("2025-02-20T09:00:00Z".into()),
                release_healthy: None,
            });
        }
    }
    serde_json::to_value(&migrations).unwrap()
}

fn fixture(
    description: &str,
    environment: Value,
    dir: &Dir,
    settings: Option<Value>,
    expect: Value,
) -> Value {
    let mut f = json!({
        "description": description,
        "input": {
            "schema_version": 1,
            "environment": environment,
            "migrations": migrations_section(dir),
        },
        "expect": expect,
    });
    if let Some(s) = settings {
        f["settings"] = s;
    }
    f
}

fn staging() -> Value {
    json!({"name": "staging", "project": "shop"})
}

fn promoted_production() -> Value {
    json!({"name": "production", "project": "shop", "promote_from": "staging"})
}

const E2_GOOD: &str = "eugene/eugene/examples/E2/good.sql";
const E2_BAD: &str = "eugene/eugene/examples/E2/bad.sql";
const E5_GOOD: &str = "eugene/eugene/examples/E5/good.sql";
const DEMO: &str = "eugene/eugene/examples/demo";

fn e5_files() -> Vec<(&'static str, String)> {
    vec![
        ("0001_create_prices.sql", eugene_step(E5_GOOD, 1)),
        ("0002_add_new_price.expand.sql", eugene_step(E5_GOOD, 2)),
        (
            "0003_backfill_new_price.expand.sql",
            eugene_step(E5_GOOD, 3),
        ),
        ("0004_swap_price.contract.sql", eugene_step(E5_GOOD, 4)),
    ]
}

fn demo_files() -> Vec<(&'static str, String)> {
    [
        "V1_1__create.sql",
        "V1_2__set_title_not_null.sql",
        "V2_1__create_authors.sql",
    ]
    .into_iter()
    .map(|n| (n, file(&format!("{DEMO}/{n}"))))
    .collect()
}

/// The cases the fixtures were first built from, on the corpus files
/// themselves (run by `corpus_migrations_keep_their_verdicts`).
fn corpus_cases() -> Vec<(&'static str, Value)> {
    let mut out = Vec::new();
    out.push((
        "eugene_e2_not_null_in_four_safe_steps_passes",
        fixture(
            "eugene E2 good.sql as four migrations: CHECK (name IS NOT NULL) NOT VALID, VALIDATE, then SET NOT NULL — safe, because the validated check already keeps NULLs out",
            staging(),
            &Dir {
                files: vec![
                    ("0001_create_authors.sql", eugene_step(E2_GOOD, 1)),
                    ("0002_check_name_not_null.sql", eugene_step(E2_GOOD, 2)),
                    ("0003_validate_check.sql", eugene_step(E2_GOOD, 3)),
                    ("0004_set_name_not_null.sql", eugene_step(E2_GOOD, 4)),
                ],
                ran: &[],
                edited: &[],
            },
            None,
            json!([]),
        ),
    ));
    out.push((
        "eugene_e2_set_not_null_before_the_deploy_is_a_contract",
        fixture(
            "eugene E2 bad.sql: SET NOT NULL on a column of an existing table tightens it: the running app's writes of NULL fail, so it waits for a contract migration",
            staging(),
            &Dir {
                files: vec![
                    ("0001_create_authors.sql", eugene_step(E2_BAD, 1)),
                    ("0002_set_name_not_null.sql", eugene_step(E2_BAD, 2)),
                ],
                ran: &[("0001_create_authors", "staging")],
                edited: &[],
            },
            None,
            json!([{"rule": "contract-before-deploy", "severity": "deny",
                    "path": "db/migrations/0002_set_name_not_null.sql", "line": 3,
                    "message_contains": "SET NOT NULL authors.name"}]),
        ),
    ));
    out.push((
        "eugene_e5_expand_and_contract_in_one_release_is_denied",
        fixture(
            "eugene E5 good.sql as expand/expand/contract migrations shipped in ONE release: the NOT NULL check on new_price, which the running app never writes, runs before the deploy; dropping prices.price completes the expand of the same release (and the rename swaps a column in place)",
            staging(),
            &Dir {
                files: e5_files(),
                ran: &[("0001_create_prices", "staging")],
                edited: &[],
            },
            None,
            json!([
                {"rule": "contract-before-deploy", "severity": "deny",
                 "path": "db/migrations/0003_backfill_new_price.expand.sql", "line": 4,
                 "message_contains": "check_new_price_not_null"},
                {"rule": "contract-same-release", "severity": "deny",
                 "path": "db/migrations/0004_swap_price.contract.sql", "line": 3,
                 "message_contains": "this release expands (ADD COLUMN prices.new_price at db/migrations/0002_add_new_price.expand.sql:3)"},
                {"rule": "breaking-change", "path": "db/migrations/0004_swap_price.contract.sql", "line": 8,
                 "message_contains": "RENAME COLUMN prices.new_price"}
            ]),
        ),
    ));
    out.push((
        "eugene_e5_contract_in_the_next_release_may_drop",
        fixture(
            "eugene E5 good.sql, contract step alone in the next release: dropping the old column is fine now; the in-place rename that follows is still breaking",
            staging(),
            &Dir {
                files: e5_files(),
                ran: &[
                    ("0001_create_prices", "staging"),
                    ("0002_add_new_price", "staging"),
                    ("0003_backfill_new_price", "staging"),
                ],
                edited: &[],
            },
            None,
            json!([{"rule": "breaking-change", "line": 8,
                    "path": "db/migrations/0004_swap_price.contract.sql"}]),
        ),
    ));
    let atlas_idx = "atlas/exploded/postgres/cli-migrate-lint-concurrent-idx/migrations2";
    out.push((
        "atlas_dropping_a_plain_index_is_no_contract_and_index_locks_warn",
        fixture(
            "atlas concurrent-idx migrations2: i1 is not unique, so dropping it backs no ON CONFLICT and may run before the deploy; both index changes without CONCURRENTLY block writes (atlas PG101/PG102)",
            staging(),
            &atlas_dir(atlas_idx),
            None,
            json!([
                {"rule": "index-not-concurrent", "severity": "warn", "path": "db/migrations/2.sql", "line": 1,
                 "message_contains": "DROP INDEX `i1` without CONCURRENTLY"},
                {"rule": "index-not-concurrent", "severity": "warn", "path": "db/migrations/2.sql", "line": 2,
                 "message_contains": "blocks writes to `t`"}
            ]),
        ),
    ));
    let atlas_bc = "atlas/exploded/postgres/cli-migrate-lint-incompatible/migrations3";
    out.push((
        "atlas_renames_kept_compatible_pass_a_plain_rename_is_denied",
        fixture(
            "atlas incompatible migrations3: a table rename with a compatibility view and a column rename with the old column re-added are expand; renaming cards.id in place is breaking (atlas BC102 at L9)",
            staging(),
            &atlas_dir(atlas_bc),
            None,
            json!([{"rule": "breaking-change", "path": "db/migrations/2.sql", "line": 9,
                    "message_contains": "RENAME COLUMN cards.id"}]),
        ),
    ));
    out.push((
        "flyway_demo_set_not_null_and_a_check_before_the_deploy_are_contracts",
        fixture(
            "eugene's Flyway-style demo, V1_2 pending on staging: SET NOT NULL and a CHECK on the existing books.title tighten what the running app may write, so they wait for a contract migration; the CHECK without NOT VALID also scans the table",
            staging(),
            &Dir {
                files: demo_files()[..2].to_vec(),
                ran: &[("V1_1__create", "staging")],
                edited: &[],
            },
            None,
            json!([
                {"rule": "contract-before-deploy", "path": "db/migrations/V1_2__set_title_not_null.sql", "line": 3},
                {"rule": "contract-before-deploy", "path": "db/migrations/V1_2__set_title_not_null.sql", "line": 6},
                {"rule": "constraint-validation", "severity": "warn",
                 "path": "db/migrations/V1_2__set_title_not_null.sql", "line": 6}
            ]),
        ),
    ));
    out.push((
        "production_runs_only_migrations_staging_ran",
        fixture(
            "eugene's Flyway-style demo promoted to production: V2_1 has not run on staging yet, so production may not run it (its foreign key without NOT VALID also warns)",
            promoted_production(),
            &Dir {
                files: demo_files(),
                ran: &[
                    ("V1_1__create", "staging"),
                    ("V1_1__create", "production"),
                    ("V1_2__set_title_not_null", "staging"),
                    ("V1_2__set_title_not_null", "production"),
                ],
                edited: &[],
            },
            None,
            json!([
                {"rule": "not-run-on-source", "severity": "deny",
                 "path": "db/migrations/V2_1__create_authors.sql",
                 "message_contains": "has not run on staging"},
                {"rule": "constraint-validation", "severity": "warn",
                 "path": "db/migrations/V2_1__create_authors.sql", "line": 10}
            ]),
        ),
    ));
    out.push((
        "migration_edited_after_it_ran_is_denied",
        fixture(
            "V1_1__create.sql ran on staging as another version of the file: editing a migration after it ran anywhere is denied, wherever it is deployed next",
            promoted_production(),
            &Dir {
                files: demo_files()[..1].to_vec(),
                ran: &[("V1_1__create", "production")],
                edited: &[("V1_1__create", "staging")],
            },
            None,
            json!([{"rule": "changed-after-run", "path": "db/migrations/V1_1__create.sql",
                    "message_contains": "changed after it ran on staging at 2025-02-20T09:00:00Z"}]),
        ),
    ));
    out.push((
        "drop_index_variants_parse_and_only_the_locking_ones_warn",
        fixture(
            "squawk's DROP INDEX grammar file as a contract migration: every variant is read, DROP INDEX CONCURRENTLY [IF EXISTS] included; the ones without CONCURRENTLY lock their table",
            staging(),
            &Dir {
                files: vec![(
                    "0007_drop_indexes.contract.sql",
                    file("squawk/crates/squawk_parser/tests/data/ok/drop_index.sql"),
                )],
                ran: &[],
                edited: &[],
            },
            Some(json!({"hazards": "warn"})),
            json!([
                {"rule": "index-not-concurrent", "line": 2},
                {"rule": "index-not-concurrent", "line": 4},
                {"rule": "index-not-concurrent", "line": 8},
                {"rule": "index-not-concurrent", "line": 10}
            ]),
        ),
    ));
    out
}

/// The corpus cases, built in memory and run by the fixture runner against
/// the built-in policy: real-world SQL keeps the verdicts the fixtures
/// written here (`expand_contract_fixtures`) check on our own.
#[test]
fn corpus_migrations_keep_their_verdicts() {
    run_in_memory("expand-contract", corpus_cases());
}

/// Runs fixtures that may not be committed (they embed corpus text) through
/// `policy test`'s fixture runner against the built-in `policy`.
pub fn run_in_memory(policy: &str, cases: Vec<(&str, Value)>) {
    use opsdeploy::authoring::fixtures::run_fixture;
    use opsdeploy::engine::{Limits, ModuleSource, PolicyEngine};
    let engine = PolicyEngine::new(None).unwrap();
    let module = engine
        .load(&ModuleSource::builtin(policy).unwrap())
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut failed = Vec::new();
    for (name, case) in cases {
        let file = tmp.path().join(format!("{name}.json"));
        std::fs::write(&file, case.to_string()).unwrap();
        let result = run_fixture(&engine, &module, &file, &Limits::default()).unwrap();
        if let Some(failure) = result.failure {
            failed.push(format!("{name}:\n{failure}"));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

// Our own migrations: each case exercises what the corpus case of the same
// shape does (same rules, severities and lines), on SQL written here.

const CUSTOMERS: &str = "\
CREATE TABLE customers (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    email text
);
";

/// `email` made NOT NULL through a NOT VALID check, validated, then trusted.
fn customers_not_null_in_steps() -> Vec<(&'static str, String)> {
    [
        ("0001_create_customers.sql", CUSTOMERS),
        (
            "0002_check_email_present.sql",
            "SET lock_timeout = '3s';
ALTER TABLE customers
    ADD CONSTRAINT customers_email_present
        CHECK (email IS NOT NULL) NOT VALID;
",
        ),
        (
            "0003_validate_email_present.sql",
            "SET lock_timeout = '3s';
ALTER TABLE customers
    VALIDATE CONSTRAINT customers_email_present;
",
        ),
        (
            "0004_set_email_not_null.sql",
            "SET lock_timeout = '3s';
-- the validated check already keeps NULLs out: no scan, no surprise
ALTER TABLE customers
    ALTER COLUMN email SET NOT NULL;
",
        ),
    ]
    .into_iter()
    .map(|(name, sql)| (name, sql.to_string()))
    .collect()
}

/// `invoices.amount` (numeric) replaced by `amount_cents` (bigint): add,
/// backfill and check in two expand migrations, drop and rename in a contract.
fn invoices_swap() -> Vec<(&'static str, String)> {
    [
        (
            "0001_create_invoices.sql",
            "CREATE TABLE invoices (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    amount numeric NOT NULL
);
",
        ),
        (
            "0002_add_amount_cents.expand.sql",
            "-- expand: the column the next app version writes
SET lock_timeout = '3s';
ALTER TABLE invoices
    ADD COLUMN amount_cents bigint;
",
        ),
        (
            "0003_backfill_amount_cents.expand.sql",
            "-- expand: copy what the old column holds
UPDATE invoices SET amount_cents = (amount * 100)::bigint;
SET lock_timeout = '3s';
ALTER TABLE invoices
    ADD CONSTRAINT invoices_amount_cents_present
        CHECK (amount_cents IS NOT NULL) NOT VALID;
",
        ),
        (
            "0004_swap_amount.contract.sql",
            "-- contract: the old column goes once no app version reads it
SET lock_timeout = '3s';
ALTER TABLE invoices
    VALIDATE CONSTRAINT invoices_amount_cents_present,
    DROP COLUMN amount;
-- the new column takes the old name in the same transaction,
-- so no query ever sees the table without an amount
ALTER TABLE invoices
    RENAME COLUMN amount_cents TO amount;
",
        ),
    ]
    .into_iter()
    .map(|(name, sql)| (name, sql.to_string()))
    .collect()
}

/// A baseline `1.sql` that already ran on staging and a pending `2.sql`.
fn baseline_and_pending(one: &str, two: &str) -> Dir<'static> {
    Dir {
        files: vec![("1.sql", one.to_string()), ("2.sql", two.to_string())],
        ran: &[("1", "staging")],
        edited: &[],
    }
}

/// A Flyway-style history of a product catalogue, also the promotion
/// fixtures' migrations: a table, a tightening of it, a new table and a
/// foreign key to it.
pub fn catalogue_files() -> Vec<(&'static str, String)> {
    [
        (
            "V1_1__create_products.sql",
            "CREATE TABLE products (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name text
);
",
        ),
        (
            "V1_2__require_product_name.sql",
            "SET lock_timeout = '3s';

ALTER TABLE products
    ALTER COLUMN name SET NOT NULL;

ALTER TABLE products
    ADD CONSTRAINT products_name_short
        CHECK (char_length(name) <= 200);
",
        ),
        (
            "V2_1__create_suppliers.sql",
            "CREATE TABLE suppliers (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    company text NOT NULL,
    country text
);

ALTER TABLE products
    ADD COLUMN supplier_id bigint;

ALTER TABLE products
    ADD CONSTRAINT products_supplier_fk
        FOREIGN KEY (supplier_id)
        REFERENCES suppliers (id);
",
        ),
    ]
    .into_iter()
    .map(|(name, sql)| (name, sql.to_string()))
    .collect()
}

/// Every form of DROP INDEX the reader knows, one per statement.
const DROP_INDEX_FORMS: &str = "-- the forms of DROP INDEX, with and without CONCURRENTLY
DROP INDEX orders_old_idx;

DROP INDEX shop.orders_legacy_idx;

DROP INDEX CONCURRENTLY IF EXISTS orders_a_idx, orders_b_idx, orders_d_idx CASCADE;

DROP INDEX IF EXISTS orders_c_idx RESTRICT;

DROP INDEX IF EXISTS \"Orders_Quoted_idx\";

DROP INDEX CONCURRENTLY IF EXISTS \"Orders_Quoted_idx\";
";

fn expand_contract_fixtures() -> Vec<(&'static str, Value)> {
    let steps = customers_not_null_in_steps();
    let swap = invoices_swap();
    let catalogue = catalogue_files();
    vec![
        (
            "not_null_through_a_validated_check_in_four_steps_passes",
            fixture(
                "a new table's column made NOT NULL in four migrations: CHECK (email IS NOT NULL) NOT VALID, VALIDATE, then SET NOT NULL — safe, because the validated check already keeps NULLs out",
                staging(),
                &Dir {
                    files: steps,
                    ran: &[],
                    edited: &[],
                },
                None,
                json!([]),
            ),
        ),
        (
            "set_not_null_before_the_deploy_is_a_contract",
            fixture(
                "SET NOT NULL on a column of an existing table tightens it: the running app's writes of NULL fail, so it waits for a contract migration",
                staging(),
                &Dir {
                    files: vec![
                        ("0001_create_customers.sql", CUSTOMERS.to_string()),
                        (
                            "0002_set_email_not_null.sql",
                            "-- every customer has an email from now on
SET lock_timeout = '3s';
ALTER TABLE customers
    ALTER COLUMN email SET NOT NULL;
"
                            .to_string(),
                        ),
                    ],
                    ran: &[("0001_create_customers", "staging")],
                    edited: &[],
                },
                None,
                json!([{"rule": "contract-before-deploy", "severity": "deny",
                        "path": "db/migrations/0002_set_email_not_null.sql", "line": 3,
                        "message_contains": "SET NOT NULL customers.email"}]),
            ),
        ),
        (
            "expand_and_contract_in_one_release_is_denied",
            fixture(
                "a column swap as expand/expand/contract migrations shipped in ONE release: the NOT NULL check on amount_cents, which the running app never writes, runs before the deploy; dropping invoices.amount completes the expand of the same release (and the rename swaps a column in place)",
                staging(),
                &Dir {
                    files: swap.clone(),
                    ran: &[("0001_create_invoices", "staging")],
                    edited: &[],
                },
                None,
                json!([
                    {"rule": "contract-before-deploy", "severity": "deny",
                     "path": "db/migrations/0003_backfill_amount_cents.expand.sql", "line": 4,
                     "message_contains": "invoices_amount_cents_present"},
                    {"rule": "contract-same-release", "severity": "deny",
                     "path": "db/migrations/0004_swap_amount.contract.sql", "line": 3,
                     "message_contains": "this release expands (ADD COLUMN invoices.amount_cents at db/migrations/0002_add_amount_cents.expand.sql:3)"},
                    {"rule": "breaking-change", "path": "db/migrations/0004_swap_amount.contract.sql", "line": 8,
                     "message_contains": "RENAME COLUMN invoices.amount_cents"}
                ]),
            ),
        ),
        (
            "contract_in_the_next_release_may_drop",
            fixture(
                "the same column swap with its contract step alone in the next release: dropping the old column is fine now; the in-place rename that follows is still breaking",
                staging(),
                &Dir {
                    files: swap,
                    ran: &[
                        ("0001_create_invoices", "staging"),
                        ("0002_add_amount_cents", "staging"),
                        ("0003_backfill_amount_cents", "staging"),
                    ],
                    edited: &[],
                },
                None,
                json!([{"rule": "breaking-change", "line": 8,
                        "path": "db/migrations/0004_swap_amount.contract.sql"}]),
            ),
        ),
        (
            "dropping_a_plain_index_is_no_contract_and_index_locks_warn",
            fixture(
                "orders_placed_at is not unique, so dropping it backs no ON CONFLICT and may run before the deploy; both index changes without CONCURRENTLY block writes",
                staging(),
                &baseline_and_pending(
                    "CREATE TABLE orders (id bigint, placed_at timestamptz);
CREATE INDEX orders_placed_at ON orders (placed_at);
",
                    "DROP INDEX orders_placed_at;
CREATE INDEX orders_placed_at_id ON orders (placed_at, id);
",
                ),
                None,
                json!([
                    {"rule": "index-not-concurrent", "severity": "warn", "path": "db/migrations/2.sql", "line": 1,
                     "message_contains": "DROP INDEX `orders_placed_at` without CONCURRENTLY"},
                    {"rule": "index-not-concurrent", "severity": "warn", "path": "db/migrations/2.sql", "line": 2,
                     "message_contains": "blocks writes to `orders`"}
                ]),
            ),
        ),
        (
            "renames_kept_compatible_pass_a_plain_rename_is_denied",
            fixture(
                "a table rename with a compatibility view and a column rename with the old column re-added are expand; renaming coupons.id in place is breaking",
                staging(),
                &baseline_and_pending(
                    "CREATE TABLE accounts (id int);
CREATE TABLE invoices (id int);
CREATE TABLE coupons (id int);
",
                    "ALTER TABLE accounts RENAME TO customer_accounts;
CREATE VIEW accounts AS SELECT * FROM customer_accounts;
ALTER TABLE invoices RENAME COLUMN id TO invoice_id;
/*
The old column comes back as a plain column: the running app keeps
reading and writing it while the next version moves to the new name.
*/
ALTER TABLE invoices ADD COLUMN id int DEFAULT 0;
ALTER TABLE coupons RENAME COLUMN id TO code;
ALTER TABLE coupons ADD COLUMN label text;
",
                ),
                None,
                json!([{"rule": "breaking-change", "path": "db/migrations/2.sql", "line": 9,
                        "message_contains": "RENAME COLUMN coupons.id"}]),
            ),
        ),
        (
            "set_not_null_and_a_check_before_the_deploy_are_contracts",
            fixture(
                "V1_2 pending on staging: SET NOT NULL and a CHECK on the existing products.name tighten what the running app may write, so they wait for a contract migration; the CHECK without NOT VALID also scans the table",
                staging(),
                &Dir {
                    files: catalogue[..2].to_vec(),
                    ran: &[("V1_1__create_products", "staging")],
                    edited: &[],
                },
                None,
                json!([
                    {"rule": "contract-before-deploy", "path": "db/migrations/V1_2__require_product_name.sql", "line": 3},
                    {"rule": "contract-before-deploy", "path": "db/migrations/V1_2__require_product_name.sql", "line": 6},
                    {"rule": "constraint-validation", "severity": "warn",
                     "path": "db/migrations/V1_2__require_product_name.sql", "line": 6}
                ]),
            ),
        ),
        (
            "production_runs_only_migrations_staging_ran",
            fixture(
                "promoted to production: V2_1 has not run on staging yet, so production may not run it (its foreign key without NOT VALID also warns)",
                promoted_production(),
                &Dir {
                    files: catalogue.clone(),
                    ran: &[
                        ("V1_1__create_products", "staging"),
                        ("V1_1__create_products", "production"),
                        ("V1_2__require_product_name", "staging"),
                        ("V1_2__require_product_name", "production"),
                    ],
                    edited: &[],
                },
                None,
                json!([
                    {"rule": "not-run-on-source", "severity": "deny",
                     "path": "db/migrations/V2_1__create_suppliers.sql",
                     "message_contains": "has not run on staging"},
                    {"rule": "constraint-validation", "severity": "warn",
                     "path": "db/migrations/V2_1__create_suppliers.sql", "line": 10}
                ]),
            ),
        ),
        (
            "migration_edited_after_it_ran_is_denied",
            fixture(
                "V1_1__create_products.sql ran on staging as another version of the file: editing a migration after it ran anywhere is denied, wherever it is deployed next",
                promoted_production(),
                &Dir {
                    files: catalogue[..1].to_vec(),
                    ran: &[("V1_1__create_products", "production")],
                    edited: &[("V1_1__create_products", "staging")],
                },
                None,
                json!([{"rule": "changed-after-run", "path": "db/migrations/V1_1__create_products.sql",
                        "message_contains": "changed after it ran on staging at 2025-02-20T09:00:00Z"}]),
            ),
        ),
        (
            "drop_index_variants_parse_and_only_the_locking_ones_warn",
            fixture(
                "every DROP INDEX form in a contract migration is read, DROP INDEX CONCURRENTLY [IF EXISTS] included; the ones without CONCURRENTLY lock their table",
                staging(),
                &Dir {
                    files: vec![(
                        "0007_drop_indexes.contract.sql",
                        DROP_INDEX_FORMS.to_string(),
                    )],
                    ran: &[],
                    edited: &[],
                },
                Some(json!({"hazards": "warn"})),
                json!([
                    {"rule": "index-not-concurrent", "line": 2},
                    {"rule": "index-not-concurrent", "line": 4},
                    {"rule": "index-not-concurrent", "line": 8},
                    {"rule": "index-not-concurrent", "line": 10}
                ]),
            ),
        ),
    ]
}

#[test]
fn fixtures_are_built_from_our_own_sql_by_the_migrations_reader() {
    check_fixtures("expand-contract", expand_contract_fixtures());
}

#[test]
fn eugene_steps_are_cut_at_their_markers_verbatim() {
    let step = eugene_step(E5_GOOD, 4);
    assert!(step.starts_with("-- 4.sql\nset local lock_timeout"));
    assert!(step.ends_with("rename column new_price to price;\n"));
    let whole = file(E5_GOOD);
    let steps: String = (1..=4)
        .map(|n| eugene_step(E5_GOOD, n))
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(steps.trim_end(), whole.trim_end());
}

#[test]
fn reading_a_real_directory_orders_classifies_and_attaches_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db/migrations");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in demo_files() {
        std::fs::write(dir.join(name), text).unwrap();
    }
    std::fs::write(
        dir.join("V2_1__create_authors.down.sql"),
        "DROP TABLE authors;",
    )
    .unwrap();
    let mut ran = RanOn::new();
    ran.insert(
        "V1_1__create".into(),
        vec![Run {
            environment: "staging".into(),
            sha256: "x".into(),
            bundle: Some("b".into()),
            at: None,
            release_healthy: None,
        }],
    );
    let ms = read_migrations(tmp.path(), "db/migrations", &ran).unwrap();
    let ids: Vec<&str> = ms.iter().map(|m| m.id.as_ref()).collect();
    assert_eq!(
        ids,
        vec![
            "V1_1__create",
            "V1_2__set_title_not_null",
            "V2_1__create_authors"
        ]
    );
    assert_eq!(ms[0].path, "db/migrations/V1_1__create.sql");
    assert_eq!(ms[0].ran_on.len(), 1);
    assert!(ms.iter().all(|m| m.phase.is_none() && m.sha256.len() == 64));
    let kinds: Vec<(u32, StatementKind, Option<&str>)> = ms[1]
        .statements
        .iter()
        .map(|s| (s.line, s.kind, s.operation.as_deref()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (1, StatementKind::Other, Some("SET")),
            // Both tighten what `books` accepts: contracts, one rule.
            (3, StatementKind::Contract, Some("SET NOT NULL")),
            (6, StatementKind::Contract, Some("ADD CONSTRAINT")),
        ]
    );
    assert_eq!(ms[1].statements[1].table.as_deref(), Some("books"));
    assert_eq!(ms[1].statements[1].column.as_deref(), Some("title"));
}

fn write_input(dir: &Path, environment: Value, migrations: Value) -> std::path::PathBuf {
    let env_json = environment.to_string();
    let env: policy_sdk::input::Environment = serde_json::from_str(&env_json).unwrap();
    let mut doc = InputDocument::new(&env);
    doc.set(Section::Migrations, &migrations);
    let path = dir.join("input.json");
    std::fs::write(&path, doc.to_json()).unwrap();
    path
}

#[test]
fn expand_contract_denies_a_drop_before_the_deploy_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let migrations = migrations_section(&atlas_dir(
        "atlas/exploded/sqlite/cli-migrate-lint-destructive/migrations",
    ));
    let input = write_input(tmp.path(), staging(), migrations);
    let report = eval_denial(tmp.path(), "expand-contract", &input);
    insta::with_settings!({filters => report_filters()}, {
        insta::assert_snapshot!(report);
    });
}

// ---------------------------------------------------------------------------
// A hostile look: each policy on a 10,000-resource plan, within the default
// limits (figures in BENCHMARKS.md, "gates, expand-contract and promotion").

/// A `terraform` section with `n` resource changes, about 1 KiB each.
pub fn terraform_section(n: usize) -> Box<serde_json::value::RawValue> {
    let changes: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"address":"module.fleet.aws_instance.web[{i}]","module_address":"module.fleet","mode":"managed","type":"aws_instance","name":"web","index":{i},"provider_name":"registry.terraform.io/hashicorp/aws","change":{{"actions":["update"],"before":{{"ami":"ami-0123456789abcdef0","instance_type":"t3.large","tags":{{"Name":"web-{i}","team":"shop"}},"user_data":"{pad}"}},"after":{{"ami":"ami-0fedcba9876543210","instance_type":"t3.large","tags":{{"Name":"web-{i}","team":"shop"}},"user_data":"{pad}"}},"after_unknown":{{}},"before_sensitive":{{}},"after_sensitive":{{}}}}}}"#,
                pad = "x".repeat(600)
            )
        })
        .collect();
    let plan = format!(
        r#"{{"format_version":"1.2","terraform_version":"1.11.0","resource_changes":[{}]}}"#,
        changes.join(",")
    );
    let raw = serde_json::value::RawValue::from_string(plan).unwrap();
    opsdeploy::input::terraform_section("infra/production", &raw)
}

/// Evaluates a built-in policy on `doc` with the default limits, prints the
/// figures and returns the violations; fails when the policy did not complete.
pub fn evaluate_within_default_limits(
    name: &str,
    doc: &InputDocument,
) -> Vec<policy_sdk::Violation> {
    use opsdeploy::engine::{Limits, ModuleSource, Outcome, PolicyEngine};
    let engine = PolicyEngine::new(None).unwrap();
    let policy = engine.load(&ModuleSource::builtin(name).unwrap()).unwrap();
    let whole = doc.to_json().len();
    let input = doc.for_policy(policy.reads.as_deref(), None);
    let limits = Limits::default();
    let eval = engine.evaluate(&policy, &input, &limits);
    let violations = match &eval.outcome {
        Outcome::Completed { violations } => violations.clone(),
        Outcome::Failed(f) => panic!("{name} did not complete: {f:?}"),
    };
    let fuel = eval
        .fuel_used
        .expect("a completed evaluation knows its fuel");
    println!(
        "{name}: document {:.1} MiB, passed to the policy {:.1} MiB; {} violations; fuel {} ({:.2}% of {}); {:.0} ms",
        whole as f64 / (1 << 20) as f64,
        input.len() as f64 / (1 << 20) as f64,
        violations.len(),
        fuel,
        100.0 * fuel as f64 / limits.fuel as f64,
        limits.fuel,
        eval.duration_ms.as_secs_f64() * 1e3,
    );
    assert!(eval.duration_ms < limits.timeout);
    violations
}

/// `n` migration files of five statements each, alternating expand and
/// contract migrations on the same tables (every contract completes an expand
/// of the same release: the worst case for the same-release rule).
pub fn hostile_migrations(n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            let t = format!("t{}", i / 2);
            if i % 2 == 0 {
                (
                    format!("{i:05}_expand_{t}.expand.sql"),
                    format!(
                        "CREATE TABLE {t} (id bigint PRIMARY KEY, old text);\n\
                         ALTER TABLE {t} ADD COLUMN new text;\n\
                         CREATE INDEX {t}_new ON {t} (new);\n\
                         UPDATE {t} SET new = old;\n\
                         ALTER TABLE {t} ADD CONSTRAINT {t}_new_nn CHECK (new IS NOT NULL) NOT VALID;\n"
                    ),
                )
            } else {
                (
                    format!("{i:05}_contract_{t}.contract.sql"),
                    format!(
                        "ALTER TABLE {t} VALIDATE CONSTRAINT {t}_new_nn;\n\
                         ALTER TABLE {t} DROP COLUMN old;\n\
                         CREATE INDEX {t}_id ON {t} (id);\n\
                         ALTER TABLE {t} RENAME COLUMN new TO body;\n\
                         DROP INDEX CONCURRENTLY {t}_new;\n"
                    ),
                )
            }
        })
        .collect()
}

#[test]
fn expand_contract_on_a_10000_resource_plan_stays_within_default_limits() {
    let files = hostile_migrations(2_000);
    let paths: Vec<String> = files
        .iter()
        .map(|(n, _)| format!("db/migrations/{n}"))
        .collect();
    let sources: Vec<Source> = files
        .iter()
        .zip(&paths)
        .map(|((name, text), path)| Source {
            file_name: name,
            path,
            bytes: text.as_bytes(),
        })
        .collect();
    let started = std::time::Instant::now();
    let mut migrations = migrations_from_sources(&sources).unwrap();
    let statements: usize = migrations.iter().map(|m| m.statements.len()).sum();
    println!(
        "migrations reader: {} files, {statements} statements classified in {:.0} ms (test profile)",
        migrations.len(),
        started.elapsed().as_secs_f64() * 1e3
    );
    // Every other migration ran on staging, a tenth of those as another version.
    for (i, m) in migrations
        .iter_mut()
        .enumerate()
        .filter(|(i, _)| i % 2 == 0)
    {
        let sha = if i % 20 == 0 {
            "0".repeat(64)
        } else {
            m.sha256.to_string()
        };
        m.ran_on.push(Run {
            environment: "staging".into(),
            sha256: sha.into(),
            bundle: None,
            at: None,
            release_healthy: None,
        });
    }
    let env: policy_sdk::input::Environment =
        serde_json::from_str(r#"{"name":"production","project":"shop","promote_from":"staging"}"#)
            .unwrap();
    let mut doc = InputDocument::new(&env);
    doc.set_raw(Section::Terraform, terraform_section(10_000));
    doc.set(Section::Migrations, &migrations);
    let v = evaluate_within_default_limits("expand-contract", &doc);
    let count = |rule: &str| v.iter().filter(|x| x.rule == rule).count();
    assert_eq!(count("contract-same-release"), 1_000);
    assert_eq!(count("breaking-change"), 1_000);
    assert_eq!(count("not-run-on-source"), 1_000);
    assert_eq!(count("changed-after-run"), 100);
}
