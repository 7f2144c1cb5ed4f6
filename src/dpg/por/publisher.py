"""The background publisher: a thread that makes sure of the registry, then publishes the proof of
reserves of every epoch the exchange marks (``dpg.por.publish``), with back-off."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import psycopg

from dpg.chain.config import ChainConfig
from dpg.chain.rpc import RpcUnavailable
from dpg.por import ipfs
from dpg.por.publish import Registry, publish_epoch, save_registry
from dpg.por.registry import Chain, PublishError, deploy_registry, read_record, write_record

log = logging.getLogger("dpg.por.publish")  # the channel operators filter on for publishing

class AutoPublisher:
    """A thread that publishes the proof of reserves of every epoch, as ``dpg por publish`` would.

    First it makes sure of the registry on the first chain (the home chain): ``registry`` when given;
    else the one recorded in the data dir if it is on that chain and has code; else, on an embedded
    chain only, a new one deployed by dev account 0 (a reset chain gets a new one) and recorded. A
    chain reached by URL without a registry leaves publishing off (logged). Then it polls the
    recorded epochs: one is ready when the projection has written its balances (the epoch's row
    and its balances are written together), so a mark never waits on the publication and a lagging
    projection only delays it. It publishes, oldest first, the epochs without a reserves report that
    are newer than the last report: those marked while it runs, and the newest one (an older one
    left unpublished before, e.g. while publishing was off, is logged and left to ``dpg por publish
    --epoch``). Errors are retried with back-off: for ever while a node, IPFS or the database does
    not answer; ``attempts`` times when one answers with an error (e.g. a restarted dev chain that
    no longer has the state at the epoch's snapshot block), then the epoch is given up (logged) and
    the next one taken. A refusal by the registry (reserves short) is part of the report and final.
    The other chains' vault holdings are declared.
    """

    def __init__(self, url: str, chains: Sequence[ChainConfig], embedded: Collection[str], data_dir: Path,
                 secret: bytes, store: ipfs.Store, *, registry: str = "", public_rpc: str = "",
                 poll: float = 1.0, backoff_initial: float = 1.0, backoff_max: float = 60.0,
                 attempts: int = 5) -> None:
        if not chains:
            raise ValueError("publishing needs at least one chain")
        self.url = url
        self.configs = list(chains)
        self.embedded = set(embedded)
        self.data_dir = data_dir
        self.secret = secret
        self.store = store
        self.configured = registry.lower()
        self.public_rpc = public_rpc
        self.poll = poll
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.attempts = attempts
        self.registry: Registry | None = None
        self.published: list[int] = []  # epochs reported by this publisher, in order
        self._started = int(time.time())
        self._skipped: set[int] = set()
        self._failures: dict[int, int] = {}  # epoch -> attempts that failed with an answer
        self._given_up: set[int] = set()
        self._conn: psycopg.Connection[Any] | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dpg-por-publish", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def epoch_marked(self, epoch: int) -> None:
        """Look now rather than at the next poll (the scheduler calls it; any thread)."""
        self._wake.set()

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        chains = [Chain.from_config(c) for c in self.configs]
        home, others = chains[0], chains[1:]
        delay = self.backoff_initial
        while not self._stop.is_set():
            try:
                if self.registry is None:
                    self.registry = self._ensure_registry(home)
                    if self.registry is None:
                        return  # publishing is off (logged)
                for epoch in self._pending():
                    if self._stop.is_set():
                        return
                    try:
                        self._publish(epoch, home, others, self.registry.address)
                    except (RpcUnavailable, OSError, ipfs.IpfsError, psycopg.OperationalError):
                        raise  # nobody answered: retried for ever
                    except Exception as e:
                        n = self._failures[epoch] = self._failures.get(epoch, 0) + 1
                        if n < self.attempts:
                            raise
                        self._given_up.add(epoch)
                        log.error("event=por_epoch_failed epoch=%d attempts=%d error=%r", epoch, n, str(e))
                delay = self.backoff_initial
                wait = self.poll
            except Exception as e:  # a chain, IPFS or the database: try again later
                log.warning("event=por_publish_retry error=%r retry_in=%.1f", str(e) or type(e).__name__, delay)
                self._close()
                wait, delay = delay, min(delay * 2, self.backoff_max)
            self._wake.wait(wait)
            self._wake.clear()
        self._close()

    def _db(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.url, autocommit=True)
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None

    def _ensure_registry(self, home: Chain) -> Registry | None:
        cfg = self.configs[0]
        embedded = cfg.name in self.embedded
        if home.rpc.chain_id() != home.chain_id:
            raise PublishError(f"chain {home.name}: the node's chain id is not {home.chain_id}")
        address = self.configured
        if address:
            if not home.rpc.code(address):
                raise PublishError(f"DPG_POR_REGISTRY {address}: no contract there on {home.name}")
        else:
            record = read_record(self.data_dir) or {}
            recorded = str(record.get("registry") or "").lower()
            if recorded and str(record.get("chainId")) == str(home.chain_id) and home.rpc.code(recorded):
                address = recorded
            elif embedded:
                address = deploy_registry(home.rpc, home.rpc.accounts()[0], home.vault, home.tokens)
            else:
                log.warning("event=por_publish_off chain=%s reason=%r", home.name,
                            "a chain by URL needs DPG_POR_REGISTRY (or dpg por deploy-registry)")
                return None
        write_record(self.data_dir, home.chain_id, address, home.rpc.url)
        reg = Registry(home.name, home.chain_id, address, self.public_rpc or (cfg.rpc_url if embedded else ""))
        save_registry(self._db(), reg)
        log.info("event=por_registry chain=%s chain_id=%d registry=%s", reg.chain, reg.chain_id, reg.address)
        return reg

    def _pending(self) -> list[int]:
        conn = self._db()
        newer = [int(r[0]) for r in conn.execute(
            "SELECT e.epoch FROM por_epochs e LEFT JOIN por_reports r USING (epoch) WHERE r.epoch IS NULL"
            " AND e.epoch > coalesce((SELECT max(epoch) FROM por_reports), -1) ORDER BY e.epoch")]
        newest = newer[-1] if newer else None
        newer = [e for e in newer if e not in self._given_up]
        todo = [e for e in newer if e >= self._started or e == newest]
        for e in newer:
            if e not in todo and e not in self._skipped:
                self._skipped.add(e)
                log.warning("event=por_epoch_skipped epoch=%d reason=%r", e,
                            "marked before publishing started and not the newest: dpg por publish --epoch")
        return todo

    def _publish(self, epoch: int, home: Chain, others: list[Chain], registry: str) -> None:
        report = publish_epoch(self._db(), epoch, self.secret, home, registry, others, self.store)
        for a in report["assets"]:
            ok = bool(a.get("onChain")) and "error" not in a and int(a["reservesTotal"]) >= int(a["liabilities"])
            log.info("event=por_published epoch=%d asset=%s root=%s total=%s cid=%s ok=%s tx=%s gas=%s%s", epoch,
                     a["asset"], a["root"], a["liabilities"], a["cid"], str(ok).lower(), a.get("tx") or "-",
                     a.get("gasUsed") or "-", f" error={a['error']!r}" if a.get("error") else "")
        for u in report["unpublished"]:
            log.info("event=por_unpublished epoch=%d asset=%s total=%s reason=%r", epoch, u["asset"],
                     u["liabilities"], u["reason"])
        self.published.append(epoch)
