-- Forced withdrawals (dpg.chain.forced): a user's request to the vault's escape hatch
-- (ForcedWithdrawalRequested), seen at the chain's confirmation depth, served exactly once through the
-- ordinary pipeline: a withdrawal of the account's whole available balance to its exit address, or,
-- when nothing is available, a signed zero answer (answerForcedZero).
--   seen         recorded; the engine is asked next (RequestForcedWithdrawal)
--   withdrawing  withdrawal_id is the attempt's withdrawal (written before the engine is asked): the
--                pipeline pays it; one that fails is tried again as attempt + 1 while the request is open
--   zero         nothing was available: the signers sign ForcedZero and the answer is sent
--   served       the vault says it is served (by a payout to the exit address or the zero answer)
--   unserved     final without an answer: the vault is frozen, or the engine refused it (reason)
CREATE TABLE forced_withdrawals (
    request_id    text          PRIMARY KEY CHECK (request_id ~ '^0x[0-9a-f]{64}$'),
    chain         text          NOT NULL,
    account       numeric(20,0) NOT NULL CHECK (account > 0),
    asset         text          NOT NULL,
    token         text          NOT NULL,             -- 0x00…00 for the native coin
    exit_address  text          NOT NULL CHECK (exit_address ~ '^0x[0-9a-f]{40}$'),
    requested_at  bigint        NOT NULL,             -- the chain's unix seconds
    tx_hash       text          NOT NULL,
    log_index     integer       NOT NULL,
    block_number  bigint        NOT NULL,
    status        text          NOT NULL DEFAULT 'seen'
                                CHECK (status IN ('seen', 'withdrawing', 'zero', 'served', 'unserved')),
    attempt       integer       NOT NULL DEFAULT 0,
    withdrawal_id text,                               -- withdrawals.id of the current attempt
    deadline      bigint,                             -- zero: the signed answer's deadline
    answer_tx     text,                               -- zero: the last answerForcedZero sent
    answer_sent   timestamptz,
    reason        text,
    created_at    timestamptz   NOT NULL DEFAULT now(),
    updated_at    timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX forced_withdrawals_open ON forced_withdrawals (chain, created_at)
    WHERE status IN ('seen', 'withdrawing', 'zero');
CREATE UNIQUE INDEX forced_withdrawals_withdrawal ON forced_withdrawals (withdrawal_id);

-- Signatures over the vault's EIP-712 ForcedZero(requestId, deadline), checked when stored.
CREATE TABLE forced_zero_signatures (
    request_id text        NOT NULL REFERENCES forced_withdrawals (request_id),
    signer     text        NOT NULL CHECK (signer ~ '^0x[0-9a-f]{40}$'),
    signature  text        NOT NULL CHECK (signature ~ '^0x[0-9a-f]{130}$'),
    kind       text        NOT NULL CHECK (kind IN ('policy', 'human')),
    signed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (request_id, signer)
);
