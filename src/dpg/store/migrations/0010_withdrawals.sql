-- Withdrawals to EVM chains (dpg.chain.withdrawals). The engine's journal stays the only record of
-- balances: a request locks the funds (RequestWithdrawal), the payout debits them
-- (CompleteWithdrawal) or returns them (FailWithdrawal). These tables follow a withdrawal from the
-- request to the chain and back, for the pipeline, the signers and the user's timeline.

-- The chains custody runs on, as resolved at start (an embedded chain's vault and token addresses
-- included), so that every API process can show where to deposit.
CREATE TABLE chains (
    name          text        PRIMARY KEY,
    chain_id      bigint      NOT NULL CHECK (chain_id > 0),
    rpc_url       text        NOT NULL,
    vault         text        NOT NULL CHECK (vault ~ '^0x[0-9a-f]{40}$'),
    confirmations integer     NOT NULL CHECK (confirmations > 0),
    native_asset  text        NOT NULL,
    tokens        jsonb       NOT NULL,            -- [{"symbol", "asset", "address", "decimals"}]
    signers       jsonb       NOT NULL,            -- the vault's five signer addresses
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- A user's allow-list: withdrawals go only to these addresses.
CREATE TABLE withdrawal_addresses (
    account    numeric(20,0) NOT NULL CHECK (account > 0),
    chain      text          NOT NULL,
    address    text          NOT NULL CHECK (address ~ '^0x[0-9a-f]{40}$'),
    label      text          NOT NULL DEFAULT '',
    created_at timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (account, chain, address)
);

-- One row per withdrawal; id is the vault's withdrawal id (bytes32) and the engine's.
--   requesting  written before the RequestWithdrawal command; becomes signing once the engine
--               locked the funds (a row left here by a crash is failed by the pipeline)
--   signing     waiting for 3 signatures (policy signers, then human signers)
--   signed      3 signatures: the broadcaster sends it
--   broadcast   a transaction is in flight (replaced with a higher fee while stuck)
--   confirming  mined; waiting for the chain's confirmation depth
--   queued      time-locked by the vault (above the large threshold): executed after executable_at
--   completed   paid on the chain at depth: the engine debited the locked funds (CompleteWithdrawal)
--   failed      can never be paid (expired, cancelled, rejected): the funds were unlocked (FailWithdrawal)
CREATE TABLE withdrawals (
    id            text          PRIMARY KEY CHECK (id ~ '^0x[0-9a-f]{64}$'),
    account       numeric(20,0) NOT NULL CHECK (account > 0),
    asset         text          NOT NULL,
    amount        numeric(78,0) NOT NULL CHECK (amount > 0),
    chain         text          NOT NULL,
    chain_id      bigint        NOT NULL,
    vault         text          NOT NULL,
    token         text          NOT NULL,            -- 0x00…00 for the native coin
    to_address    text          NOT NULL CHECK (to_address ~ '^0x[0-9a-f]{40}$'),
    deadline      bigint        NOT NULL,            -- unix seconds, signed: no payout after it
    status        text          NOT NULL CHECK (status IN ('requesting', 'signing', 'signed', 'broadcast',
                                                           'confirming', 'queued', 'completed', 'failed')),
    required      integer       NOT NULL,            -- the chain's confirmation depth
    confirmations integer       NOT NULL DEFAULT 0,
    tx_hash       text,                              -- the transaction that paid (or is paying) it
    block_number  bigint,
    executable_at bigint,                            -- queued: unix seconds
    reason        text,                              -- why it failed, or why the last attempt did
    request_seq   bigint,
    done_seq      bigint,
    created_at    timestamptz   NOT NULL DEFAULT now(),
    updated_at    timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX withdrawals_account ON withdrawals (account, created_at);
CREATE INDEX withdrawals_open ON withdrawals (chain, created_at) WHERE status NOT IN ('completed', 'failed');

-- Signatures over the vault's EIP-712 Withdrawal, checked when stored (the signer's address is
-- recovered from it and must be one of the vault's signers).
CREATE TABLE withdrawal_signatures (
    withdrawal_id text        NOT NULL REFERENCES withdrawals (id),
    signer        text        NOT NULL CHECK (signer ~ '^0x[0-9a-f]{40}$'),
    signature     text        NOT NULL CHECK (signature ~ '^0x[0-9a-f]{130}$'),
    kind          text        NOT NULL CHECK (kind IN ('policy', 'human')),
    signed_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (withdrawal_id, signer)
);

-- A policy signer that declined (over a limit), or a human who rejected, and why.
CREATE TABLE withdrawal_reviews (
    withdrawal_id text        NOT NULL REFERENCES withdrawals (id),
    signer        text        NOT NULL,
    decision      text        NOT NULL CHECK (decision IN ('declined', 'rejected')),
    reason        text        NOT NULL,
    at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (withdrawal_id, signer)
);

-- Every transaction sent for a withdrawal: replacements share a nonce; whichever is mined counts.
CREATE TABLE withdrawal_transactions (
    tx_hash       text        PRIMARY KEY CHECK (tx_hash ~ '^0x[0-9a-f]{64}$'),
    withdrawal_id text        NOT NULL REFERENCES withdrawals (id),
    purpose       text        NOT NULL CHECK (purpose IN ('withdraw', 'execute')),
    sender        text        NOT NULL,
    nonce         bigint      NOT NULL,
    max_fee       numeric(78,0) NOT NULL,
    priority_fee  numeric(78,0) NOT NULL,
    raw           text        NOT NULL,
    sent_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX withdrawal_transactions_w ON withdrawal_transactions (withdrawal_id, sent_at);

-- The timeline users and operators see: one row per step.
CREATE TABLE withdrawal_events (
    withdrawal_id text        NOT NULL REFERENCES withdrawals (id),
    at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    step          text        NOT NULL,
    detail        text        NOT NULL DEFAULT ''
);
CREATE INDEX withdrawal_events_w ON withdrawal_events (withdrawal_id, at);
