-- Proof-of-reserves snapshots: every user's balance (available + locked) per asset at the seq of
-- the epoch's MarkEpoch command. Written by the projection follower; the trees are built from it.
CREATE TABLE por_epochs (
    epoch  bigint PRIMARY KEY,
    seq    bigint NOT NULL,
    ts     bigint NOT NULL
);

CREATE TABLE por_balances (
    epoch   bigint  NOT NULL REFERENCES por_epochs (epoch),
    asset   text    NOT NULL,
    account bigint  NOT NULL,
    balance numeric NOT NULL CHECK (balance > 0),
    PRIMARY KEY (epoch, asset, account)
);
