"""What one API process holds, built whole from the bus to the engine and the engine's state at
its seq: views and market data fed by committed event batches, accounts, history, limits, the hub."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, cast

from dpg.api import presentation as P
from dpg.api.futures import FuturesViews, rate_text
from dpg.api.history import History
from dpg.api.marketdata import INTERVALS, MarketData, Update
from dpg.api.ratelimit import TokenBuckets
from dpg.api.trading import Bus, Trading
from dpg.api.views import AccountViews, OrderView
from dpg.api.ws import MAX_STREAMS, Hub
from dpg.bus.wire import Batch
from dpg.core import events as E
from dpg.core.commands import ListAsset, ListPerp, OpenAccount
from dpg.core.engine import Engine
from dpg.core.events import Event
from dpg.core.margin import initial_margin
from dpg.core.model import PPM, Market, MarketKind
from dpg.identity import Accounts
from dpg.journal.clock import Clock
from dpg.por.ipfs import Store

log = logging.getLogger("dpg.api")

Publisher = Callable[[Update, dict[int, int]], None]  # f(update, {market index: previous depth seq})
RecentTrade = tuple[int, str, int, int, int, str]  # (trade id, market, price, qty, ts, taker side)
PRIVATE_CHANNEL = {"order": "orders", "fill": "fills", "balance": "balances"}  # item type -> channel


class Runtime:
    """Loaded from ``engine`` (the recovered state the bus continues from); ``on_batch`` then
    advances it with every committed batch after ``engine.seq``, in order."""

    def __init__(self, bus: Bus, engine: Engine, accounts: Accounts, history: History, admin_token: str, *,
                 ip_rate: float = 50.0, key_rate: float = 50.0, max_streams: int = MAX_STREAMS,
                 withdrawal_ttl: int = 6 * 3600, withdrawal_daily_limits: dict[str, str] | None = None,
                 address_cooldown: int = 86_400, demo: bool = False, recent_trades: Iterable[RecentTrade] = (),
                 clock: Clock | None = None, trees: Store | None = None,
                 backup_dir: Path | None = None) -> None:
        self.bus = bus
        self.clock = clock  # the engine's clock when it runs in this process (the operator may move a dev one)
        self._lists = engine  # whose markets and assets lists these are (a replica's grow from the feed)
        self.markets = engine.markets  # the engine's append-only lists (or a replica's)
        self.governance = engine.gov  # the governed parameters (a replica's follow ParamsChanged)
        self.assets = engine.assets
        self.accounts = accounts
        self.history = history
        self.admin_token = admin_token
        self.views = AccountViews(self.markets, self.assets)
        self.md = MarketData(self.markets, self.assets)
        self.trading = Trading(bus, self.views, self.markets, self.assets)
        self.futures = FuturesViews(self.markets, self.assets)  # the perpetuals: prices, positions, funding
        self.views.load(engine)
        self.md.load(engine)
        self.futures.load(engine)
        self.md.seed_trades(recent_trades)
        self.depth_seq: dict[int, int] = {m.index: engine.seq for m in engine.markets}
        self.publishers: list[Publisher] = []  # the other dialects' publishers of each update
        # and of each command's events, after DPG's own perpetuals' channels (marks, positions)
        self.event_publishers: list[Callable[[int, list[Event]], None]] = []
        self.ip_limits = TokenBuckets(ip_rate, ip_rate * 2)
        self.key_limits = TokenBuckets(key_rate, key_rate * 2)
        # every socket: its messages against its address's bucket and one of its own at the per-key rate
        self.hub = Hub(accounts, self.ip_limits, key_rate, max_streams)
        accounts.on_revoke.append(self.hub.revoked)  # a logout or key revocation closes its sockets
        self.healthy = True
        # withdrawals (dpg.api.routes.wallet): the signed deadline's distance and the per-account 24 h limits
        self.withdrawal_ttl = withdrawal_ttl
        self.withdrawal_daily_limits = withdrawal_daily_limits if withdrawal_daily_limits is not None else {
            "BTC": "10", "ETH": "200", "USDT": "1000000"}
        self.address_cooldown = address_cooldown  # seconds before a newly allow-listed address is usable
        self.demo = demo  # dpg up --demo: GET /api/v1/demo names the demo logins
        self.trees = trees  # the published trees' IPFS store, served at /ipfs/{cid} (dpg.api.routes.proof)
        self.backup_dir = backup_dir  # the backups the console lists (DPG_BACKUP_DIR)

    def status(self) -> tuple[bool, str]:
        """(ok, reason) for /health: the engine takes commands and this process's feed is whole."""
        if not self.healthy:
            return False, "this API process lost its place in the event feed; restart it"
        return self.bus.status()

    async def open_account(self, user_id: int) -> bool:
        """Open a user's ledger account (OpenAccount is idempotent). False, logged, when the engine
        cannot take it now: the account then opens at the user's next login, or when the exchange
        next starts (dpg.system.node)."""
        try:
            seq, events = await self.bus.submit(OpenAccount(user_id))
            if events and events[0][0] == E.REJECTED:
                raise RuntimeError("{0.code}: {0.reason}".format(cast(E.Rejected, events[0])))
            await self.views.wait_for(seq)
        except Exception as e:  # the user exists either way; the account opens later
            log.warning("event=account_open_deferred user=%d reason=%r", user_id, str(e) or type(e).__name__)
            return False
        return True

    async def find_order(self, account: int, order_id: int = 0, client_id: str = "") -> OrderView | None:
        """An order of ``account`` by id (or else client id): open and recently finished ones from
        the views, any other (finished before a restart, or long ago) from the projections."""
        v = self.views.order(account, order_id) if order_id else self.views.order_by_client_id(account, client_id)
        return v if v is not None else await self.history.order(account, order_id, client_id)

    # ------------------------------------------------------------------ reads, as the API writes them

    def depth_json(self, m: Market, limit: int) -> dict[str, object]:
        return P.depth_json(m, self.md.depth(m.symbol, limit), self.depth_seq.get(m.index, 0))

    def ticker_json(self, m: Market) -> dict[str, object]:
        return P.ticker_json(m, self.md.ticker(m.symbol))

    def order_json(self, v: OrderView) -> dict[str, object]:
        return P.order_json(self.markets[v.market], v)

    def margin_wallet(self, account: int) -> int:
        """An account's margin wallet (quote base units): its available margin asset and, estimated
        from its open perpetual orders at their leverage, what those orders hold."""
        perps = self.futures.perp_markets()
        if not perps:
            return 0
        q = perps[0].market.quote
        held = 0
        for v in self.views.open_orders(account):
            m = self.markets[v.market]
            if m.kind != MarketKind.PERP or not v.price:
                continue
            notional = max(0, v.qty - v.filled) * v.price // 10**m.base.decimals
            lev = self.futures.settings(account, m.index).leverage
            held += initial_margin(notional, lev) - (-notional * m.taker_fee_ppm // PPM)
        return self.views.balance(account).get(q.index, [0, 0])[0] + held

    def positions_json(self, account: int) -> list[dict[str, Any]]:
        return self.futures.positions_json(account, self.margin_wallet(account))

    def mark_json(self, m: Market) -> dict[str, Any]:
        pv = self.futures.perp(m)
        if pv is None:
            return {"market": m.symbol}
        return {"market": m.symbol, "index_price": m.format_price(pv.index) if pv.index else None,
                "index_stale": pv.stale, "mark_price": m.format_price(pv.mark) if pv.mark else None,
                "funding_rate": rate_text(pv.last_rate), "next_funding_time": pv.next_funding or None}

    # ------------------------------------------------------------------ the feed

    def on_batch(self, batch: Batch) -> None:
        """Committed batches, in order, on the event loop."""
        for seq, ts, events in batch:
            if seq <= self.views.seq:
                continue
            self.trading.stamps.add(seq, ts)  # before the views: a reply waiting for them finds its time
            try:
                self._list(events)
                self.views.apply(seq, ts, events)
                self.futures.apply(seq, ts, events)
                upd = self.md.apply(seq, ts, events)
            except ValueError:
                log.exception("event=feed_gap at=%d", seq)
                self.healthy = False
                raise
            self._dispatch(upd)
            self._dispatch_futures(seq, events)

    def _list(self, events: list[Event]) -> None:
        """An asset or market listed (or its fees or halted state changed) after this process's
        replica was recovered (an API process of the multi-process mode): listed into its lists by
        the engine's own rules, from the listing the event carries. Where the lists are the live
        engine's, they have it already (swapping a market in again changes nothing)."""
        for ev in events:
            kind = ev[0]
            if kind == E.ASSET_LISTED:
                a = cast(E.AssetListed, ev)
                if a.asset == len(self.assets):
                    self._lists.on_list_asset(ListAsset(a.symbol, a.decimals))
            elif kind == E.MARKET_LISTED:
                ml = cast(E.MarketListed, ev)
                if ml.market == len(self.markets):
                    listing = ml.listing
                    done = (self._lists.on_list_perp(listing) if isinstance(listing, ListPerp)
                            else self._lists.on_list_market(listing))
                    if done[0][0] != E.MARKET_LISTED or self.markets[-1].symbol != ml.symbol:
                        raise ValueError(f"market {ml.symbol} could not be listed as the engine listed it: {done}")
            elif kind == E.PARAMS_CHANGED:
                pc = cast(E.ParamsChanged, ev)
                self.governance.governed, self.governance.staker_share_ppm = pc.governed, pc.staker_share_ppm
            elif kind == E.MARKET_CHANGED:  # new fees or halted: the replica's market as the engine's
                mc = cast(E.MarketChanged, ev)
                self._lists.swap_market(self.markets[mc.market].with_terms(mc.maker_fee_ppm, mc.taker_fee_ppm,
                                                                           mc.halted))
                self.futures.swap_market(self.markets[mc.market])

    def _dispatch_futures(self, seq: int, events: list[Event]) -> None:
        """The perpetuals' channels of one command: mark prices (also when the index turns stale or
        valid again), fundings and liquidations (public), the positions of the accounts it changed
        (private)."""
        hub = self.hub
        changed: dict[int, None] = {}
        marks: dict[int, None] = {}  # markets whose mark message is due: one per command
        liquidations = 0
        for ev in events:
            kind = ev[0]
            if kind == E.POSITION or kind == E.LEVERAGE_SET:
                account = cast(E.Position, ev).account
                if account > 0 and account in hub.by_account:
                    changed[account] = None
            elif kind == E.MARK_PRICE:
                marks[cast(E.MarkPrice, ev).market] = None
            elif kind == E.INDEX_STATE:
                marks[cast(E.IndexState, ev).market] = None
            elif kind == E.FUNDING_PAID:
                m = self.markets[cast(E.FundingPaid, ev).market]
                pv = self.futures.perp(m)
                if pv is not None and pv.history and hub.has(f"funding:{m.symbol}"):
                    hub.publish(f"funding:{m.symbol}", {"type": "funding", "seq": seq,
                                                        "data": {**pv.history[-1], "market": m.symbol,
                                                                 "next_funding_time": pv.next_funding}})
            elif kind == E.LIQUIDATION:
                liquidations += 1
        for mi in marks:
            m = self.markets[mi]
            if hub.has(f"mark:{m.symbol}"):
                hub.publish(f"mark:{m.symbol}", {"type": "mark", "seq": seq, "data": self.mark_json(m)})
        if liquidations:  # the futures views' rows of this command's liquidations, in order
            for row in list(self.futures.liquidations)[-liquidations:]:
                channel = f"liquidations:{row['market']}"
                if hub.has(channel):
                    hub.publish(channel, {"type": "liquidation", "seq": seq,
                                          "data": {k: v for k, v in row.items() if k != "account"}})
        for account in changed:
            hub.publish_private(account, "positions", {"type": "positions", "seq": seq,
                                                       "data": self.positions_json(account)})
        for publish in self.event_publishers:
            publish(seq, events)

    def _dispatch(self, upd: Update) -> None:
        """DPG's own channels of one update, then the other dialects', then the private channels."""
        hub = self.hub
        prevs: dict[int, int] = {}
        for symbol, change in upd.depth.items():
            m = self.trading.market(symbol)
            prev = prevs[m.index] = self.depth_seq.get(m.index, 0)
            self.depth_seq[m.index] = upd.seq
            channel = f"depth:{m.symbol}"
            if hub.has(channel):
                hub.publish(channel, {"type": "update", "seq": upd.seq, "prev_seq": prev,
                                      "bids": P.levels_json(m, change.get("bids", [])),
                                      "asks": P.levels_json(m, change.get("asks", []))})
        for t in upd.trades:
            m = self.trading.market(t["market"])
            channel = f"trades:{m.symbol}"
            if hub.has(channel):
                hub.publish(channel, {"type": "trade", "data": P.trade_json(m, t)})
        for symbol in upd.tickers:
            m = self.trading.market(symbol)
            channel = f"ticker:{m.symbol}"
            if hub.has(channel):
                hub.publish(channel, {"type": "ticker", "data": self.ticker_json(m)})
        for symbol in upd.candles:
            m = self.trading.market(symbol)
            for interval in INTERVALS:
                channel = f"candles:{m.symbol}:{interval}"
                if hub.has(channel):
                    last = self.md.candles(m.symbol, interval, limit=1)
                    hub.publish(channel, {"type": "candle", "data": [P.candle_json(m, c) for c in last]})
        for publish in self.publishers:
            publish(upd, prevs)
        for account, items in upd.accounts.items():
            if account not in hub.by_account:
                continue
            for item in items:
                kind = str(item.get("type"))
                private = PRIVATE_CHANNEL.get(kind)
                if private:
                    data = P.private_json(item, self._market_of(item.get("market")), self.assets)
                    hub.publish_private(account, private, {"type": kind, "data": data})

    def _market_of(self, market: object) -> Market | None:
        if isinstance(market, int):
            return self.markets[market]
        if isinstance(market, str):
            return self.trading.market(market)
        return None
