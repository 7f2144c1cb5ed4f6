"""``dpg perps ...``: perpetual futures arithmetic anyone can run, e.g. liquidation prices
(docs/futures.md). Numbers are read exactly (decimal strings to Fractions), never as floats."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Annotated

import typer

from dpg.cli.context import fail
from dpg.core.margin import DEFAULT_TIERS, PositionTerms, RealTiers, liquidation_prices

perps_app = typer.Typer(help="Perpetual futures: liquidation prices by hand (docs/futures.md)", no_args_is_help=True)

USDT_DECIMALS = 6
SIDES = {"long": 1, "short": -1}


def exact(value: object, what: str) -> Fraction:
    """A decimal string or JSON number as an exact Fraction; ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ValueError(f"{what} must be a decimal number, not {value!r}")
    try:
        d = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{what} must be a decimal number, not {value!r}") from None
    if not d.is_finite():
        raise ValueError(f"{what} must be a finite decimal number, not {value!r}")
    return Fraction(d)


def parse_position(text: str) -> PositionTerms:
    """``MARKET:SIDE:QTY@ENTRY[:MARK]`` as position terms; ValueError when malformed."""
    parts = text.split(":")
    if len(parts) not in (3, 4) or "@" not in parts[2]:
        raise ValueError(f"a position is MARKET:SIDE:QTY@ENTRY[:MARK], not {text!r}")
    market, side = parts[0].strip(), parts[1].strip().lower()
    if not market:
        raise ValueError(f"a position needs a market: {text!r}")
    if side not in SIDES:
        raise ValueError(f"a position's side is long or short, not {parts[1]!r}")
    qty_text, entry_text = parts[2].split("@", 1)
    qty, entry = exact(qty_text, "quantity"), exact(entry_text, "entry price")
    mark = exact(parts[3], "mark price") if len(parts) == 4 else entry
    if qty <= 0 or entry <= 0 or mark <= 0:
        raise ValueError(f"quantity, entry and mark must be positive: {text!r}")
    return PositionTerms(market, SIDES[side], qty, entry, mark)


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a number")


def parse_tiers(text: str) -> dict[str, RealTiers]:
    """A tiers file: ``{"MARKET": [[floor, mmr, max_leverage], ...]}``, cum derived; ValueError when bad."""
    try:
        data = json.loads(text, parse_float=Decimal, parse_int=Decimal, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise ValueError(f"the tiers file is not JSON: {e}") from None
    if not isinstance(data, dict) or not data:
        raise ValueError('the tiers file maps a market to [[notional_floor, mmr, max_leverage], ...]')
    tables: dict[str, RealTiers] = {}
    for market, rows in data.items():
        if not isinstance(rows, list) or not all(isinstance(r, list) and len(r) == 3 for r in rows):
            raise ValueError(f"{market}: tiers are a list of [notional_floor, mmr, max_leverage]")
        real: list[tuple[Fraction, Fraction, int]] = []
        for floor, mmr, lev in rows:
            max_lev = exact(lev, f"{market}: max leverage")
            if max_lev.denominator != 1:
                raise ValueError(f"{market}: max leverage must be an integer, not {lev}")
            real.append((exact(floor, f"{market}: notional floor"), exact(mmr, f"{market}: mmr"),
                         int(max_lev)))
        try:
            tables[market] = RealTiers.of(real)
        except ValueError as e:
            raise ValueError(f"{market}: {e}") from None
    return tables


def two_decimals(price: Fraction) -> str:
    """A positive price with two decimals, rounded half up."""
    cents = int(price * 100 + Fraction(1, 2))
    return f"{cents // 100}.{cents % 100:02d}"


@perps_app.command("liq-price")
def liq_price_command(
    wallet: Annotated[str, typer.Option(help="Wallet balance in USDT (isolated: the position's margin)")],
    mode: Annotated[str, typer.Option(help="isolated (exactly one position) or cross")],
    position: Annotated[list[str], typer.Option(help="MARKET:SIDE:QTY@ENTRY[:MARK], SIDE long or short; repeatable")],
    tiers: Annotated[Path | None, typer.Option(help="JSON: market -> [[notional_floor, mmr, max_leverage], ...] "
                                                    "(default: the markets' own tables)")] = None,
) -> None:
    """Print each position's liquidation price: MARKET PRICE, or MARKET none when no positive price liquidates it."""
    try:
        balance = exact(wallet, "--wallet")
        positions = [parse_position(p) for p in position]
        if tiers is not None:
            try:
                text = tiers.read_text()
            except OSError as e:
                raise ValueError(f"cannot read {tiers}: {e.strerror or e}") from None
            tables = parse_tiers(text)
        else:
            tables = {m: RealTiers.from_table(t, USDT_DECIMALS) for m, t in DEFAULT_TIERS.items()}
        for p in positions:
            if p.market not in tables:
                where = f"in {tiers}" if tiers is not None else f"(known: {', '.join(sorted(tables))}; or give --tiers)"
                raise ValueError(f"no tier table for {p.market} {where}")
        prices = liquidation_prices(balance, mode, positions, tables)
    except ValueError as e:
        raise fail(str(e)) from None
    for p, price in zip(positions, prices, strict=True):
        typer.echo(f"{p.market} {two_decimals(price) if price is not None else 'none'}")
