"""Spot settlement: what an order holds while open, and what moves when it trades (the assets
change hands, the fees, the insurance share of the fees).

Matching (core/matching.py) decides the fills; this module turns them into balance movements in
the ledger and their events. A market of another kind (futures) has its own settlement beside it.
"""

from __future__ import annotations

from dpg.core import events as E
from dpg.core.events import Cause, Event
from dpg.core.ledger import Ledger
from dpg.core.matching import Fill
from dpg.core.model import (
    FEE_ACCOUNT,
    INSURANCE_ACCOUNT,
    INSURANCE_SHARE_PCT,
    PPM,
    Market,
    Order,
    OrderStatus,
    OrderType,
    Side,
)

BUY = Side.BUY.value
MARKET = OrderType.MARKET.value
FILLED = OrderStatus.FILLED.value
EXPIRED = OrderStatus.EXPIRED.value
BAL = E.BALANCE
TRADE = E.TRADE
DONE = E.ORDER_DONE
C_TRADE = Cause.TRADE.value
C_FEE = Cause.FEE.value
STP_REASON = "self-trade prevention"

_new = E.new
_Balance = E.Balance
_Trade = E.Trade
_Done = E.OrderDone


class SpotSettlement:
    """Spot: a buy holds quote (lots x price x unit), a sell holds base (lots x lot size); a trade
    swaps them at the maker's price, each side paying its fee in the asset it receives."""

    __slots__ = ()

    def hold(self, m: Market, side: int, pt: int, lots: int) -> tuple[int, int]:
        """(vector position of the held asset's available balance, amount) for ``lots`` at ``pt`` ticks.
        A method, not a static one: the engine's ``settlement.hold(...)`` then takes the interpreter's
        specialised method call instead of a generic attribute lookup each time."""
        if side == BUY:
            return m.quote_i, lots * pt * m.unit
        return m.base_i, lots * m.lot_size

    def expired(self, ledger: Ledger, m: Market, mk: Order, lots: int, ev: list[Event]) -> None:
        """Self-trade prevention took ``mk`` off the book with ``lots`` left: its hold returns."""
        ai, left = self.hold(m, mk.side, mk.price, lots)
        ledger.unlock(mk.account, ai >> 1, left, ev)
        ev.append(_new(_Done, (DONE, mk.oid, EXPIRED, lots * m.lot_size, STP_REASON)))

    def settle(self, ledger: Ledger, m: Market, o: Order, fills: list[Fill], tid: int, ev: list[Event]) -> int:
        """Move the balances of ``o``'s fills and emit, per fill, its balance events, fees, the
        trade and the maker's end. Returns the next trade id."""
        acct = o.account
        buy = o.side == BUY
        budgeted = buy and o.otype == MARKET  # a market buy: its hold is a budget, spent as it goes
        limit_cost = o.price * m.unit  # the hold of one lot at the limit (hold(), inline on the fill loop)
        lot = m.lot_size
        unit = m.unit
        tick = m.tick_size
        base_i = m.base_i
        quote_i = m.quote_i
        base_a = base_i >> 1
        quote_a = quote_i >> 1
        t_ppm = m.taker_fee_ppm
        m_ppm = m.maker_fee_ppm
        mi = m.index
        side = o.side
        oid = o.oid
        bal = ledger.balances
        tvec = bal[acct]
        fvec = bal[FEE_ACCOUNT]
        ivec = bal[INSURANCE_ACCOUNT]
        new = _new
        Balance = _Balance
        Trade = _Trade
        append = ev.append
        for mk, n, p in fills:
            if not p:
                self.expired(ledger, m, mk, n, ev)
                continue
            macct = mk.account
            mvec = bal[macct]
            qb = n * lot
            notional = n * p * unit
            if buy:
                fee_t = (qb * t_ppm + PPM - 1) // PPM
                fee_m = (notional * m_ppm + PPM - 1) // PPM
                release = notional if budgeted else n * limit_cost
                tvec[quote_i + 1] -= release
                tvec[quote_i] += release - notional
                tvec[base_i] += qb - fee_t
                mvec[base_i + 1] -= qb
                mvec[quote_i] += notional - fee_m
                append(new(Balance, (BAL, acct, quote_a, release - notional, -release, C_TRADE)))
                append(new(Balance, (BAL, acct, base_a, qb - fee_t, 0, C_TRADE)))
                append(new(Balance, (BAL, macct, base_a, 0, -qb, C_TRADE)))
                append(new(Balance, (BAL, macct, quote_a, notional - fee_m, 0, C_TRADE)))
                fee_b, fee_q = fee_t, fee_m
            else:
                fee_t = (notional * t_ppm + PPM - 1) // PPM
                fee_m = (qb * m_ppm + PPM - 1) // PPM
                tvec[base_i + 1] -= qb
                tvec[quote_i] += notional - fee_t
                mvec[quote_i + 1] -= notional
                mvec[base_i] += qb - fee_m
                append(new(Balance, (BAL, acct, base_a, 0, -qb, C_TRADE)))
                append(new(Balance, (BAL, acct, quote_a, notional - fee_t, 0, C_TRADE)))
                append(new(Balance, (BAL, macct, quote_a, 0, -notional, C_TRADE)))
                append(new(Balance, (BAL, macct, base_a, qb - fee_m, 0, C_TRADE)))
                fee_b, fee_q = fee_m, fee_t
            # the fees, to the fee account less the insurance share (inline: Ledger.fee, once per fill)
            if fee_b:
                ins = fee_b * INSURANCE_SHARE_PCT // 100
                fvec[base_i] += fee_b - ins
                append(new(Balance, (BAL, FEE_ACCOUNT, base_a, fee_b - ins, 0, C_FEE)))
                if ins:
                    ivec[base_i] += ins
                    append(new(Balance, (BAL, INSURANCE_ACCOUNT, base_a, ins, 0, C_FEE)))
            if fee_q:
                ins = fee_q * INSURANCE_SHARE_PCT // 100
                fvec[quote_i] += fee_q - ins
                append(new(Balance, (BAL, FEE_ACCOUNT, quote_a, fee_q - ins, 0, C_FEE)))
                if ins:
                    ivec[quote_i] += ins
                    append(new(Balance, (BAL, INSURANCE_ACCOUNT, quote_a, ins, 0, C_FEE)))
            moid = mk.oid
            append(new(Trade, (TRADE, tid, mi, p * tick, qb, notional, oid, moid, acct, macct, side, fee_t, fee_m)))
            tid += 1
            if not mk.remaining:
                append(new(_Done, (DONE, moid, FILLED, 0, "")))
        return tid


SPOT = SpotSettlement()
