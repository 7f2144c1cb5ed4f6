"""Browser tests of the web exchange: Debian's Chromium driven by Playwright, against ``dpg up``
on a scratch database, reached through a TCP proxy that a test can cut to drop the page's
connections like a network failure would."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright import sync_api as playwright_api

from tests.api.client import served

ROOT = Path(__file__).parents[2]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
SHOTS = ROOT / "docs" / "screenshots"
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium, installed when missing (the tests run as root on Debian)."""
    if not Path(CHROMIUM).exists():
        apt = shutil.which("apt-get")
        if apt is None:
            pytest.fail(f"{CHROMIUM} is missing and apt-get is not available to install it")
        subprocess.run([apt, "update", "-qq"], check=True, timeout=600)
        subprocess.run([apt, "install", "-y", "-qq", "chromium"], check=True, timeout=1200,
                       env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    return CHROMIUM


@pytest.fixture(scope="session")
def vendored() -> None:
    """The npm-pinned libraries copied into src/dpg/web/vendor/ (the Makefile's set-up step)."""
    if not (ROOT / "src" / "dpg" / "web" / "vendor" / ".installed").exists():
        subprocess.run(["make", "-s", "src/dpg/web/vendor/.installed"], cwd=ROOT, check=True, timeout=600)


class Proxy:
    """A TCP proxy in front of the exchange; ``cut()`` drops every connection and refuses new ones
    until ``restore()``."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.up = True
        self.lock = threading.Lock()
        self.open: set[socket.socket] = set()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            with self.lock:
                self.open |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                self._close(s)

    def _close(self, s: socket.socket) -> None:
        with self.lock:
            self.open.discard(s)
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
        s.close()

    def cut(self) -> None:
        self.up = False
        with self.lock:
            conns = list(self.open)
        for s in conns:
            self._close(s)

    def restore(self) -> None:
        self.up = True

    def close(self) -> None:
        self.cut()
        self.server.close()


@pytest.fixture(scope="module")
def exchange_url(pg_server: str, tmp_path_factory: pytest.TempPathFactory, vendored: None) -> Iterator[str]:
    """The exchange's own address (for API calls made by the test itself)."""
    with served(pg_server, tmp_path_factory.mktemp("web"), "dpg_test_web") as base:
        yield base


@pytest.fixture(scope="module")
def proxy(exchange_url: str) -> Iterator[Proxy]:
    p = Proxy(int(exchange_url.rsplit(":", 1)[1]))
    yield p
    p.close()


@pytest.fixture(scope="module")
def web(proxy: Proxy) -> str:
    """The address the browser uses: the exchange behind the proxy."""
    return f"http://127.0.0.1:{proxy.port}"


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Any]:
    """Chromium for one test file: Playwright's sync API keeps an event loop running in this thread
    while it is open, so it is closed before the worker goes on to files that run their own loop."""
    with playwright_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium, args=ARGS, headless=True)
        playwright_api.expect.set_options(timeout=20_000)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (its own localStorage) at desktop size; uncaught page errors fail the test."""
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(20_000)
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    yield p
    context.close()
    assert not errors, errors


def shot(page: Any, name: str) -> None:
    """Save a screenshot of the page to docs/screenshots/<name>.png."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))
