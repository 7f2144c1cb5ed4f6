"""Shared fixtures: a real PostgreSQL for every test that needs one.

The server is the one named by DPG_TEST_DATABASE_URL, else the one on 127.0.0.1:5432, else an
embedded one started for the session. Each test gets a fresh database, dropped afterwards.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from dpg.store import db

LOCAL = "postgresql://postgres@127.0.0.1:5432/postgres"

# exchanges started by the tests register themselves (dpg.running) here, not in the user's state dir
os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="dpg-test-state-")


def _reachable(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """URL of a PostgreSQL server (its maintenance database)."""
    url = os.environ.get("DPG_TEST_DATABASE_URL")
    if url:
        yield url
        return
    if _reachable(LOCAL):
        yield LOCAL
        return
    tmp = Path(tempfile.mkdtemp(prefix="dpg-test-pg-"))
    yield db.embedded_url(tmp, "postgres")


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh, migrated database; dropped after the test."""
    url = db.create_scratch(pg_server, "dpg_test")
    try:
        db.migrate(url)
        yield url
    finally:
        db.drop(url)


@pytest.fixture
def empty_pg_url(pg_server: str) -> Iterator[str]:
    """A fresh database without the schema; dropped after the test."""
    url = db.create_scratch(pg_server, "dpg_test")
    try:
        yield url
    finally:
        db.drop(url)
