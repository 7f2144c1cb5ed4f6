"""Which exchange: its database, and the existing exchange an operator command acts on."""

from __future__ import annotations

from dataclasses import dataclass

from dpg.config import Settings
from dpg.store import db


def database_url(settings: Settings) -> str:
    """The exchange's database: DPG_DATABASE_URL, else the embedded one (started, or made on first use)."""
    return settings.database_url or db.embedded_url(settings.data_dir)


@dataclass(frozen=True, slots=True)
class Target:
    """What an operator command acts on: an existing exchange's settings, database and API address."""

    settings: Settings
    url: str
    api: str  # http://host:port of the running exchange (registered, else DPG_HOST:DPG_PORT)


def operator_target(*, schema: bool = True) -> Target:
    """The existing exchange an operator command acts on (``dpg.running.locate``), its database
    checked to hold DPG's schema (``schema=False``: migrations may be applied to it). Raises
    ``running.NotFound`` with what to do, never making a new database."""
    from dpg import running

    settings, api = running.locate()
    url = database_url(settings)
    if schema and not db.has_schema(url):
        where = "DPG_DATABASE_URL" if settings.database_url else f"the embedded database in {settings.data_dir}"
        raise running.NotFound(f"{where} holds no DPG exchange (no journal table); start it once with `dpg up`, "
                               "or apply the schema with `dpg migrate`")
    return Target(settings, url, api or f"http://{settings.host}:{settings.port}")
