-- Identity (dpg.identity, dpg.mail): one-time TOTP steps, attempt counters shared by every API
-- process, look-alike e-mail addresses, e-mail verification and password reset links, the outbox.

-- The last TOTP time step (unix time // 30) accepted for the user: a code of that step or an
-- earlier one is never accepted again. Advanced with a conditional UPDATE, so concurrent uses of
-- one code (in any API process) succeed once.
ALTER TABLE users ADD COLUMN totp_last_step bigint;

-- The address's skeleton (Unicode TR39 for Latin, Greek and Cyrillic look-alikes, after NFKC and
-- case folding; dpg.identity.emails.email_skeleton): two addresses that look alike have one skeleton, and
-- only one of them can have an account. Addresses stored before this migration were lower-cased
-- ASCII in practice: their skeleton is the address itself.
ALTER TABLE users ADD COLUMN email_skeleton text;
UPDATE users SET email_skeleton = email;
ALTER TABLE users ALTER COLUMN email_skeleton SET NOT NULL;
ALTER TABLE users ADD CONSTRAINT users_email_skeleton_key UNIQUE (email_skeleton);

-- When the user followed a verification link sent to ``email`` (null: not verified). Users who
-- existed before e-mail verification keep their rights: they count as verified.
ALTER TABLE users ADD COLUMN email_verified_at timestamptz;
UPDATE users SET email_verified_at = created_at;

-- Attempts per subject in a fixed window (password per e-mail and client address, password per
-- e-mail from addresses never used by the account, TOTP per user, mails per user or address).
-- An attempt is reserved (counted) before it is checked, in one statement, so concurrent
-- attempts cannot all pass a limit they would each read as not reached.
CREATE TABLE auth_attempts (
    subject      text        PRIMARY KEY,
    window_start timestamptz NOT NULL,
    attempts     integer     NOT NULL CHECK (attempts > 0)
);
CREATE INDEX auth_attempts_window ON auth_attempts (window_start);

-- Single-use links mailed to a user: 'verify' (the e-mail address) and 'reset' (the password).
-- Only the SHA-256 of a token is stored.
CREATE TABLE email_tokens (
    token_hash bytea       PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    user_id    bigint      NOT NULL REFERENCES users (id),
    purpose    text        NOT NULL CHECK (purpose IN ('verify', 'reset')),
    email      text        NOT NULL,  -- the address the link was sent to
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX email_tokens_user ON email_tokens (user_id, purpose);

-- Every message the exchange sends (dpg.mail). Without DPG_SMTP_URL the outbox is the delivery:
-- status 'kept', read with ``dpg mail``. With SMTP: 'queued', then 'sent' or 'failed' (error).
CREATE TABLE outbox (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    to_address text        NOT NULL,
    subject    text        NOT NULL,
    body       text        NOT NULL,
    status     text        NOT NULL CHECK (status IN ('kept', 'queued', 'sent', 'failed')),
    error      text,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz
);
CREATE INDEX outbox_to ON outbox (to_address, id);
