-- Custody on EVM chains (dpg.chain.watcher): each chain's deposit watcher keeps its cursor and
-- every Deposit event of its vault it has seen, so that users see their pending deposits with
-- their confirmations. The engine's journal stays the only record of balances: a deposit is
-- credited by a journaled Credit whose reference is '<chain>:<tx hash>:<log index>'.

-- The last block of each chain whose deposits are all processed (credited, refused or skipped):
-- a scan resumes after it. Its hash detects a chain that changed below it.
CREATE TABLE chain_cursors (
    chain        text        PRIMARY KEY,
    block_number bigint      NOT NULL CHECK (block_number >= -1),
    block_hash   text        CHECK (block_hash ~ '^0x[0-9a-f]{64}$'),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Every Deposit log seen, one row per (chain, transaction, log index):
--   pending   seen in the canonical chain, not yet deep enough (confirmations < required)
--   credited  credited to the account (credited_seq: the journal's command, when known)
--   orphaned  its block left the canonical chain before it was credited; never credited
--             (a re-inclusion of the same transaction is its own row, or this row again)
--   rejected  the engine refused the credit for good (reason); an operator must look at it
CREATE TABLE deposits (
    chain         text          NOT NULL,
    tx_hash       text          NOT NULL CHECK (tx_hash ~ '^0x[0-9a-f]{64}$'),
    log_index     integer       NOT NULL CHECK (log_index >= 0),
    block_number  bigint        NOT NULL CHECK (block_number >= 0),
    block_hash    text          NOT NULL CHECK (block_hash ~ '^0x[0-9a-f]{64}$'),
    deposit_id    text          NOT NULL,                  -- the vault's id of the deposit
    account       numeric(20,0) NOT NULL CHECK (account > 0),
    asset         text          NOT NULL,                  -- the DPG asset credited
    token         text          NOT NULL,                  -- the token contract; 0x00…00 for the native coin
    amount        numeric(78,0) NOT NULL CHECK (amount > 0), -- base units of the asset
    status        text          NOT NULL CHECK (status IN ('pending', 'credited', 'orphaned', 'rejected')),
    confirmations integer       NOT NULL CHECK (confirmations >= 0),
    required      integer       NOT NULL CHECK (required > 0), -- the chain's confirmation depth
    seen_at       timestamptz   NOT NULL DEFAULT now(),
    credited_at   timestamptz,
    credited_seq  bigint,
    reason        text,
    PRIMARY KEY (chain, tx_hash, log_index)
);
CREATE INDEX deposits_account ON deposits (account, seen_at);
CREATE INDEX deposits_pending ON deposits (chain, block_number) WHERE status = 'pending';
