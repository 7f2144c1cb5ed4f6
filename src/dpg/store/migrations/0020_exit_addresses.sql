-- The escape hatch's off-chain half.
--
-- Exit addresses: the address each account names, by an EIP-712 ExitAddress signature of that
-- address (domain "DPG Exit" v1, the home chain and its Vault), to receive its funds if the exchange
-- stops serving withdrawals (docs/proof-of-reserves.md, "Version 2"). Every registration is kept;
-- an epoch's leaves carry the latest one registered before the epoch was marked (por_epochs.ts).
-- The nonce of an account's next registration is its count of registrations (0 first).
CREATE TABLE exit_addresses (
    account       bigint      NOT NULL CHECK (account > 0),
    nonce         bigint      NOT NULL CHECK (nonce >= 0),
    address       text        NOT NULL CHECK (address ~ '^0x[0-9a-f]{40}$'),
    signature     text        NOT NULL,
    chain_id      bigint      NOT NULL,
    vault         text        NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (account, nonce)
);
CREATE INDEX exit_addresses_time ON exit_addresses (registered_at);

-- The leaf version of each publication: 1 for the ones before this migration (their account
-- records in por_proof_accounts are version 1's 48 bytes), 2 since (132 bytes: with the exit
-- address and the deposited and withdrawn counters).
ALTER TABLE por_publications ADD COLUMN leaf_version smallint NOT NULL DEFAULT 1 CHECK (leaf_version IN (1, 2));

-- A leaf's counters sum the home chain's deposits and payouts of an account up to the epoch's seq:
-- the ledger entries that carry a chain (few beside the trades' and fees').
CREATE INDEX ledger_chain ON ledger_entries (chain, asset, account, seq) WHERE chain IS NOT NULL;
