-- Perpetual futures' history: every change of a position, every funding, every liquidation (the
-- payments themselves are ledger_entries with the cause 'funding'; the insurance fund is account -2).
CREATE TABLE position_changes (
    seq       bigint  NOT NULL,
    n         integer NOT NULL,   -- the event's place in its command's events
    ts        bigint  NOT NULL,
    account   bigint  NOT NULL,
    market    text    NOT NULL,
    size      numeric NOT NULL,   -- base units after the change, signed (+ long, - short)
    cost      numeric NOT NULL,   -- quote units, signed like size: entry price = cost / size
    margin    numeric NOT NULL,   -- isolated margin (0 for cross)
    realized  numeric NOT NULL,   -- PnL this change settled
    cause     text    NOT NULL,   -- trade, liquidation, takeover, adl, funding, margin
    PRIMARY KEY (seq, n)
);
CREATE INDEX position_changes_account ON position_changes (account, market, seq);

CREATE TABLE funding_rates (
    seq           bigint  PRIMARY KEY,
    ts            bigint  NOT NULL,
    market        text    NOT NULL,
    rate          bigint  NOT NULL,  -- units of 1e-8
    mark          numeric NOT NULL,
    paid          numeric NOT NULL,
    received      numeric NOT NULL,
    to_insurance  numeric NOT NULL,
    next_funding  bigint  NOT NULL
);
CREATE INDEX funding_rates_market ON funding_rates (market, seq);

CREATE TABLE liquidations (
    seq               bigint  NOT NULL,
    n                 integer NOT NULL,
    ts                bigint  NOT NULL,
    account           bigint  NOT NULL,
    market            text    NOT NULL,
    size              numeric NOT NULL,  -- base units closed, signed like the position was
    bankruptcy_price  numeric NOT NULL,
    via               text    NOT NULL,  -- book, insurance, adl
    PRIMARY KEY (seq, n)
);
CREATE INDEX liquidations_account ON liquidations (account, seq);
