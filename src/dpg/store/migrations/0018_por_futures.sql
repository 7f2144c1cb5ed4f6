-- Futures in the proof of reserves: per epoch, the insurance fund's balance of each asset it holds
-- (available + locked; published in the ReserveRegistry beside the root, ``tx_hash`` once sent) and
-- each perpetual's mark price, at which the users' equity in por_balances was computed.
CREATE TABLE por_insurance (
    epoch   bigint  NOT NULL REFERENCES por_epochs (epoch),
    asset   text    NOT NULL,
    balance numeric NOT NULL,
    tx_hash text,
    PRIMARY KEY (epoch, asset)
);

CREATE TABLE por_marks (
    epoch  bigint  NOT NULL REFERENCES por_epochs (epoch),
    market text    NOT NULL,
    mark   numeric NOT NULL,
    PRIMARY KEY (epoch, market)
);
