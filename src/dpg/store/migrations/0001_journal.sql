-- The journal: every sequenced command, in order; the only source of truth.
CREATE TABLE journal (
    seq     bigint PRIMARY KEY,
    ts      bigint NOT NULL,          -- nanoseconds since the epoch, stamped by the sequencer
    payload bytea  NOT NULL           -- dpg.journal.codec encoding of the command
);

-- Snapshots of the whole engine state after the command numbered seq.
CREATE TABLE snapshots (
    seq        bigint PRIMARY KEY,
    state_hash text   NOT NULL,
    body       bytea  NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
