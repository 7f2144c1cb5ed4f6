"""An exchange driven in-process for the surveillance tests: the real engine and journal (a node on
the test's PostgreSQL), its projections written by the follower's own catch-up, users and their
sessions as the identity module stores them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import cast

import psycopg
import pytest

from dpg.config import Settings, SurveillanceSettings
from dpg.core import events as E
from dpg.core.commands import CancelOrder, Command, Credit, OpenAccount, PlaceOrder, Transfer
from dpg.core.model import OrderType, Side
from dpg.journal.journal import Journal
from dpg.store.follower import catch_up
from dpg.store.projection import Projector
from dpg.surveillance import store
from dpg.system.node import Node

ETH = 10**18
USDT = 10**6


class Market:
    """The exchange under surveillance: users, orders, transfers, then a surveillance run."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.node = Node.open(url, Settings.from_env({}), projections=False)
        self.settings = SurveillanceSettings()

    def submit(self, cmd: Command) -> list[E.Event]:
        _, events = self.node.sequencer.submit_wait(cmd)
        assert events and events[0][0] != E.REJECTED, events
        return events

    def user(self, ip: str) -> int:
        """A signed-up user with a session from client address ``ip``, funded."""
        with psycopg.connect(self.url) as conn:
            n = time.time_ns()
            row = conn.execute("INSERT INTO users (email, email_skeleton, password_hash) VALUES (%s, %s, 'x')"
                               " RETURNING id", (f"u{n}@example.com", f"u{n}@example.com")).fetchone()
            assert row is not None
            uid = int(row[0])
            now = datetime.now(UTC)
            conn.execute("INSERT INTO sessions (token_hash, user_id, created_at, expires_at, ip)"
                         " VALUES (%s, %s, %s, %s, %s)", (n.to_bytes(32, "big"), uid, now, now, ip))
        self.submit(OpenAccount(uid))
        for asset, amount in (("ETH", 10**9 * ETH), ("BTC", 10**9 * 10**8), ("USDT", 10**12 * USDT),
                              ("USD", 10**12 * USDT)):
            self.submit(Credit(uid, asset, amount, f"fund-{uid}-{asset}"))
        return uid

    def order(self, account: int, side: str, price: int, qty: int, market: str = "ETH/USDT") -> int:
        """A limit order (price in whole quote, qty in base units); its id."""
        events = self.submit(PlaceOrder(account, market, Side.BUY if side == "buy" else Side.SELL, OrderType.LIMIT,
                                        price=price * USDT, qty=qty))
        return next(cast(E.OrderNew, ev).oid for ev in events if ev[0] == E.ORDER_NEW)

    def cancel(self, account: int, order_id: int, market: str = "ETH/USDT") -> None:
        self.submit(CancelOrder(account, market, order_id))

    def transfer(self, a: int, b: int) -> None:
        self.submit(Transfer(a, b, "USDT", USDT))

    def fund(self, a: int, b: int, status: str = "completed") -> None:
        """A withdrawal of ``a`` paid to ``b``'s deposit address, as custody records them."""
        address = f"0x{b:040x}"
        with psycopg.connect(self.url) as conn:
            conn.execute("INSERT INTO deposit_addresses (chain, account, address) VALUES ('dev', %s, %s)",
                         (b, address))
            conn.execute("INSERT INTO withdrawals (id, account, asset, amount, chain, chain_id, vault, token,"
                         " to_address, deadline, status, required) VALUES (%s, %s, 'ETH', 10, 'dev', 31337, %s, %s,"
                         " %s, 0, %s, 1)", (f"0x{a:064x}", a, "0x" + "11" * 20, "0x" + "00" * 20, address, status))

    def project(self) -> None:
        """Write the projections as the follower does (its catch-up from the journal)."""
        projector = Projector(self.url)
        journal = Journal(self.url)
        try:
            catch_up(journal, projector)
        finally:
            projector.close()
            journal.close()

    def surveil(self) -> store.RunResult:
        """Project, then one surveillance run over the last window."""
        self.project()
        now = time.time_ns()
        return store.run(self.url, self.settings, now - self.settings.window * 10**9, now)

    def alerts(self, kind: str) -> list[tuple[str, list[int], dict[str, object]]]:
        with psycopg.connect(self.url) as conn:
            return [(r[0], list(r[1]), r[2]) for r in conn.execute(
                "SELECT market, accounts, evidence FROM surveillance_alerts WHERE kind = %s ORDER BY id", (kind,))]


@pytest.fixture
def market(pg_url: str) -> Iterator[Market]:
    m = Market(pg_url)
    try:
        yield m
    finally:
        m.node.close()
