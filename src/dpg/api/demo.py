"""``dpg up --demo``: demo users with balances, and a market maker that keeps the books liquid
around a drifting reference price, so a new user sees a working exchange at once.

Demo logins (password ``demo-password``): alice@demo.dpg and bob@demo.dpg. The market maker
trades as maker@demo.dpg. Their accounts are opened like any sign-up's, and every balance comes from
a journaled credit with a fixed reference, so restarting the demo credits nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import TYPE_CHECKING

from dpg.api.auth import AuthError
from dpg.core import events as E
from dpg.core.commands import CancelAll, Credit, PlaceOrder
from dpg.core.model import Market, OrderType, Side

if TYPE_CHECKING:
    from dpg.api.app import Runtime

log = logging.getLogger("dpg.demo")

PASSWORD = "demo-password"  # noqa: S105 (the published demo login)
USERS = ("alice@demo.dpg", "bob@demo.dpg", "maker@demo.dpg")
REFERENCE = {"BTC": 50_000, "ETH": 3_000}  # quote per base, roughly
FUNDS = {"BTC": 10**9, "ETH": 10**20, "USDT": 10**12, "USD": 10**12}  # 10 BTC, 100 ETH, 1,000,000 USDT/USD
MAKER_FUNDS = {"BTC": 10**10, "ETH": 10**21, "USDT": 10**13, "USD": 10**13}


async def _user(rt: Runtime, email: str) -> int:
    """The demo user's id, signed up if new; its ledger account open (opening again changes nothing)."""
    try:
        user = await rt.accounts.sign_up(email, PASSWORD, verified=True)
    except AuthError as e:
        if e.code != "EMAIL_TAKEN":
            raise
        token, _ = await rt.accounts.login(email, PASSWORD, None, "127.0.0.1")
        user = await rt.accounts.session_user(token)
        await rt.accounts.logout(token)
    await rt.open_account(user)
    return user


async def start_demo(rt: Runtime, url: str) -> asyncio.Task[None]:
    ids = [await _user(rt, email) for email in USERS]
    for uid, email in zip(ids, USERS, strict=True):
        funds = MAKER_FUNDS if email.startswith("maker") else FUNDS
        for asset, amount in funds.items():
            await rt.bus.submit(Credit(uid, asset, amount, f"demo-{email}-{asset}"))
    log.info("event=demo_ready users=%s", ",".join(USERS))
    return asyncio.create_task(_market_maker(rt, ids[2], ids[:2]))


def _ladder(m: Market, mid_ticks: int, rng: random.Random) -> list[tuple[Side, int, int]]:
    out = []
    for level in range(1, 9):
        spread = level * max(1, mid_ticks // 20_000)
        lots = max(1, (m.min_notional * 4) // (m.unit * mid_ticks) + 1) * rng.randint(1, 6)
        out.append((Side.BUY, mid_ticks - spread, lots))
        out.append((Side.SELL, mid_ticks + spread, lots))
    return out


async def _market_maker(rt: Runtime, maker: int, takers: list[int]) -> None:
    rng = random.Random(7)
    mids: dict[str, int] = {}
    while True:
        for m in list(rt.markets):
            ref = REFERENCE.get(m.base.symbol)
            if ref is None:
                continue
            mid = mids.get(m.symbol) or ref * 10**m.quote.decimals // m.tick_size
            mid = max(10, mid + rng.randint(-3, 3) * max(1, mid // 50_000))
            mids[m.symbol] = mid
            try:
                await rt.bus.submit(CancelAll(maker, m.symbol))
                for side, ticks, lots in _ladder(m, mid, rng):
                    await rt.bus.submit(PlaceOrder(maker, m.symbol, side, OrderType.POST_ONLY, ticks * m.tick_size,
                                                   lots * m.lot_size))
                if rng.random() < 0.5:  # a demo user takes some liquidity now and then
                    side = rng.choice((Side.BUY, Side.SELL))
                    lots = max(1, m.min_notional // (m.unit * mid) + 1)
                    _, events = await rt.bus.submit(PlaceOrder(rng.choice(takers), m.symbol, side, OrderType.MARKET,
                                                               0, lots * m.lot_size))
                    if events[0][0] == E.REJECTED:
                        log.debug("event=demo_taker_rejected code=%s", events[0][1])
            except Exception:
                log.exception("event=demo_market_maker_failed market=%s", m.symbol)
        await asyncio.sleep(1.0)
