"""Serving the API: the operator's admin token, the event loop and the uvicorn server (its HTTP and
WebSocket limits). ``dpg.system`` builds the exchange around it."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn
from psycopg_pool import AsyncConnectionPool

from dpg.config import Settings


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


def raise_fd_limit() -> None:
    """The soft limit on open files raised to the hard one: every WebSocket subscriber is a socket."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def new_loop() -> asyncio.AbstractEventLoop:
    """A uvloop event loop, made this thread's."""
    import uvloop

    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    return loop


def serve(app: Any, host: str, port: int, loop: asyncio.AbstractEventLoop, pool: AsyncConnectionPool,
          ready: Callable[[], Awaitable[None]] | None = None, trusted_proxies: tuple[str, ...] = ()) -> None:
    """Serve ``app`` on ``loop`` until SIGINT/SIGTERM; ``ready`` runs once it listens."""
    # X-Forwarded-For/-Proto are read only from the listed proxies (DPG_TRUSTED_PROXIES); by default
    # from none, so a client cannot choose the address its IP allow-list and rate limit see
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", loop="none", ws_max_size=64 * 1024,
                            lifespan="off", timeout_graceful_shutdown=3, proxy_headers=bool(trusted_proxies),
                            forwarded_allow_ips=list(trusted_proxies))
    server = uvicorn.Server(config)
    raise_fd_limit()

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
