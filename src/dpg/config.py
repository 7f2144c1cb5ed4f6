"""Settings: one object read from ``DPG_*`` environment variables, with embedded defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path  # DPG_DATA_DIR: embedded PostgreSQL and other local state
    database_url: str  # DPG_DATABASE_URL: empty = the embedded PostgreSQL under data_dir
    snapshot_every: int  # DPG_SNAPSHOT_EVERY: commands between two snapshots
    batch_max: int  # DPG_BATCH_MAX: most commands in one journal transaction
    log_level: str  # DPG_LOG_LEVEL
    redis_url: str  # DPG_REDIS_URL: set, the engine and API processes run apart over Redis
    host: str  # DPG_HOST: where the API listens
    port: int  # DPG_PORT
    ip_rate: float  # DPG_RATE_IP: requests per second per client address (burst: twice that)
    key_rate: float  # DPG_RATE_KEY: requests per second per API key or session user
    por_interval: int  # DPG_POR_INTERVAL: seconds between proof-of-reserves epochs (86400: daily at 00:00 UTC)

    @staticmethod
    def from_env(env: dict[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        return Settings(
            data_dir=Path(e.get("DPG_DATA_DIR", ".dpg")).expanduser().resolve(),
            database_url=e.get("DPG_DATABASE_URL", ""),
            snapshot_every=_positive(e, "DPG_SNAPSHOT_EVERY", 200_000),
            batch_max=_positive(e, "DPG_BATCH_MAX", 8_192),
            log_level=e.get("DPG_LOG_LEVEL", "INFO").upper(),
            redis_url=e.get("DPG_REDIS_URL", ""),
            host=e.get("DPG_HOST", "127.0.0.1"),
            port=_positive(e, "DPG_PORT", 8000),
            ip_rate=float(_positive(e, "DPG_RATE_IP", 100)),
            key_rate=float(_positive(e, "DPG_RATE_KEY", 100)),
            por_interval=_positive(e, "DPG_POR_INTERVAL", 86_400),
        )


def _positive(env: os._Environ[str] | dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be a positive integer, not {raw!r}") from None
    if value <= 0:
        raise SystemExit(f"{name} must be a positive integer, not {raw!r}")
    return value
