-- opsdeploy team mode, schema version 1. Applied by opsdeploy at connect,
-- inside one transaction, never edited once released: a change is a new file.

-- The audit log: one row per entry. `line` is the entry exactly as hashed, so
-- `audit verify` checks the same bytes on both backends; the other columns
-- are copies for queries.
CREATE TABLE opsdeploy.audit_log (
    seq         bigint PRIMARY KEY CHECK (seq > 0),
    at          text   NOT NULL,
    kind        text   NOT NULL,
    actor       text   NOT NULL,
    environment text,
    digest      text,
    prev        text   NOT NULL,
    hash        text   NOT NULL UNIQUE,
    line        text   NOT NULL
);
CREATE INDEX audit_log_environment ON opsdeploy.audit_log (environment, kind);

-- Approvals and overrides, bound to the bundle digest they vouch for; each is
-- also an audit entry (same seq), written in the same transaction.
CREATE TABLE opsdeploy.approvals (
    seq         bigint PRIMARY KEY REFERENCES opsdeploy.audit_log (seq),
    digest      text   NOT NULL,
    kind        text   NOT NULL CHECK (kind IN ('approval', 'override')),
    environment text,
    actor       text   NOT NULL,
    at          text   NOT NULL,
    policy      text,
    reason      text,
    comment     text
);
CREATE INDEX approvals_digest ON opsdeploy.approvals (digest);

-- Append-only, enforced here and not only by opsdeploy: no UPDATE, DELETE or
-- TRUNCATE of the evidence, whoever connects.
CREATE FUNCTION opsdeploy.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'opsdeploy.% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON opsdeploy.audit_log
    FOR EACH ROW EXECUTE FUNCTION opsdeploy.refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON opsdeploy.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION opsdeploy.refuse_change();
CREATE TRIGGER approvals_append_only BEFORE UPDATE OR DELETE ON opsdeploy.approvals
    FOR EACH ROW EXECUTE FUNCTION opsdeploy.refuse_change();
CREATE TRIGGER approvals_no_truncate BEFORE TRUNCATE ON opsdeploy.approvals
    FOR EACH STATEMENT EXECUTE FUNCTION opsdeploy.refuse_change();

-- Plan bundles: the whole content, so a runner on another machine applies
-- exactly what was approved without a shared directory. The digest vouches
-- for the files (bundle.rs), wherever they were stored.
CREATE TABLE opsdeploy.bundles (
    digest      text  PRIMARY KEY,
    environment text  NOT NULL,
    planned_by  text  NOT NULL,
    created_at  text  NOT NULL,
    manifest    jsonb NOT NULL
);
CREATE TABLE opsdeploy.bundle_files (
    digest  text  NOT NULL REFERENCES opsdeploy.bundles (digest),
    path    text  NOT NULL,
    content bytea NOT NULL,
    PRIMARY KEY (digest, path)
);

-- Who holds an environment's advisory lock. The lock itself is the session
-- advisory lock; a row whose backend no longer holds it was left by a holder
-- that died (the server released its lock when its connection went).
CREATE TABLE opsdeploy.locks (
    environment text    PRIMARY KEY,
    actor       text    NOT NULL,
    host        text    NOT NULL,
    pid         bigint  NOT NULL,
    since       text    NOT NULL,
    purpose     text    NOT NULL,
    backend_pid integer NOT NULL
);
