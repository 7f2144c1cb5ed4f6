"""Assets, markets and orders: the value types of the exchange, in integer base units.

An asset has a fixed number of decimals; an amount is an ``int`` of its base units. A market quotes
``price`` as quote base units per one whole base asset and ``qty`` as base units. Inside the book
prices are counted in ticks and quantities in lots; ``unit`` (quote base units per lot per tick)
is a positive integer for every listed market, so every notional is an exact integer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import IntEnum

from dpg.core.errors import DomainError, Reject

PPM = 1_000_000  # fee rates are parts per million of the amount received
INSURANCE_SHARE_PCT = 10  # the insurance fund receives this share of every trading fee

FEE_ACCOUNT = -1  # ledger account that collects trading fees (net of the insurance share)
INSURANCE_ACCOUNT = -2  # ledger account of the insurance fund
SYSTEM_ACCOUNTS = (FEE_ACCOUNT, INSURANCE_ACCOUNT)
STAKERS_ACCOUNT = -3  # ledger account of the stakers' reserve: their share of the fees, until paid out
GOV_REF = "gov:"  # the prefix of a governance decision's reference ("gov:CHAIN:CHANGE")


class Side(IntEnum):
    BUY = 0
    SELL = 1


class OrderType(IntEnum):
    LIMIT = 0  # good till cancelled
    IOC = 1  # immediate or cancel
    FOK = 2  # fill or kill
    POST_ONLY = 3  # rests or is rejected; never takes
    MARKET = 4
    STOP_LIMIT = 5  # a limit order that waits until the last trade price reaches its stop price
    TAKE_PROFIT_LIMIT = 6  # the same, triggered from the other side (a sell above, a buy below)
    STOP_MARKET = 7  # perpetuals: a market order when the mark price reaches its stop price (a stop loss)
    TAKE_PROFIT_MARKET = 8  # perpetuals: the same, triggered from the other side


class STP(IntEnum):
    """Self-trade prevention: what happens when a taker meets a resting order of its own account."""

    EXPIRE_TAKER = 0
    EXPIRE_MAKER = 1
    EXPIRE_BOTH = 2


class MarketKind(IntEnum):
    """What a market trades, and so which settlement its fills go to."""

    SPOT = 0
    PERP = 1  # a linear perpetual: quoted, margined and settled in its quote asset (core/futures.py)


class OrderFlag(IntEnum):
    """Bits of an order's ``flags`` (perpetuals)."""

    REDUCE_ONLY = 1  # never increases the position: shrinks with it, or is cancelled
    CLOSE_POSITION = 2  # a stop or take-profit market order that closes the whole position when it fires


def stop_rises(side: int, otype: int) -> bool:
    """Whether a stop order waits for the last price to rise to its stop (a stop-limit buy, a
    take-profit sell), or to fall to it (a stop-limit sell, a take-profit buy)."""
    return (side == Side.BUY) == (otype == OrderType.STOP_LIMIT or otype == OrderType.STOP_MARKET)


class OrderStatus(IntEnum):
    OPEN = 0
    PARTIALLY_FILLED = 1
    FILLED = 2
    CANCELED = 3
    EXPIRED = 4
    REJECTED = 5


MAX_AMOUNT = 1 << 127  # any amount or balance stays below 2**128 (proof-of-reserves leaves)
MAX_AMOUNT_CHARS = 64  # the longest amount text read; longer is refused before any arithmetic
_MAX_AMOUNT_DIGITS = len(str(MAX_AMOUNT))
_AMOUNT = re.compile(r"([+-]?)([0-9]*)(?:[.,]([0-9]*))?(?:[eE]([+-]?[0-9]+))?")


