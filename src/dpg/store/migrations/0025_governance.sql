-- Governance on a chain (dpg.chain.govwatch): the contracts the exchange obeys, and every decision
-- of ExchangeParams the watcher has seen. The engine's journal stays the record of what changed:
-- a decision is applied by a journaled command whose reference is 'gov:<chain id>:<change id>'.

-- The governance contracts of the chain that has them (one chain), and where to read it.
CREATE TABLE gov_contracts (
    chain      text        PRIMARY KEY,
    chain_id   bigint      NOT NULL,
    rpc_url    text        NOT NULL,
    token      text        NOT NULL,
    staking    text        NOT NULL,
    governor   text        NOT NULL,
    timelock   text        NOT NULL,
    params     text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Every ExchangeParams decision, one row per (chain id, change id):
--   applied   the engine applied it (seq: the journal's command; a restart that finds it applied
--             before marks it so too, with no seq)
--   rejected  the engine refused it (reason): an operator must look at it
CREATE TABLE gov_changes (
    chain_id     bigint      NOT NULL,
    change_id    bigint      NOT NULL CHECK (change_id > 0),
    action       text        NOT NULL,               -- fees, staker_share, list, halt, resume
    market       text,
    params       jsonb       NOT NULL,               -- the decision's values, in the engine's units
    tx_hash      text        NOT NULL CHECK (tx_hash ~ '^0x[0-9a-f]{64}$'),
    block_number bigint      NOT NULL,
    status       text        NOT NULL CHECK (status IN ('applied', 'rejected')),
    seq          bigint,
    reason       text,
    seen_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chain_id, change_id)
);
