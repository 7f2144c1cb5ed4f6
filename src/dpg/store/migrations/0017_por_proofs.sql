-- Proof-of-reserves proofs at scale, assembled on read (dpg.por.proofs): each account's leaf index
-- and salt as packed 48-byte records (account, leaf, salt; sorted by account, 1,024 to a row, keyed
-- by the row's first account), and the tree's nodes as packed 64-byte records (hash, uint256 value),
-- in chunks per level.
-- The leaf level and the levels from the sixth up are kept; the five just above the leaves are
-- recomputed from the account's block of 64 leaves. Written with the publication, for every epoch
-- published since; older epochs keep serving from por_trees.
CREATE TABLE por_proof_accounts (
    epoch    bigint NOT NULL,
    asset    text   NOT NULL,
    first    bigint NOT NULL,
    accounts bytea  NOT NULL,
    PRIMARY KEY (epoch, asset, first)
);

CREATE TABLE por_proof_nodes (
    epoch bigint   NOT NULL,
    asset text     NOT NULL,
    level smallint NOT NULL,
    chunk integer  NOT NULL,
    nodes bytea    NOT NULL,
    PRIMARY KEY (epoch, asset, level, chunk)
);

-- random hashes do not compress: keep the chunks uncompressed, so a proof reads only its slices
ALTER TABLE por_proof_nodes ALTER COLUMN nodes SET STORAGE EXTERNAL;
ALTER TABLE por_proof_accounts ALTER COLUMN accounts SET STORAGE EXTERNAL;
