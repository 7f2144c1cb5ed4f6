-- Proof-of-reserves publications: per (epoch, asset) what was published in the ReserveRegistry
-- (root, total, depth, the snapshot block, the tree's CID, the transaction), the operator's own
-- tree (gzip'd JSON with each account's index and salt, from which users' proofs are served),
-- and the reserves report of each epoch.
CREATE TABLE por_publications (
    epoch               bigint  NOT NULL REFERENCES por_epochs (epoch),
    asset               text    NOT NULL,
    chain_id            bigint  NOT NULL,
    registry            text    NOT NULL,
    root                text    NOT NULL,
    total               numeric NOT NULL CHECK (total >= 0),
    depth               integer NOT NULL,
    leaves              integer NOT NULL,
    cid                 text    NOT NULL,
    snapshot_block      bigint  NOT NULL,
    snapshot_block_hash text    NOT NULL,
    tx_hash             text    NOT NULL,
    gas_used            bigint  NOT NULL,
    published_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (epoch, asset)
);

CREATE TABLE por_trees (
    epoch  bigint NOT NULL,
    asset  text   NOT NULL,
    tree   bytea  NOT NULL,
    PRIMARY KEY (epoch, asset),
    FOREIGN KEY (epoch, asset) REFERENCES por_publications (epoch, asset)
);

CREATE TABLE por_reports (
    epoch   bigint PRIMARY KEY REFERENCES por_epochs (epoch),
    report  jsonb  NOT NULL,
    ok      boolean NOT NULL
);
