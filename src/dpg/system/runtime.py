"""The API's runtime for this exchange: its connection pool, mailer, identity store, history and
the views loaded from the recovered engine."""

from __future__ import annotations

import psycopg
from psycopg_pool import AsyncConnectionPool

from dpg.api.history import History
from dpg.api.runtime import Runtime
from dpg.api.server import admin_token
from dpg.bus.local import LocalBus
from dpg.bus.redis_bus import RedisBus
from dpg.config import Settings
from dpg.core.engine import Engine
from dpg.identity import Accounts, MemoryReplayGuard, RedisReplayGuard, ReplayGuard, SecretBox
from dpg.journal.clock import Clock
from dpg.journal.journal import LIVELINESS
from dpg.mail import Mailer, sender_address
from dpg.por.ipfs import Store


def replay_guard(settings: Settings) -> ReplayGuard:
    """Signed requests seen: in Redis when processes share it, else in this process."""
    if settings.redis_url:
        import redis.asyncio as aioredis

        from dpg.bus.redis_bus import PREFIX

        return RedisReplayGuard(aioredis.Redis.from_url(settings.redis_url), prefix=f"{PREFIX}:replay:")
    return MemoryReplayGuard()


def recent_trades(url: str) -> list[tuple[int, str, int, int, int, str]]:
    """The last 24 h of trades from the projection, oldest first, to seed tickers and candles."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT trade_id, market, price, qty, ts, taker_side FROM trades"
            " WHERE ts >= (SELECT coalesce(max(ts), 0) FROM trades) - 86400000000000 ORDER BY trade_id"
        ).fetchall()
    return [(int(t), m, int(p), int(q), int(ts), s) for t, m, p, q, ts, s in rows]


def build_runtime(url: str, settings: Settings, bus: LocalBus | RedisBus, engine: Engine, *,
                  demo: bool = False, clock: Clock | None = None) -> tuple[Runtime, AsyncConnectionPool]:
    """The runtime with its state read from ``engine`` (recovered, before the sequencer or the
    event feed starts, so no batch is missed) and the pool it uses (opened by the server)."""
    # a request waits at most 5 s for a connection; a connection the server dropped is found out
    # (checked) before use, so requests recover by themselves once the database is back
    pool = AsyncConnectionPool(url, min_size=1, max_size=8, open=False, timeout=5.0,
                               check=AsyncConnectionPool.check_connection, kwargs=dict(LIVELINESS))
    mailer = Mailer(pool, smtp_url=settings.smtp_url, sender=sender_address(settings.mail_from))
    accounts = Accounts(pool, SecretBox.from_env_or_file(settings.data_dir), replay_guard(settings),
                        mailer=mailer, public_url=settings.public_url)
    rt = Runtime(bus, engine, accounts, History(pool, engine.markets, engine.assets), admin_token(settings),
                 ip_rate=settings.ip_rate, key_rate=settings.key_rate, max_streams=settings.ws_max_streams,
                 withdrawal_ttl=settings.withdrawal_ttl, withdrawal_daily_limits=settings.withdrawal_daily_limits,
                 address_cooldown=settings.address_cooldown, demo=demo, recent_trades=recent_trades(url),
                 clock=clock, trees=Store.from_env(settings.data_dir),
                 backup_dir=settings.backups())
    return rt, pool
