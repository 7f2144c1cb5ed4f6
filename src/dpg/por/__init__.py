"""Proof of reserves: Merkle sum trees of balances, proofs, and their verification."""