def parse_amount(text: object, decimals: int, what: str = "amount", asset: str = "") -> int:
    """A decimal string of whole units -> an exact ``int`` of base units (``10**-decimals`` each).

    The one amount parser of every dialect (REST, WebSocket, Binance, CLI, settings). Its cost is
    bounded whatever the input: the text has at most ``MAX_AMOUNT_CHARS`` characters, and the
    number of digits of the result is known before any integer is built, so an exponent like
    ``1e500000`` is refused at once. Accepted: an optional sign, digits with ``.`` or ``,`` as the
    decimal point, an optional exponent (``1.5e-3``). Refused with INVALID_AMOUNT: anything else,
    more decimals than the asset has, and a magnitude of ``MAX_AMOUNT`` base units or more. Zero and
    negative results are returned: whether they are allowed is the caller's rule."""
    if not isinstance(text, str):
        raise DomainError(Reject.INVALID_AMOUNT, f"{what} must be a decimal string")
    if len(text) > MAX_AMOUNT_CHARS:
        raise DomainError(Reject.INVALID_AMOUNT, f"{what} is longer than {MAX_AMOUNT_CHARS} characters")
    found = _AMOUNT.fullmatch(text.strip())
    if found is None or not (found[2] or found[3]):
        raise DomainError(Reject.INVALID_AMOUNT, f"{what} {text!r} is not a decimal number")
    sign, whole, frac, exp = found[1], found[2], found[3] or "", found[4]
    digits = (whole + frac).lstrip("0")
    if not digits:
        return 0
    shift = (int(exp) if exp else 0) - len(frac) + decimals  # value = int(digits) * 10**shift
    if shift < 0:
        if -shift >= len(digits) or digits[shift:].strip("0"):
            raise DomainError(Reject.INVALID_AMOUNT, f"{what} {text.strip()} has more than {decimals} decimals"
                              + (f" for {asset}" if asset else ""))
        digits, shift = digits[:shift], 0
    units = int(digits) * 10**shift if len(digits) + shift <= _MAX_AMOUNT_DIGITS else MAX_AMOUNT
    if units >= MAX_AMOUNT:
        raise DomainError(Reject.INVALID_AMOUNT, f"{what} is too large: amounts stay below 2**127 base units")
    return -units if sign == "-" else units


@dataclass(frozen=True, slots=True)
class Asset:
    symbol: str
    decimals: int
    index: int  # position in the ledger's per-account balance vector

    def to_units(self, amount: str, what: str = "amount") -> int:
        """Whole-asset decimal string -> base units, exactly (``parse_amount``)."""
        return parse_amount(amount, self.decimals, what, self.symbol)

    def format(self, units: int, places: int | None = None) -> str:
        """Base units -> a plain decimal string with ``places`` decimals (default: all of them).
        Fewer places than the asset has must not drop non-zero digits."""
        places = self.decimals if places is None else places
        sign = "-" if units < 0 else ""
        q, r = divmod(abs(units), 10**self.decimals)
        cut = self.decimals - places
        if cut > 0:
            if r % 10**cut:
                raise ValueError(f"{units} units of {self.symbol} need more than {places} decimals")
            r //= 10**cut
        return f"{sign}{q}.{r:0{places}d}" if places else f"{sign}{q}"

    def places_of(self, step: int) -> int:
        """Decimals needed to write any multiple of ``step`` base units."""
        places = self.decimals
        while places > 0 and step % 10 ** (self.decimals - places + 1) == 0:
            places -= 1
        return places


