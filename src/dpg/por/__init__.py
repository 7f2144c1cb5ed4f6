"""Proof of reserves: Merkle sum trees of balances, proofs, and their verification (``tree``); the
epoch schedule; the registry contract client (``registry``), publishing one epoch (``publish``)
and the background publisher (``publisher``)."""
