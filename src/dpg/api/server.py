"""Running the API: in the exchange's own process (``dpg up``, the embedded default), or as an
API process beside an engine process over Redis (``dpg engine`` + ``dpg api``)."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psycopg
import uvicorn
from psycopg_pool import AsyncConnectionPool

from dpg import running
from dpg.api.app import create_app
from dpg.api.auth import Accounts, MemoryReplayGuard, RedisReplayGuard, ReplayGuard, SecretBox
from dpg.api.history import History
from dpg.api.revocations import RedisRevocations
from dpg.api.runtime import Runtime
from dpg.api.trading import Bus
from dpg.bus.local import LocalBus
from dpg.bus.redis_bus import EngineBridge, RedisBus
from dpg.config import Settings
from dpg.core.engine import Engine
from dpg.journal.journal import LIVELINESS, Journal
from dpg.journal.recovery import recover
from dpg.journal.sequencer import Applied, Sequencer
from dpg.mail import Mailer, sender_address
from dpg.node import Node
from dpg.por.schedule import Scheduler

log = logging.getLogger("dpg.server")


def admin_token(settings: Settings) -> str:
    """DPG_ADMIN_TOKEN, else a token kept in DPG_DATA_DIR/admin.token (created 0600)."""
    token = os.environ.get("DPG_ADMIN_TOKEN", "")
    if token:
        return token
    path = settings.data_dir / "admin.token"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def _new_loop() -> asyncio.AbstractEventLoop:
    import uvloop

    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    return loop


def _replay_guard(settings: Settings) -> ReplayGuard:
    if settings.redis_url:
        import redis.asyncio as aioredis

        from dpg.bus.redis_bus import PREFIX

        return RedisReplayGuard(aioredis.Redis.from_url(settings.redis_url), prefix=f"{PREFIX}:replay:")
    return MemoryReplayGuard()


def _recent_trades(url: str) -> list[tuple[int, str, int, int, int, str]]:
    """The last 24 h of trades from the projection, oldest first, to seed tickers and candles."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT trade_id, market, price, qty, ts, taker_side FROM trades"
            " WHERE ts >= (SELECT coalesce(max(ts), 0) FROM trades) - 86400000000000 ORDER BY trade_id"
        ).fetchall()
    return [(int(t), m, int(p), int(q), int(ts), s) for t, m, p, q, ts, s in rows]


def _runtime(url: str, settings: Settings, bus: Bus, engine: Engine,
             demo: bool = False) -> tuple[Runtime, AsyncConnectionPool]:
    # a request waits at most 5 s for a connection; a connection the server dropped is found out
    # (checked) before use, so requests recover by themselves once the database is back
    pool = AsyncConnectionPool(url, min_size=1, max_size=8, open=False, timeout=5.0,
                               check=AsyncConnectionPool.check_connection, kwargs=dict(LIVELINESS))
    mailer = Mailer(pool, smtp_url=settings.smtp_url, sender=sender_address(settings.mail_from))
    accounts = Accounts(pool, SecretBox.from_env_or_file(settings.data_dir), _replay_guard(settings),
                        mailer=mailer, public_url=settings.public_url)
    rt = Runtime(bus, engine, accounts, History(pool, engine.markets, engine.assets), admin_token(settings),
                 ip_rate=settings.ip_rate, key_rate=settings.key_rate, max_streams=settings.ws_max_streams,
                 withdrawal_ttl=settings.withdrawal_ttl, withdrawal_daily_limits=settings.withdrawal_daily_limits,
                 address_cooldown=settings.address_cooldown, demo=demo, recent_trades=_recent_trades(url))
    return rt, pool


def _serve(app: Any, host: str, port: int, loop: asyncio.AbstractEventLoop, pool: AsyncConnectionPool,
           ready: Any = None, trusted_proxies: tuple[str, ...] = ()) -> None:
    # X-Forwarded-For/-Proto are read only from the listed proxies (DPG_TRUSTED_PROXIES); by default
    # from none, so a client cannot choose the address its IP allow-list and rate limit see
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", loop="none", ws_max_size=64 * 1024,
                            lifespan="off", timeout_graceful_shutdown=3, proxy_headers=bool(trusted_proxies),
                            forwarded_allow_ips=list(trusted_proxies))
    server = uvicorn.Server(config)

    async def main() -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
        await pool.open()
        serving = asyncio.create_task(server.serve())
        while not server.started and not serving.done():
            await asyncio.sleep(0.02)
        if ready is not None and server.started:
            await ready()  # listening now: announce, start the demo
        await serving
        await pool.close()

    loop.run_until_complete(main())


def start_custody(settings: Settings, node: Node) -> Any:
    """The chains' deposit watchers and withdrawal broadcasters (``DPG_CUSTODY=0``: none)."""
    if not settings.custody:
        return None
    from dpg.chain.config import load_chains
    from dpg.chain.custody import Custody

    return Custody.start(node.url, node.sequencer.submit_wait, load_chains(), settings.data_dir,
                         replace_after=settings.withdrawal_replace_after)


