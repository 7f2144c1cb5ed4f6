"""The surveillance beside a running exchange: a thread that searches the recent projections every
``DPG_SURVEILLANCE_INTERVAL`` seconds and keeps each finished day's report."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg

from dpg.config import SurveillanceSettings
from dpg.surveillance import store
from dpg.surveillance.wash import NS

log = logging.getLogger("dpg.surveillance")


class Surveillance:
    """Each run searches the last window and interval (runs overlap by a window: an execution's
    later cancellations and wash partners are found by a later run; a key is stored once)."""

    def __init__(self, url: str, settings: SurveillanceSettings) -> None:
        self.url = url
        self.settings = settings
        self.runs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="dpg-surveillance", daemon=True)

    @staticmethod
    def start(url: str, settings: SurveillanceSettings) -> Surveillance | None:
        """Started, or None when DPG_SURVEILLANCE_INTERVAL is 0."""
        if not settings.interval:
            return None
        s = Surveillance(url, settings)
        s._thread.start()
        log.info("event=surveillance_started interval_s=%d window_s=%d", settings.interval, settings.window)
        return s

    def run_once(self) -> store.RunResult:
        s = self.settings
        end = time.time_ns()
        result = store.run(self.url, s, end - (s.window + s.interval) * NS, end)
        store.store_reports(self.url, s, (datetime.now(UTC) - timedelta(days=1)).date())
        self.runs += 1
        return result

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.interval):
            try:
                self.run_once()
            except psycopg.Error as e:  # the database away: the next run tries again
                log.warning("event=surveillance_failed error=%r", str(e).strip()[:200])
            except Exception:
                log.exception("event=surveillance_failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(30)
