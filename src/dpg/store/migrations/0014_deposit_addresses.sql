-- Deposit addresses (dpg.chain.sweeper): each account's forwarder on each chain, where plain ETH
-- and token transfers arrive; the sweeper moves them into the vault, tagged with the account, and
-- the deposit watcher credits the vault's Deposit event as any other (0004_chain.sql). Nothing
-- here is a balance: these tables say what arrived, what was swept and where the scan is.

-- A chain's ForwarderFactory as checked at start: its address and the hash of the proxies'
-- creation code fix every deposit address on it (CREATE2). scanned_to: the last block whose token
-- transfers to deposit addresses are final for the sweeper (NULL before its first scan).
CREATE TABLE deposit_address_chains (
    chain          text        PRIMARY KEY,
    factory        text        NOT NULL CHECK (factory ~ '^0x[0-9a-f]{40}$'),
    implementation text        NOT NULL CHECK (implementation ~ '^0x[0-9a-f]{40}$'),
    code_hash      text        NOT NULL CHECK (code_hash ~ '^0x[0-9a-f]{64}$'),
    min_sweep      jsonb       NOT NULL,      -- {asset: base units}: less waits at the address
    scanned_to     bigint,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- An address given to an account (GET /api/v1/wallet/deposit-address): only these are watched.
-- checked: its balances were read once since it was issued (funds sent before it was watched).
CREATE TABLE deposit_addresses (
    chain      text          NOT NULL,
    account    numeric(20,0) NOT NULL CHECK (account > 0),
    address    text          NOT NULL CHECK (address ~ '^0x[0-9a-f]{40}$'),
    checked    boolean       NOT NULL DEFAULT false,
    issued_at  timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (chain, account),
    UNIQUE (chain, address)
);

-- Funds seen arriving at a deposit address, for the user's "received" until the vault's deposit
-- takes over:
--   received  at the address, not yet swept (a token transfer: its log; the native coin: the
--             address's balance, one row while it waits, tx_hash NULL)
--   swept     moved by sweep_tx (NULL: the balance left the address by someone else's sweep)
--   orphaned  its block left the chain before it was swept
CREATE TABLE deposit_arrivals (
    id           bigserial     PRIMARY KEY,
    chain        text          NOT NULL,
    address      text          NOT NULL,
    account      numeric(20,0) NOT NULL CHECK (account > 0),
    asset        text          NOT NULL,
    token        text          NOT NULL,          -- 0x00…00 for the native coin
    amount       numeric(78,0) NOT NULL CHECK (amount > 0),
    tx_hash      text          CHECK (tx_hash ~ '^0x[0-9a-f]{64}$'),
    log_index    integer,
    block_number bigint        NOT NULL,
    status       text          NOT NULL CHECK (status IN ('received', 'swept', 'orphaned')),
    sweep_tx     text,
    seen_at      timestamptz   NOT NULL DEFAULT now(),
    UNIQUE (chain, tx_hash, log_index)
);
CREATE UNIQUE INDEX deposit_arrivals_native ON deposit_arrivals (chain, address, token)
    WHERE status = 'received' AND tx_hash IS NULL;
CREATE INDEX deposit_arrivals_account ON deposit_arrivals (account, seen_at);
CREATE INDEX deposit_arrivals_open ON deposit_arrivals (chain, address) WHERE status = 'received';

-- Every sweep transaction (ForwarderFactory.sweep, signed by the broadcaster key, which pays the
-- gas), recorded before it is sent, so that a restart follows it instead of sending another:
--   sent      in flight;  mined  in a block, not yet at the chain's depth;  done  at the depth
--   reverted  mined and reverted (the funds are still at the address; retried later)
--   dropped   never mined (its nonce went to another transaction) or reorged out
CREATE TABLE deposit_sweeps (
    tx_hash      text          PRIMARY KEY CHECK (tx_hash ~ '^0x[0-9a-f]{64}$'),
    chain        text          NOT NULL,
    account      numeric(20,0) NOT NULL CHECK (account > 0),
    address      text          NOT NULL,
    tokens       jsonb         NOT NULL,          -- {token: balance seen when sent}
    sender       text          NOT NULL,
    nonce        bigint        NOT NULL,
    raw          text          NOT NULL,
    status       text          NOT NULL CHECK (status IN ('sent', 'mined', 'done', 'reverted', 'dropped')),
    block_number bigint,
    gas_used     bigint,
    sent_at      timestamptz   NOT NULL DEFAULT now(),
    updated_at   timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX deposit_sweeps_open ON deposit_sweeps (chain, address) WHERE status IN ('sent', 'mined');