def start_publisher(settings: Settings, url: str, custody: Any, schedule: Scheduler) -> Any:
    """The proof of reserves published every epoch on the custody chains (``DPG_POR_PUBLISH=0``, or
    no custody: none). Starts a thread; never waits on a chain."""
    if custody is None or not settings.por_publish:
        return None
    chains = custody.chains()
    if not chains:
        log.warning("event=por_publish_off reason=%r", "no custody chain is running")
        return None
    from dpg.por import ipfs
    from dpg.por.publish import AutoPublisher

    publisher = AutoPublisher(url, chains, set(custody.embedded), settings.data_dir, settings.por_key(),
                              ipfs.Store.from_env(settings.data_dir), registry=settings.por_registry,
                              public_rpc=settings.por_rpc)
    schedule.on_marked = publisher.epoch_marked
    publisher.start()
    return publisher


def run_single(settings: Settings, url: str, host: str, port: int, announce: Callable[[str], None],
               demo: bool = False) -> None:
    """The embedded default: engine, journal, projections and API in this process."""
    loop = _new_loop()
    holder: dict[str, tuple[Runtime, AsyncConnectionPool]] = {}

    def sink(batch: Sequence[Applied]) -> None:
        loop.call_soon_threadsafe(holder["rt"][0].on_batch, [(a.seq, a.ts, a.events) for a in batch])

    def recovered(engine: Engine, sequencer: Sequencer) -> None:  # before the sequencer starts: no batch is missed
        holder["rt"] = _runtime(url, settings, LocalBus(sequencer), engine, demo)

    node = Node.open(url, settings, sinks=[sink], on_recovered=recovered)
    rt, pool = holder["rt"]
    schedule = Scheduler(node.sequencer.submit_wait, settings.por_interval)
    schedule.start()
    custody = start_custody(settings, node)
    publisher = start_publisher(settings, url, custody, schedule)
    tasks: list[asyncio.Task[None]] = []  # kept referenced while the server runs
    registered: list[Path] = []  # this exchange in dpg.running, for operator commands

    async def ready() -> None:
        if demo:
            from dpg.api.demo import start_demo

            tasks.append(await start_demo(rt, url, custody))
        where = "DPG_DATABASE_URL" if settings.database_url else f"embedded PostgreSQL in {settings.data_dir / 'pg'}"
        chains = ", ".join(f"{c.name} (RPC {c.rpc_url}, vault {c.vault})" for c in custody.chains()) \
            if custody else "none"
        registered.append(running.register(settings, f"http://{host}:{port}"))
        announce(f"DPG is up on http://{host}:{port} (API docs at /docs): journal at seq {node.engine.seq} on "
                 f"{where}; markets {', '.join(m.symbol for m in node.engine.markets)}; chains {chains}."
                 " Ctrl-C stops.")

    try:
        _serve(create_app(rt), host, port, loop, pool, ready, settings.trusted_proxies)
    finally:
        for path in registered:
            running.unregister(path)
        if publisher is not None:
            publisher.stop()
        if custody is not None:
            custody.stop()
        schedule.stop()
        node.close()
        announce(f"DPG stopped at seq {node.sequencer.committed_seq}.")


def run_engine(settings: Settings, url: str, announce: Callable[[str], None]) -> None:
    """The engine process of the multi-process mode: journal, projections, Redis in and out."""
    node = Node.open(url, settings)
    bridge = EngineBridge(settings.redis_url, node.sequencer)
    bridge.start()
    schedule = Scheduler(node.sequencer.submit_wait, settings.por_interval)
    schedule.start()
    custody = start_custody(settings, node)
    publisher = start_publisher(settings, url, custody, schedule)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    chains = ", ".join(f"{c.name} (RPC {c.rpc_url}, vault {c.vault})" for c in custody.chains()) \
        if custody else "none"
    registered = running.register(settings, "")
    announce(f"DPG engine is up: journal at seq {node.engine.seq}; commands from Redis; chains {chains}.")
    stop.wait()
    running.unregister(registered)
    if publisher is not None:
        publisher.stop()
    if custody is not None:
        custody.stop()
    schedule.stop()
    bridge.stop()
    node.close()
    announce(f"DPG engine stopped at seq {node.sequencer.committed_seq}.")


def run_api(settings: Settings, url: str, host: str, port: int, announce: Callable[[str], None]) -> None:
    """An API process of the multi-process mode: a replica of the state from the journal, then the
    committed event batches from Redis."""
    loop = _new_loop()
    bus = RedisBus(settings.redis_url)
    after = loop.run_until_complete(bus.last_event_id())
    journal = Journal(url)
    engine = recover(journal)
    journal.close()
    rt, pool = _runtime(url, settings, bus, engine)
    revocations = RedisRevocations(settings.redis_url, rt.accounts, rt.hub)

    async def ready() -> None:
        await bus.start()
        bus.follow(after, rt.on_batch)
        await revocations.start()
        announce(f"DPG API is up on http://{host}:{port}: state at seq {engine.seq}.")

    try:
        _serve(create_app(rt), host, port, loop, pool, ready, settings.trusted_proxies)
    finally:
        loop.run_until_complete(revocations.close())
        loop.run_until_complete(bus.close())

