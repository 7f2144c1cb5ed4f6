-- A ledger's entries by account, asset and time: the insurance fund's history reads its entries of
-- a time window (GET /api/v1/futures/insurance/history), one row per fee share of every trade, and
-- the ledger history's start/end filters read by time too.
CREATE INDEX ledger_account_time ON ledger_entries (account, asset, ts);
