-- The audit log of operator actions (dpg.store.audit) and the operator role of the console.
--
-- Each row carries the hash of the row before it: hash = sha256 of the canonical encoding of
-- (prev_hash, seq, ts, actor, action, details), so `dpg audit verify` finds an edited, inserted
-- or deleted row by recomputing the chain. Appends are serialised by an advisory lock, so seq has
-- no gap and the chain never forks. The trigger below refuses UPDATE, DELETE and TRUNCATE as a
-- second line of defence only: whoever can disable it is still caught by the chain.
CREATE TABLE audit_log (
    seq       bigint      PRIMARY KEY CHECK (seq > 0),
    ts        timestamptz NOT NULL,
    actor     text        NOT NULL,
    action    text        NOT NULL,
    details   jsonb       NOT NULL,
    prev_hash text        NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
    hash      text        NOT NULL UNIQUE CHECK (hash ~ '^[0-9a-f]{64}$')
);
CREATE INDEX audit_log_action ON audit_log (action, seq);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- Operators (the console at /console, its API under /api/v1/console) are users with this role;
-- the console also demands that their two-factor authentication is on.
ALTER TABLE users ADD COLUMN role text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'operator'));
