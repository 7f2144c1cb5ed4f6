"""The ways to run the exchange: all in one process (``dpg up``, the embedded default), or an
engine process (``dpg engine``) beside API processes (``dpg api``) over Redis. The first two
write the settings they start with to the audit log when they changed since the last start."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from dpg import running
from dpg.api.app import create_app
from dpg.api.revocations import RedisRevocations
from dpg.api.server import new_loop, serve
from dpg.bus.local import LocalBus
from dpg.bus.redis_bus import EngineBridge, RedisBus
from dpg.config import Settings
from dpg.journal.journal import Applied, Journal
from dpg.journal.recovery import recover
from dpg.store import audit
from dpg.system.backoffice import BackOffice
from dpg.system.node import Node
from dpg.system.runtime import build_runtime

log = logging.getLogger("dpg.server")

Announce = Callable[[str], None]


def run_single(settings: Settings, url: str, host: str, port: int, announce: Announce, demo: bool = False) -> None:
    """The embedded default: engine, journal, projections and API in this process."""
    loop = new_loop()

    def sink(batch: Sequence[Applied]) -> None:  # fed once the node starts, after the runtime is built
        loop.call_soon_threadsafe(rt.on_batch, [(a.seq, a.ts, a.events) for a in batch])

    node = Node(url, settings, sinks=[sink])
    try:
        audit.record_settings(url, settings.audited())
        rt, pool = build_runtime(url, settings, LocalBus(node.sequencer), node.engine, demo=demo,
                                 clock=node.clock)
        node.start()
        office = BackOffice(settings, node, demo=demo)
    except BaseException:
        node.close()
        raise
    registered: list[Path] = []  # this exchange in dpg.running, for operator commands
    tasks: list[object] = []  # kept referenced while the server runs

    async def ready() -> None:
        if demo:
            from dpg.api.demo import start_demo

            tasks.append(await start_demo(rt, url, office.custody))
        where = "DPG_DATABASE_URL" if settings.database_url else f"embedded PostgreSQL in {settings.data_dir / 'pg'}"
        registered.append(running.register(settings, f"http://{host}:{port}"))
        announce(f"DPG is up on http://{host}:{port} (API docs at /docs): journal at seq {node.engine.seq} on "
                 f"{where}; markets {', '.join(m.symbol for m in node.engine.markets)}; chains {office.chains()}."
                 " Ctrl-C stops.")

    try:
        serve(create_app(rt), host, port, loop, pool, ready, settings.trusted_proxies)
    finally:
        for path in registered:
            running.unregister(path)
        office.stop()
        node.close()
        announce(f"DPG stopped at seq {node.sequencer.committed_seq}.")


def run_engine(settings: Settings, url: str, announce: Announce) -> None:
    """The engine process of the multi-process mode: journal, projections, Redis in and out."""
    node = Node.open(url, settings)
    audit.record_settings(url, settings.audited())
    bridge = EngineBridge(settings.redis_url, node.sequencer)
    bridge.start()
    office = BackOffice(settings, node)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    registered = running.register(settings, "")
    announce(f"DPG engine is up: journal at seq {node.engine.seq}; commands from Redis; chains {office.chains()}.")
    stop.wait()
    running.unregister(registered)
    office.stop()
    bridge.stop()
    node.close()
    announce(f"DPG engine stopped at seq {node.sequencer.committed_seq}.")


def run_api(settings: Settings, url: str, host: str, port: int, announce: Announce) -> None:
    """An API process of the multi-process mode: a replica of the state from the journal, then the
    committed event batches from Redis."""
    loop = new_loop()
    bus = RedisBus(settings.redis_url)
    after = loop.run_until_complete(bus.last_event_id())
    journal = Journal(url)
    engine = recover(journal)
    journal.close()
    rt, pool = build_runtime(url, settings, bus, engine)
    revocations = RedisRevocations(settings.redis_url, rt.accounts, rt.hub)

    async def ready() -> None:
        await bus.start()
        bus.follow(after, rt.on_batch)
        await revocations.start()
        announce(f"DPG API is up on http://{host}:{port}: state at seq {engine.seq}.")

    try:
        serve(create_app(rt), host, port, loop, pool, ready, settings.trusted_proxies)
    finally:
        loop.run_until_complete(revocations.close())
        loop.run_until_complete(bus.close())
