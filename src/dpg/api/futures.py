"""What an API process knows of the perpetuals, built from committed events only (an API process
may not hold the engine: in the multi-process mode it follows the event feed): each perpetual's
tier table, index and mark prices, last funding rate and next funding time, its funding history
(kept in memory since this process started), every account's positions and settings (leverage,
margin mode), the insurance fund's balances and the latest liquidations.

Loaded from an engine at its seq (like ``AccountViews`` and ``MarketData``), then advanced by
``apply`` with every committed command's events, in order. The answers of the futures REST API
(dpg.api.routes.futures) are written here, amounts as decimal strings.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, NamedTuple, cast

from dpg.core import events as E
from dpg.core.commands import ListPerp
from dpg.core.engine import Engine
from dpg.core.events import Cause, Event, PositionCause
from dpg.core.funding import RATE_SCALE
from dpg.core.margin import PositionTerms, RealTiers, TierTable, initial_margin, liquidation_prices
from dpg.core.model import INSURANCE_ACCOUNT, PPM, Asset, Market

DEFAULT_LEVERAGE = 20  # the engine's (dpg.core.futures.DEFAULT_LEVERAGE) for an account that set none
FUNDING_KEPT = 1_000  # funding events kept per perpetual
LIQUIDATIONS_KEPT = 1_000
INCOME_KEPT = 1_000  # income rows kept per account
C_FUNDING = Cause.FUNDING.value
PC_FUNDING = PositionCause.FUNDING.value
NS_PER_MS = 1_000_000
VIA = {0: "book", 1: "insurance_fund", 2: "adl"}


@dataclass(slots=True)
class PerpView:
    """One perpetual's parameters and prices (quote units per whole base), times in ms."""

    market: Market
    tiers: TierTable
    interval_ms: int
    index: int = 0
    mark: int = 0
    last_rate: int = 0  # RATE_SCALE units
    next_funding: int = 0  # ms; 0 until its first index price
    stale: bool = False  # no valid index source: only reduce-only orders, no liquidation (IndexStale)
    history: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=FUNDING_KEPT))


@dataclass(slots=True)
class PositionView:
    """One account's position and settings in one perpetual: size in signed base units, cost the
    signed quote amount it was opened for, margin its isolated margin."""

    account: int
    market: int
    size: int = 0
    cost: int = 0
    margin: int = 0
    leverage: int = DEFAULT_LEVERAGE
    isolated: bool = False
    realized: int = 0  # PnL settled since this process started


class Income(NamedTuple):
    """One income of an account on a perpetual: ``kind`` REALIZED_PNL, FUNDING_FEE or COMMISSION,
    ``amount`` signed quote base units, ``time`` ms, ``id`` unique (seq x 1,000 + its row)."""

    market: int
    kind: str
    amount: int
    time: int
    id: int


def rate_text(rate: int) -> str:
    """A funding rate (RATE_SCALE units) as a decimal fraction: 10_000 -> "0.0001"."""
    sign = "-" if rate < 0 else ""
    q, r = divmod(abs(rate), RATE_SCALE)
    return f"{sign}{q}.{r:08d}"


def _decimal(x: Fraction, places: int) -> str:
    """A fraction as a decimal string with ``places`` decimals, rounded half away from zero."""
    sign = "-" if x < 0 else ""
    scaled = abs(x) * 10**places
    units = int(scaled + Fraction(1, 2))
    q, r = divmod(units, 10**places)
    return f"{sign}{q}.{r:0{places}d}" if places else f"{sign}{q}"


