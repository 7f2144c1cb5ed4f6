-- Accounts of the trading API: users, their login sessions and their API keys (dpg.identity).
-- A user's id is their ledger account number in the engine: a positive integer, never reused.
-- Secrets are stored sealed with AES-GCM (dpg.identity.sealing.SecretBox); passwords and recovery codes
-- as argon2 hashes; session tokens as their SHA-256.

CREATE TABLE users (
    id             bigint GENERATED ALWAYS AS IDENTITY (START WITH 1 MINVALUE 1) PRIMARY KEY,
    email          text        NOT NULL UNIQUE CHECK (email = lower(email)),
    password_hash  text        NOT NULL,                 -- argon2
    totp_secret    text,                                 -- sealed base32 secret, base64; null until enrolment
    totp_enabled   boolean     NOT NULL DEFAULT false,
    recovery_codes text[]      NOT NULL DEFAULT '{}',    -- argon2 hashes of the unused one-time codes
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (id > 0),
    CHECK (NOT totp_enabled OR totp_secret IS NOT NULL)
);

CREATE TABLE sessions (
    token_hash bytea       PRIMARY KEY CHECK (octet_length(token_hash) = 32),  -- sha256(token)
    user_id    bigint      NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    ip         text        NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE api_keys (
    key          text        PRIMARY KEY CHECK (key ~ '^dpg_[A-Za-z0-9_-]{32}$'),  -- public id
    user_id      bigint      NOT NULL REFERENCES users (id),
    name         text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 64),
    secret_enc   bytea       NOT NULL,                   -- sealed HMAC secret
    permissions  text[]      NOT NULL
        CHECK (cardinality(permissions) > 0 AND permissions <@ ARRAY['read', 'trade', 'withdraw']),
    ip_allow     text[]      NOT NULL DEFAULT '{}',      -- CIDRs; empty = any address
    created_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    last_used_at timestamptz
);
CREATE INDEX api_keys_user ON api_keys (user_id, created_at);