@dataclass(frozen=True, slots=True)
class Market:
    symbol: str  # e.g. "BTC/USDT"
    base: Asset
    quote: Asset
    tick_size: int  # quote base units per whole base unit
    lot_size: int  # base units
    min_notional: int  # quote base units
    maker_fee_ppm: int
    taker_fee_ppm: int
    index: int
    unit: int = field(default=0)  # quote base units per (lot x tick); set by ``listed``
    base_i: int = field(default=0)  # position of the base asset's available balance in a vector
    quote_i: int = field(default=0)
    kind: MarketKind = field(default=MarketKind.SPOT)  # not in the state hash while every market is spot
    halted: bool = field(default=False)  # takes no new order and no amendment (HaltMarket)

    @staticmethod
    def listed(
        symbol: str,
        base: Asset,
        quote: Asset,
        tick_size: int,
        lot_size: int,
        min_notional: int,
        maker_fee_ppm: int,
        taker_fee_ppm: int,
        index: int,
    ) -> Market:
        """Validate the parameters and compute ``unit``; raises DomainError(INVALID_MARKET)."""
        if tick_size <= 0 or lot_size <= 0 or min_notional < 0:
            raise DomainError(Reject.INVALID_MARKET, "tick, lot must be positive, min notional >= 0")
        if not (0 <= maker_fee_ppm < PPM and 0 <= taker_fee_ppm < PPM):
            raise DomainError(Reject.INVALID_MARKET, "fee rates must be within [0, 1e6) ppm")
        if base.index == quote.index:
            raise DomainError(Reject.INVALID_MARKET, "base and quote must differ")
        kind = MarketKind.PERP if symbol.endswith("-PERP") else MarketKind.SPOT
        scale = 10**base.decimals
        if (tick_size * lot_size) % scale:
            raise DomainError(
                Reject.INVALID_MARKET,
                "tick_size x lot_size must be a whole number of quote base units",
            )
        return Market(
            symbol, base, quote, tick_size, lot_size, min_notional, maker_fee_ppm,
            taker_fee_ppm, index, tick_size * lot_size // scale, 2 * base.index, 2 * quote.index, kind,
        )

    def with_terms(self, maker_fee_ppm: int, taker_fee_ppm: int, halted: bool) -> Market:
        """This market with other fees or halted state (a Market is immutable: the engine swaps it)."""
        return Market(self.symbol, self.base, self.quote, self.tick_size, self.lot_size, self.min_notional,
                      maker_fee_ppm, taker_fee_ppm, self.index, self.unit, self.base_i, self.quote_i, self.kind,
                      halted)

    @property
    def compact(self) -> str:
        """The symbol without separator, e.g. ``BTCUSDT`` (a perpetual: ``BTCUSDT_PERP``)."""
        compact = self.base.symbol + self.quote.symbol
        return compact + "_PERP" if self.kind == MarketKind.PERP else compact

    def price_to_units(self, price: str) -> int:
        """Decimal price (quote per whole base) -> quote base units per whole base."""
        return self.quote.to_units(price, "price")

    def qty_to_units(self, qty: str) -> int:
        return self.base.to_units(qty, "quantity")

    def format_price(self, units: int) -> str:
        return self.quote.format(units, self.quote.places_of(self.tick_size)) if units % self.tick_size == 0 \
            else self.quote.format(units)

    def format_qty(self, units: int) -> str:
        return self.base.format(units, self.base.places_of(self.lot_size)) if units % self.lot_size == 0 \
            else self.base.format(units)

    def notional(self, price_units: int, qty_units: int) -> int:
        """Exact notional in quote base units of a quantity at a price (both on tick and lot). Not
        dead: the API's order checks (api/trading.py) use it before a command is sent."""
        return (price_units // self.tick_size) * (qty_units // self.lot_size) * self.unit


class Order:
    """A live order. Prices in ticks, quantities in lots; mutable while it rests in a book."""

    __slots__ = (
        "account",
        "client_id",
        "flags",
        "market",
        "oid",
        "otype",
        "price",
        "qty",
        "quote_qty",
        "remaining",
        "seq",
        "side",
        "stop",
        "stp",
        "ts",
    )

    def __init__(
        self,
        oid: int,
        account: int,
        market: int,
        side: int,
        otype: int,
        price: int,
        qty: int,
        remaining: int,
        quote_qty: int,
        client_id: str,
        stp: int,
        seq: int,
        ts: int,
        stop: int = 0,
        flags: int = 0,
    ) -> None:
        self.oid = oid
        self.account = account
        self.market = market
        self.side = side
        self.otype = otype
        self.price = price  # ticks; 0 for a market order
        self.qty = qty  # lots, as placed (or as amended)
        self.remaining = remaining  # lots; 0 once finished (also marks a dead queue entry)
        self.quote_qty = quote_qty  # quote units for a market buy by quote amount, else 0
        self.client_id = client_id
        self.stp = stp
        self.seq = seq  # sequence number of the command that placed (or last re-queued) it
        self.ts = ts
        self.stop = stop  # ticks; non-zero while a stop order waits for its trigger
        self.flags = flags  # OrderFlag bits (perpetuals); a perpetual's order holds its margin in quote_qty

    def stop_rises(self) -> bool:
        return stop_rises(self.side, self.otype)

    def __repr__(self) -> str:
        return (
            f"Order(oid={self.oid}, account={self.account}, side={Side(self.side).name}, "
            f"price={self.price}, qty={self.qty}, remaining={self.remaining})"
        )