class FuturesViews:
    def __init__(self, markets: list[Market], assets: list[Asset]) -> None:
        self.markets = markets  # the engine's own append-only lists (or a replica's)
        self.assets = assets
        self.seq = 0
        self.perps: dict[int, PerpView] = {}  # market index -> its view
        self.positions: dict[tuple[int, int], PositionView] = {}  # (account, market) -> position / settings
        self.by_account: dict[int, dict[int, PositionView]] = {}
        self.insurance: dict[int, int] = {}  # asset index -> the insurance fund's balance
        self.liquidations: deque[dict[str, Any]] = deque(maxlen=LIQUIDATIONS_KEPT)
        # account -> its income on perpetuals since this process started (realized PnL, funding, fees)
        self.income: dict[int, deque[Income]] = {}

    # ------------------------------------------------------------------ building

    def load(self, engine: Engine) -> None:
        self.seq = engine.seq
        fut = engine.fut
        for mi, pm in fut.perps.items():
            self.perps[mi] = PerpView(pm.market, pm.tiers, pm.interval, pm.index, pm.mark, pm.last_rate,
                                      pm.next_funding, stale=pm.stale)
        for (acct, mi), p in fut.positions.items():
            m = engine.markets[mi]
            v = self._position(acct, mi)
            v.size, v.cost, v.margin = p.size * m.lot_size, p.cost, p.margin
            v.leverage, v.isolated = p.leverage, p.isolated
        vec = engine.balances.get(INSURANCE_ACCOUNT)
        if vec:
            held = {a: vec[2 * a] + vec[2 * a + 1] for a in range(len(vec) // 2)}
            self.insurance = {a: x for a, x in held.items() if x}

    def _position(self, account: int, mi: int) -> PositionView:
        v = self.positions.get((account, mi))
        if v is None:
            v = self.positions[(account, mi)] = PositionView(account, mi)
            self.by_account.setdefault(account, {})[mi] = v
        return v

    def swap_market(self, m: Market) -> None:
        """``m`` with new fees or halted state, in its perpetual's view if it is one."""
        pv = self.perps.get(m.index)
        if pv is not None:
            pv.market = m

    def _perp(self, mi: int) -> PerpView | None:
        return self.perps.get(mi)

    def apply(self, seq: int, ts: int, events: list[Event]) -> None:
        if seq != self.seq + 1:
            raise ValueError(f"futures views at seq {self.seq} cannot apply {seq}")
        self.seq = seq
        # the income of this command: realized PnL, funding (a cross position's from its balance, an
        # isolated one's from its margin) and the fees of trades on perpetuals
        income: list[tuple[int, int, str, int]] = []
        funded = -1
        for ev in events:
            kind = ev[0]
            if kind == E.BALANCE:
                bal = cast(E.Balance, ev)
                if bal.account == INSURANCE_ACCOUNT:
                    self.insurance[bal.asset] = self.insurance.get(bal.asset, 0) + bal.d_available + bal.d_locked
                elif bal.cause == C_FUNDING:
                    income.append((bal.account, -1, "FUNDING_FEE", bal.d_available))
            elif kind == E.POSITION:
                p = cast(E.Position, ev)
                v = self._position(p.account, p.market)
                if p.realized:
                    income.append((p.account, p.market, "REALIZED_PNL", p.realized))
                if p.cause == PC_FUNDING:
                    income.append((p.account, p.market, "FUNDING_FEE", p.margin - v.margin))
                v.size, v.cost, v.margin = p.size, p.cost, p.margin
                v.realized += p.realized
            elif kind == E.TRADE:
                t = cast(E.Trade, ev)
                if t.market in self.perps:
                    income.append((t.taker_account, t.market, "COMMISSION", -t.taker_fee))
                    income.append((t.maker_account, t.market, "COMMISSION", -t.maker_fee))
            elif kind == E.MARK_PRICE:
                mp = cast(E.MarkPrice, ev)
                pv = self._perp(mp.market)
                if pv is not None:
                    pv.index, pv.mark = mp.index_price, mp.mark
                    if not pv.next_funding:  # set by the first index price, as the engine does
                        pv.next_funding = (ts // NS_PER_MS // pv.interval_ms + 1) * pv.interval_ms
            elif kind == E.INDEX_STATE:
                st = cast(E.IndexState, ev)
                pv = self._perp(st.market)
                if pv is not None:
                    pv.stale = bool(st.stale)
            elif kind == E.FUNDING_PAID:
                f = cast(E.FundingPaid, ev)
                funded = f.market
                pv = self._perp(f.market)
                if pv is not None:
                    pv.last_rate, pv.next_funding = f.rate, f.next_funding
                    q = pv.market.quote
                    pv.history.append({"time": ts // NS_PER_MS, "seq": seq, "rate": rate_text(f.rate),
                                       "mark_price": pv.market.format_price(f.mark), "paid": q.format(f.paid),
                                       "received": q.format(f.received), "to_insurance": q.format(f.to_insurance)})
            elif kind == E.LEVERAGE_SET:
                ls = cast(E.LeverageSet, ev)
                v = self._position(ls.account, ls.market)
                v.leverage, v.isolated = ls.leverage, bool(ls.isolated)
            elif kind == E.MARKET_LISTED:
                ml = cast(E.MarketListed, ev)
                if isinstance(ml.listing, ListPerp):  # a perpetual: its view, from its listing
                    self.perps[ml.market] = PerpView(self.markets[ml.market], TierTable.of(ml.listing.tiers),
                                                     ml.listing.funding_interval_ms)
            elif kind == E.LIQUIDATION:
                lq = cast(E.Liquidation, ev)
                m = self.markets[lq.market]
                self.liquidations.append({
                    "market": m.symbol, "account": lq.account, "size": m.base.format(lq.size),
                    "bankruptcy_price": m.quote.format(lq.bankruptcy_price), "via": VIA.get(lq.via, str(lq.via)),
                    "fee": m.quote.format(lq.fee), "time": ts // NS_PER_MS, "seq": seq})
        if income:
            self._income(seq, ts, income, funded)

    def _income(self, seq: int, ts: int, rows: list[tuple[int, int, str, int]], funded: int) -> None:
        """One command's income rows (account, market, type, signed quote amount) into each account's
        log; ``funded`` is the perpetual a funding paid in this command (-1: none), the market of its
        cross accounts' funding rows (written with -1)."""
        ms = ts // NS_PER_MS
        for n, (account, market, typ, amount) in enumerate(rows):
            if account > 0 and amount and (market >= 0 or funded >= 0):
                log = self.income.get(account)
                if log is None:
                    log = self.income[account] = deque(maxlen=INCOME_KEPT)
                log.append(Income(market if market >= 0 else funded, typ, amount, ms, seq * 1_000 + n))

    # ------------------------------------------------------------------ reading

    def perp_markets(self) -> list[PerpView]:
        return [self.perps[mi] for mi in sorted(self.perps)]

    def perp(self, m: Market) -> PerpView | None:
        return self._perp(m.index)

    def market_json(self, pv: PerpView) -> dict[str, Any]:
        m, q = pv.market, pv.market.quote
        return {
            "market": m.symbol, "base": m.base.symbol, "quote": q.symbol, "margin_asset": q.symbol,
            "tick_size": m.format_price(m.tick_size), "lot_size": m.format_qty(m.lot_size),
            "min_notional": q.format(m.min_notional),
            "maker_fee": _decimal(Fraction(m.maker_fee_ppm, PPM), 6),
            "taker_fee": _decimal(Fraction(m.taker_fee_ppm, PPM), 6),
            "tiers": [{"notional_floor": q.format(t.floor), "maintenance_margin_rate": _decimal(Fraction(t.mmr_ppm,
                                                                                                     PPM), 6),
                       "max_leverage": t.max_leverage, "cum": _decimal(Fraction(t.cum_ppm, PPM * 10**q.decimals),
                                                                       q.decimals)}
                      for t in pv.tiers.tiers],
            "index_price": m.format_price(pv.index) if pv.index else None,
            "index_stale": pv.stale,
            "mark_price": m.format_price(pv.mark) if pv.mark else None,
            "funding_rate": rate_text(pv.last_rate),
            "funding_interval_hours": pv.interval_ms // 3_600_000,
            "next_funding_time": pv.next_funding or None,
        }

    def settings(self, account: int, mi: int) -> PositionView:
        v = self.positions.get((account, mi))
        return v if v is not None else PositionView(account, mi)

    def open_positions(self, account: int) -> list[PositionView]:
        mine = self.by_account.get(account, {})
        return [mine[mi] for mi in sorted(mine) if mine[mi].size]

    def positions_json(self, account: int, wallet: int) -> list[dict[str, Any]]:
        """The account's open positions. ``wallet``: its margin wallet in quote base units (available
        quote and what its perpetual orders hold), the cross positions' shared balance. The
        liquidation price is dpg.core.margin.liquidation_prices', computed here once for every client."""
        out: list[dict[str, Any]] = []
        mine = [v for v in self.open_positions(account) if v.market in self.perps]
        cross = [v for v in mine if not v.isolated]
        unit = 10**self.perps[cross[0].market].market.quote.decimals if cross else 1
        cross_lp = self._liq_prices(Fraction(wallet, unit), "cross", cross) if cross else []
        lps = dict(zip((v.market for v in cross), cross_lp, strict=True))
        for v in mine:
            pv = self.perps[v.market]
            m, q = pv.market, pv.market.quote
            scale = 10**m.base.decimals
            mark = pv.mark or pv.index
            notional = abs(v.size) * mark // scale
            upnl = v.size * mark // scale - v.cost if mark else 0
            entry = Fraction(v.cost * scale, v.size)
            entry_im = initial_margin(abs(v.cost), v.leverage)
            if v.isolated:
                lp = self._liq_prices(Fraction(v.margin, 10**q.decimals), "isolated", [v])[0] if mark else None
            else:
                lp = lps.get(v.market)
            margin = v.margin if v.isolated else initial_margin(notional, v.leverage)
            out.append({
                "market": m.symbol, "side": "long" if v.size > 0 else "short", "size": m.base.format(v.size),
                "entry_price": _decimal(entry / 10**q.decimals, q.decimals),
                "mark_price": m.format_price(mark) if mark else None,
                "liquidation_price": _decimal(lp, 2) if lp is not None else None,
                "notional": q.format(notional), "unrealized_pnl": q.format(upnl),
                "margin": q.format(margin), "margin_mode": "isolated" if v.isolated else "cross",
                "leverage": v.leverage,
                "maintenance_margin": q.format(pv.tiers.maintenance(notional)),
                "roe": _decimal(Fraction(upnl * 100, entry_im), 2) if entry_im else "0.00",
                "realized_pnl": q.format(v.realized),
            })
        return out

    def _liq_prices(self, wallet: Fraction, mode: str, views: list[PositionView]) -> list[Fraction | None]:
        """Liquidation prices in whole quote per whole base; ``wallet`` in whole quote units."""
        terms: list[PositionTerms] = []
        tables: dict[str, RealTiers] = {}
        for v in views:
            pv = self.perps[v.market]
            m, q = pv.market, pv.market.quote
            unit = 10**q.decimals
            mark = pv.mark or pv.index
            if not mark:
                return [None] * len(views)
            qty = Fraction(abs(v.size), 10**m.base.decimals)
            entry = Fraction(abs(v.cost), unit) / qty
            terms.append(PositionTerms(m.symbol, 1 if v.size > 0 else -1, qty, entry, Fraction(mark, unit)))
            tables[m.symbol] = RealTiers.from_table(pv.tiers, q.decimals)
        try:
            return liquidation_prices(wallet, mode, terms, tables)
        except ValueError:
            return [None] * len(views)

    @staticmethod
    def funding_json(pv: PerpView, fundings: list[dict[str, Any]]) -> dict[str, Any]:
        """``pv``'s funding now and ``fundings`` (History.fundings' rows, newest first) as the API shows them."""
        m, q = pv.market, pv.market.quote
        history = [{"time": f["time"], "seq": f["seq"], "rate": rate_text(f["rate"]),
                    "mark_price": m.format_price(f["mark"]), "paid": q.format(f["paid"]),
                    "received": q.format(f["received"]), "to_insurance": q.format(f["to_insurance"])}
                   for f in fundings]
        return {"market": m.symbol, "funding_rate": rate_text(pv.last_rate),
                "next_funding_time": pv.next_funding or None, "interval_hours": pv.interval_ms // 3_600_000,
                "history": history}

    def insurance_json(self) -> list[dict[str, str]]:
        return [{"asset": a.symbol, "balance": a.format(self.insurance.get(a.index, 0))} for a in self.assets]
