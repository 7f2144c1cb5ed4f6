"""``dpg up --demo``: demo users with funds, and a market maker that keeps the books liquid around a
drifting reference price, so a new user sees a working exchange at once; the perpetuals' books are
kept around their index price (the spot mid) the same way, the maker and the taker trading on margin.

Demo logins (password ``demo-password``): alice@demo.dpg and bob@demo.dpg, named on the log-in page
(``GET /api/v1/demo``). The market maker trades as maker@demo.dpg and the trades that keep the
prices moving are taken by taker@demo.dpg, so alice's and bob's histories hold only what they did
themselves. Their accounts are opened like any sign-up's.

Funds: an asset one of the embedded dev chains carries (ETH, USDT, BTC as WBTC) is deposited into
that chain's vault from one of its funded dev accounts and credited by the deposit watcher like any
deposit, so the exchange really holds what it owes and the proof of reserves covers it; once the
deposits are credited the demo marks a proof-of-reserves epoch, which ``dpg up`` publishes. USD,
which is off chain, and every asset when custody is off (``DPG_CUSTODY=0``) or on no embedded
chain, is a journaled credit. Nothing is given twice on a restart: a credit has a fixed reference,
and an asset a user already holds or has a deposit of is not deposited again.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import TYPE_CHECKING, Any, cast

from dpg.core import events as E
from dpg.core.commands import CancelAll, Credit, MarkEpoch, PlaceOrder
from dpg.core.model import Market, MarketKind, OrderType, Side
from dpg.identity import AuthError

if TYPE_CHECKING:
    from dpg.api.runtime import Runtime
    from dpg.chain.custody import Custody
    from dpg.chain.embedded import EmbeddedChain

log = logging.getLogger("dpg.demo")

PASSWORD = "demo-password"  # noqa: S105 (the published demo login)
TRADERS = ("alice@demo.dpg", "bob@demo.dpg")  # the logins offered to people
MAKER = "maker@demo.dpg"
TAKER = "taker@demo.dpg"
USERS = (*TRADERS, MAKER, TAKER)
REFERENCE = {"BTC": 50_000, "ETH": 3_000}  # quote per base, roughly
FUNDS = {"BTC": 10**9, "ETH": 10**20, "USDT": 10**12, "USD": 10**12}  # 10 BTC, 100 ETH, 1,000,000 USDT/USD
MAKER_FUNDS = {"BTC": 10**10, "ETH": 10**21, "USDT": 10**13, "USD": 10**13}
SENDER = 9  # the dev chain's funded account the demo deposits from
CREDIT_WAIT_LOG = 60.0  # seconds between two log lines while deposits wait for their credit


def public_info(on: bool) -> dict[str, Any]:
    """What ``GET /api/v1/demo`` answers: whether this exchange runs the demo and, only then, its logins."""
    if not on:
        return {"demo": False}
    return {"demo": True, "password": PASSWORD, "users": list(TRADERS), "market_maker": MAKER, "taker": TAKER}


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


async def start_demo(rt: Runtime, url: str, custody: Custody | None = None) -> asyncio.Task[None]:
    """The demo users now; their funds and the market maker in the task returned."""
    ids = {email: await _user(rt, email) for email in USERS}
    return asyncio.create_task(_run(rt, url, custody, ids))


async def _run(rt: Runtime, url: str, custody: Custody | None, ids: dict[str, int]) -> None:
    deposited = await _fund(rt, url, custody, ids)
    log.info("event=demo_ready users=%s deposited_on=%s", ",".join(USERS),
             ",".join(dev.config.name for dev, _ in deposited) or "-")
    maker = asyncio.create_task(_market_maker(rt, ids[MAKER], ids[TAKER]))
    if deposited:  # the reserves are on chain now: an epoch, so that the proof page has one to show
        await _mark_epoch(rt, deposited)
    await maker


# ---------------------------------------------------------------------- funds


def _chain_of(custody: Custody | None, asset: str) -> EmbeddedChain | None:
    """The first embedded dev chain (in the configured order) that carries ``asset``."""
    for dev in (custody.embedded.values() if custody is not None else ()):
        if dev.config.native_asset == asset or any(t.asset == asset for t in dev.config.tokens):
            return dev
    return None


async def _fund(rt: Runtime, url: str, custody: Custody | None,
                ids: dict[str, int]) -> list[tuple[EmbeddedChain, int]]:
    """Each demo user's funds (see the module's docstring); the (chain, block) of the deposits
    made, returned once they are credited."""
    plan: dict[str, list[tuple[int, str, int]]] = {}  # chain name -> deposits (account, asset, amount)
    chains: dict[str, EmbeddedChain] = {}
    symbols = {a.symbol: a for a in rt.assets}
    for email, uid in ids.items():
        funds = MAKER_FUNDS if email == MAKER else FUNDS
        held = rt.views.balance(uid)
        deposited = await asyncio.to_thread(_deposited_assets, url, uid) if custody is not None else set()
        for asset, amount in funds.items():
            dev = _chain_of(custody, asset)
            if dev is None:
                await rt.bus.submit(Credit(uid, asset, amount, f"demo-{email}-{asset}"))  # once: a fixed reference
            elif asset not in deposited and sum(held.get(symbols[asset].index, [0, 0])) == 0:
                chains[dev.config.name] = dev
                plan.setdefault(dev.config.name, []).append((uid, asset, amount))
    made: list[tuple[EmbeddedChain, int]] = []
    for name, deposits in plan.items():
        dev = chains[name]
        try:
            hashes, block = await asyncio.to_thread(_deposit, dev, deposits)
        except Exception:
            log.exception("event=demo_deposit_failed chain=%s", name)
            continue
        log.info("event=demo_deposited chain=%s deposits=%d block=%d", name, len(hashes), block)
        await _until_credited(url, name, hashes)
        made.append((dev, block))
    return made


def _deposited_assets(url: str, account: int) -> set[str]:
    from dpg.chain.store import DepositStore

    store = DepositStore(url)
    try:
        return {d.asset for d in store.deposits(account=account) if d.status in ("pending", "credited")}
    finally:
        store.close()


def _deposit(dev: EmbeddedChain, deposits: list[tuple[int, str, int]]) -> tuple[list[str], int]:
    """Send ``deposits`` into the vault of ``dev`` from its funded dev account, in one block, then
    mine the blocks of their confirmations at once (the books need not wait for the interval);
    (the transactions, the deposits' block)."""
    from dpg.chain.rpc import to_int

    cfg = dev.config
    hashes = []
    with dev.one_block():
        for account, asset, amount in deposits:
            if cfg.native_asset == asset:
                hashes.append(dev.deposit_eth(account, amount, sender=SENDER))
            else:
                token = next(t for t in cfg.tokens if t.asset == asset)
                hashes.append(dev.deposit_token(token.symbol, account, amount, sender=SENDER))
    receipts = [dev.rpc.wait_receipt(h) for h in hashes]
    failed = [h for h, r in zip(hashes, receipts, strict=True) if to_int(r["status"]) != 1]
    if failed:
        raise RuntimeError(f"demo deposits reverted on {cfg.name}: {failed}")
    block = max(to_int(r["blockNumber"]) for r in receipts)
    if cfg.confirmations > 1:
        dev.rpc.mine(cfg.confirmations - 1)
    return hashes, block


async def _until_credited(url: str, chain: str, hashes: list[str]) -> None:
    """Wait until the deposit watcher has credited every deposit of ``hashes``."""
    from dpg.chain.store import DepositStore

    def missing() -> set[str]:
        store = DepositStore(url)
        try:
            done = {d.tx_hash.lower() for d in store.deposits(chain=chain, status="credited")}
        finally:
            store.close()
        return {h for h in hashes if h.lower() not in done}

    logged = time.monotonic()
    while left := await asyncio.to_thread(missing):
        if time.monotonic() - logged > CREDIT_WAIT_LOG:
            logged = time.monotonic()
            log.warning("event=demo_deposits_waiting chain=%s left=%d", chain, len(left))
        await asyncio.sleep(0.5)


async def _mark_epoch(rt: Runtime, deposited: list[tuple[EmbeddedChain, int]]) -> None:
    """Mark a proof-of-reserves epoch once the deposits' blocks are in the past: an epoch counts
    each chain's holdings at its last block no newer than itself."""
    from dpg.chain.rpc import to_int

    def newest() -> int:
        return max(to_int((dev.rpc.block(block) or {"timestamp": "0x0"})["timestamp"]) for dev, block in deposited)

    ts = await asyncio.to_thread(newest)
    while time.time() < ts + 1:
        await asyncio.sleep(0.2)
    epoch = int(time.time())
    seq, events = await rt.bus.submit(MarkEpoch(epoch))
    if events and events[0][0] == E.EPOCH_MARKED:
        log.info("event=por_epoch_marked epoch=%d seq=%d by=demo", epoch, seq)
    else:
        log.warning("event=por_epoch_refused epoch=%d reply=%r", epoch, events[:1])


# ---------------------------------------------------------------------- the market maker


def _ladder(m: Market, mid_ticks: int, rng: random.Random) -> list[tuple[Side, int, int]]:
    out = []
    for level in range(1, 9):
        spread = level * max(1, mid_ticks // 20_000)
        lots = max(1, (m.min_notional * 4) // (m.unit * mid_ticks) + 1) * rng.randint(1, 6)
        out.append((Side.BUY, mid_ticks - spread, lots))
        out.append((Side.SELL, mid_ticks + spread, lots))
    return out


async def _market_maker(rt: Runtime, maker: int, taker: int) -> None:
    rng = random.Random(7)
    mids: dict[str, int] = {}
    while True:
        for m in list(rt.markets):
            ref = REFERENCE.get(m.base.symbol)
            if ref is None:
                continue
            if m.kind == MarketKind.PERP:  # quoted around its index (the spot mid the scheduler samples)
                pv = rt.futures.perp(m)
                if pv is None or not pv.index:
                    continue
                mid = max(10, pv.index // m.tick_size)
            else:
                mid = mids.get(m.symbol) or ref * 10**m.quote.decimals // m.tick_size
                mid = max(10, mid + rng.randint(-3, 3) * max(1, mid // 50_000))
                mids[m.symbol] = mid
            try:
                await rt.bus.submit(CancelAll(maker, m.symbol))
                for side, ticks, lots in _ladder(m, mid, rng):
                    await rt.bus.submit(PlaceOrder(maker, m.symbol, side, OrderType.POST_ONLY, ticks * m.tick_size,
                                                   lots * m.lot_size))
                if rng.random() < 0.5:  # the taker takes some liquidity now and then: trades print
                    side = rng.choice((Side.BUY, Side.SELL))
                    lots = max(1, m.min_notional // (m.unit * mid) + 1)
                    _, events = await rt.bus.submit(PlaceOrder(taker, m.symbol, side, OrderType.MARKET, 0,
                                                               lots * m.lot_size))
                    if events[0][0] == E.REJECTED:
                        log.debug("event=demo_taker_rejected code=%s", cast(E.Rejected, events[0]).code)
            except Exception:
                log.exception("event=demo_market_maker_failed market=%s", m.symbol)
        await asyncio.sleep(1.0)
