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
    custody: bool  # DPG_CUSTODY: 0 runs the exchange without its chains (no deposits, no withdrawals)
    withdrawal_ttl: int  # DPG_WITHDRAWAL_TTL: seconds a withdrawal's signatures stay valid (its signed deadline)
    withdrawal_replace_after: int  # DPG_WITHDRAWAL_REPLACE_AFTER: seconds before a stuck transaction is replaced
    withdrawal_daily_limits: dict[str, str]  # DPG_WITHDRAWAL_DAILY_LIMITS: "BTC=10,ETH=200,USDT=1000000" per account

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
            custody=e.get("DPG_CUSTODY", "1") not in ("0", "off", "false", "no"),
            withdrawal_ttl=_positive(e, "DPG_WITHDRAWAL_TTL", 6 * 3600),
            withdrawal_replace_after=_positive(e, "DPG_WITHDRAWAL_REPLACE_AFTER", 30),
            withdrawal_daily_limits=_limits(e.get("DPG_WITHDRAWAL_DAILY_LIMITS", "BTC=10,ETH=200,USDT=1000000")),
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


def _limits(raw: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in raw.split(","):
        asset, sep, amount = part.strip().partition("=")
        if not sep or not asset or not amount.replace(".", "", 1).isdigit():
            raise SystemExit(f"DPG_WITHDRAWAL_DAILY_LIMITS: ASSET=AMOUNT pairs, comma-separated, not {raw!r}")
        out[asset.strip().upper()] = amount.strip()
    return out
