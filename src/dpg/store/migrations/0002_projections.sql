-- Projections: derived from the engine's events, rebuildable from the journal at any time.
-- Amounts are integers of base units (numeric: ETH in wei exceeds bigint).

CREATE TABLE projection_state (
    name text PRIMARY KEY,
    seq  bigint NOT NULL               -- every event of commands <= seq is written
);
INSERT INTO projection_state (name, seq) VALUES ('tables', 0);

CREATE TABLE orders (
    order_id    bigint PRIMARY KEY,
    account     bigint  NOT NULL,
    market      text    NOT NULL,
    side        text    NOT NULL,
    type        text    NOT NULL,
    price       numeric NOT NULL,      -- quote units per whole base; 0 for market orders
    qty         numeric NOT NULL,      -- base units (0 for a market buy by quote amount)
    quote_qty   numeric NOT NULL,
    client_id   text    NOT NULL,
    stp         text    NOT NULL,
    status      text    NOT NULL,
    filled      numeric NOT NULL DEFAULT 0,
    filled_quote numeric NOT NULL DEFAULT 0,
    reason      text    NOT NULL DEFAULT '',
    created_seq bigint  NOT NULL,
    updated_seq bigint  NOT NULL,
    created_ts  bigint  NOT NULL,
    updated_ts  bigint  NOT NULL
);
CREATE INDEX orders_account_market ON orders (account, market, order_id);
CREATE INDEX orders_open ON orders (account) WHERE status IN ('open', 'partially_filled');

CREATE TABLE trades (
    trade_id      bigint PRIMARY KEY,
    seq           bigint  NOT NULL,
    ts            bigint  NOT NULL,
    market        text    NOT NULL,
    price         numeric NOT NULL,
    qty           numeric NOT NULL,
    notional      numeric NOT NULL,
    taker_order   bigint  NOT NULL,
    maker_order   bigint  NOT NULL,
    taker_account bigint  NOT NULL,
    maker_account bigint  NOT NULL,
    taker_side    text    NOT NULL,
    taker_fee     numeric NOT NULL,
    maker_fee     numeric NOT NULL
);
CREATE INDEX trades_market ON trades (market, trade_id);
CREATE INDEX trades_taker ON trades (taker_account, trade_id);
CREATE INDEX trades_maker ON trades (maker_account, trade_id);

-- Every balance movement, with the command that caused it.
CREATE TABLE ledger_entries (
    seq         bigint  NOT NULL,
    n           integer NOT NULL,      -- position among the command's events
    ts          bigint  NOT NULL,
    account     bigint  NOT NULL,
    asset       text    NOT NULL,
    d_available numeric NOT NULL,
    d_locked    numeric NOT NULL,
    cause       text    NOT NULL,
    PRIMARY KEY (seq, n)
);
CREATE INDEX ledger_account ON ledger_entries (account, asset, seq);
