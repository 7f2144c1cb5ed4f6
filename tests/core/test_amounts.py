"""The one amount parser: decimal strings to exact base units, bounded work on any input."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dpg.core.errors import DomainError, Reject
from dpg.core.model import MAX_AMOUNT, MAX_AMOUNT_CHARS, Asset, parse_amount

BTC = Asset("BTC", 8, 0)


@pytest.mark.parametrize(("text", "decimals", "units"), [
    ("1", 8, 10**8),
    ("0.5", 8, 5 * 10**7),
    ("0,5", 8, 5 * 10**7),
    (" 12.34 ", 2, 1234),
    (".25", 2, 25),
    ("7.", 0, 7),
    ("+3", 0, 3),
    ("-1.5", 1, -15),
    ("0", 8, 0),
    ("-0.000", 8, 0),
    ("0e999999999999", 8, 0),
    ("1e3", 0, 1000),
    ("1.5E-3", 6, 1500),
    ("12300e-2", 0, 123),
    ("1.000000000000", 8, 10**8),  # trailing zeros beyond the decimals are exact
    ("00000000000000000000000000000000000000000000000000000000000001", 0, 1),
    ("170141183460469231731687303715884105727", 0, MAX_AMOUNT - 1),
    ("1.70141183460469231731687303715884105727e38", 0, MAX_AMOUNT - 1),
])
def test_exact_base_units(text: str, decimals: int, units: int) -> None:
    assert parse_amount(text, decimals) == units


@pytest.mark.parametrize(("text", "decimals", "why"), [
    ("1e500000", 8, "too large"),
    ("1e999999", 8, "too large"),
    ("-1e999999", 8, "too large"),
    ("9" * 60, 0, "too large"),
    ("170141183460469231731687303715884105728", 0, "too large"),  # 2**127
    ("1.8e38", 0, "too large"),
    ("1e30", 18, "too large"),  # 10**48 wei
    ("1e-999999", 8, "more than 8 decimals"),
    ("1e-99999999999999999999999999999999999999999999999999999", 8, "more than 8 decimals"),
    ("0.000000001", 8, "more than 8 decimals"),
    ("1.05", 1, "more than 1 decimals"),
    ("1" + "0" * 64, 0, "longer than"),
    ("", 8, "not a decimal number"),
    (".", 8, "not a decimal number"),
    ("e5", 8, "not a decimal number"),
    ("1e", 8, "not a decimal number"),
    ("1..2", 8, "not a decimal number"),
    ("1 000", 8, "not a decimal number"),
    ("0x10", 8, "not a decimal number"),
    ("NaN", 8, "not a decimal number"),
    ("Infinity", 8, "not a decimal number"),
    ("١٢", 8, "not a decimal number"),  # Arabic-Indic digits: int() reads them, an amount does not
    ("²", 8, "not a decimal number"),
    ("1_000", 8, "not a decimal number"),
    ("--1", 8, "not a decimal number"),
])
def test_refused_with_a_reason(text: str, decimals: int, why: str) -> None:
    with pytest.raises(DomainError) as e:
        parse_amount(text, decimals, "quantity")
    assert e.value.code == Reject.INVALID_AMOUNT
    assert why in e.value.reason and e.value.reason.startswith("quantity")


@pytest.mark.parametrize("value", [1.5, 3, None, b"1", Decimal("1"), True])
def test_only_strings(value: object) -> None:
    with pytest.raises(DomainError, match="decimal string"):
        parse_amount(value, 8)  # type: ignore[arg-type]


def test_the_asset_is_named_when_it_has_fewer_decimals() -> None:
    with pytest.raises(DomainError, match="more than 8 decimals for BTC"):
        BTC.to_units("0.123456789", "amount")


def test_every_exponent_up_to_the_longest_text_is_refused() -> None:
    """Refused from the count of digits, before the integer is built (10**500000 would take
    seconds to convert)."""
    for exp in ("50", "500000", "999999", "9" * (MAX_AMOUNT_CHARS - 2)):
        for sign in ("", "-"):
            with pytest.raises(DomainError):
                parse_amount(f"1e{sign}{exp}", 8)


@given(st.decimals(min_value=Decimal("-1e29"), max_value=Decimal("1e29"), places=8, allow_nan=False,
                   allow_infinity=False))
def test_agrees_with_exact_decimal_arithmetic(value: Decimal) -> None:
    with localcontext() as ctx:
        ctx.prec = 80
        want = int(value.scaleb(8))
    for text in (str(value), format(value, "f"), format(value, "e"), format(value, "E").replace(".", ",")):
        assert parse_amount(text, 8) == want, text


@given(st.integers(min_value=-(MAX_AMOUNT - 1), max_value=MAX_AMOUNT - 1), st.integers(min_value=0, max_value=18))
def test_base_units_round_trip_through_the_assets_format(units: int, decimals: int) -> None:
    asset = Asset("X", decimals, 0)
    assert parse_amount(asset.format(units), decimals) == units
