"""A chain's background work — the deposit watcher, the sweeper, the withdrawal broadcaster — each
in one daemon thread, started and stopped alike."""

from __future__ import annotations

import threading
from typing import Any


class ChainWorker:
    """``run(stop, *args)`` until ``stop`` is set, in a thread named ``dpg-<role>-<chain>``."""

    role = "worker"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run(self, stop: threading.Event, *args: Any) -> None:
        raise NotImplementedError

    def start(self, *args: Any) -> threading.Thread:
        self._stop.clear()
        chain = getattr(self, "chain", None)
        self._thread = threading.Thread(target=self.run, args=(self._stop, *args), daemon=True,
                                        name=f"dpg-{self.role}-{getattr(chain, 'name', '?')}")
        self._thread.start()
        return self._thread

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.stopped()

    def stopped(self) -> None:
        """After the thread ended (or ``stop``'s timeout passed): release what it held."""
