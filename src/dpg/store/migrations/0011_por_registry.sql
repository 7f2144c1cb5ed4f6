-- The ReserveRegistry the exchange publishes its proof of reserves in (dpg.por.publish.AutoPublisher):
-- one row, written when publishing starts, so that every API process can tell verifiers and browsers
-- where to read the roots. rpc_url is the chain's public JSON-RPC URL ('' = none to give out).
CREATE TABLE por_registry (
    one        boolean     PRIMARY KEY DEFAULT true CHECK (one),
    chain      text        NOT NULL,
    chain_id   bigint      NOT NULL CHECK (chain_id > 0),
    registry   text        NOT NULL CHECK (registry ~ '^0x[0-9a-f]{40}$'),
    rpc_url    text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
