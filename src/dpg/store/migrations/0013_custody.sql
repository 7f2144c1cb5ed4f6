-- Withdrawal controls users expect (dpg.api.wallet) and the ledger's running balance
-- (dpg.store.projection).

-- A newly allow-listed address is usable for withdrawals only after a waiting period
-- (DPG_ADDRESS_COOLDOWN); addresses listed before this migration are usable at once.
ALTER TABLE withdrawal_addresses ADD COLUMN usable_at timestamptz NOT NULL DEFAULT now();

-- The client addresses (IP networks) from which an account accepts withdrawals and changes to its
-- withdrawal allow-list. No row, or an empty list: any address.
CREATE TABLE withdrawal_ip_allow (
    account    numeric(20,0) PRIMARY KEY CHECK (account > 0),
    networks   text[]        NOT NULL,            -- CIDRs, e.g. 203.0.113.7/32, 2001:db8::/48
    updated_at timestamptz   NOT NULL DEFAULT now()
);

-- The fee charged for a withdrawal (base units of its asset; what arrives is amount - fee), and
-- a withdrawal the user cancelled before its third signature, while the engine returns its funds:
--   cancelling  no signature is taken any more; FailWithdrawal("cancelled by the user") follows
--               (from the API at once, or from the pipeline if the API stopped half-way), then failed
ALTER TABLE withdrawals ADD COLUMN fee numeric(78,0) NOT NULL DEFAULT 0 CHECK (fee >= 0 AND fee <= amount);
ALTER TABLE withdrawals DROP CONSTRAINT withdrawals_status_check;
ALTER TABLE withdrawals ADD CONSTRAINT withdrawals_status_check CHECK (status IN ('requesting', 'signing', 'signed',
    'broadcast', 'confirming', 'queued', 'cancelling', 'completed', 'failed'));

-- The ledger's running balance (available + locked of the account's asset after the entry; null for
-- entries projected before this migration until `dpg projections rebuild`) and, for a chain deposit
-- or a withdrawal's payout, the chain and transaction.
ALTER TABLE ledger_entries ADD COLUMN balance numeric, ADD COLUMN chain text, ADD COLUMN tx_hash text;
