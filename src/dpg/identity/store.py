"""How the identity tables are reached and what they store: the connection pool, times as UTC
timestamps, tokens (sessions, mailed links) as their SHA-256."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import psycopg
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

Pool = AsyncConnectionPool[psycopg.AsyncConnection[TupleRow]]


def at(epoch_s: float) -> datetime:
    """Epoch seconds as the UTC timestamp stored."""
    return datetime.fromtimestamp(epoch_s, UTC)


def sha256(text: str) -> bytes:
    """The digest a token is stored and looked up by."""
    return hashlib.sha256(text.encode()).digest()
