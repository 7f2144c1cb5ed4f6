-- Trade surveillance (dpg.surveillance): alerts raised from the projections (orders, trades, ledger
-- entries, sessions, withdrawals), each with its evidence, and the daily per-market report of the
-- indirect wash-trading tests (first-digit law of trade sizes, clustering at round sizes).

-- One row per alert. ``key`` names what the alert is about (the kind and the orders of its
-- evidence): a run over a window already searched finds the same keys and inserts nothing new.
CREATE TABLE surveillance_alerts (
    id           bigserial        PRIMARY KEY,
    key          text             NOT NULL UNIQUE,
    kind         text             NOT NULL CHECK (kind IN ('wash_trade', 'spoofing', 'layering')),
    market       text             NOT NULL,
    accounts     bigint[]         NOT NULL,   -- the accounts involved, ascending
    detected_at  timestamptz      NOT NULL DEFAULT now(),
    window_start timestamptz      NOT NULL,   -- the first event of the evidence
    window_end   timestamptz      NOT NULL,   -- the last event of the evidence
    evidence     jsonb            NOT NULL,   -- orders, trades, accounts and their links, times
    score        double precision NOT NULL,   -- the rule's measure (see docs/surveillance.md)
    details      text             NOT NULL    -- one line for an operator
);
CREATE INDEX surveillance_alerts_detected ON surveillance_alerts (detected_at);
CREATE INDEX surveillance_alerts_kind ON surveillance_alerts (kind, detected_at);
CREATE INDEX surveillance_alerts_accounts ON surveillance_alerts USING gin (accounts);

-- The daily report, one row per market and UTC day, written once the day is over.
CREATE TABLE surveillance_reports (
    day          date             NOT NULL,
    market       text             NOT NULL,
    trades       integer          NOT NULL,
    report       jsonb            NOT NULL,   -- dpg.surveillance.benford.MarketReport.as_json()
    benford_pass boolean,                     -- null: too few trades to test
    computed_at  timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (day, market)
);

-- The surveillance reads the projections by time: trades of a window, orders placed in it.
CREATE INDEX trades_ts ON trades (ts);
CREATE INDEX orders_created_ts ON orders (created_ts);
