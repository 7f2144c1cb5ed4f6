"""Settings read from DPG_* variables: bad values stop the exchange at start with a reason."""

from __future__ import annotations

import pytest

from dpg.config import Settings


def test_withdrawal_limits_are_listed_assets_within_their_decimals() -> None:
    s = Settings.from_env({"DPG_WITHDRAWAL_DAILY_LIMITS": "btc=1.5, USDT=250000"})
    assert s.withdrawal_daily_limits == {"BTC": "1.5", "USDT": "250000"}
    assert Settings.from_env({}).withdrawal_daily_limits == {"BTC": "10", "ETH": "200", "USDT": "1000000"}


@pytest.mark.parametrize("raw", ["DOGE=1", "BTC=1.123456789", "BTC=x", "BTC", "BTC=-1", "USDT=1.0000001"])
def test_bad_withdrawal_limits_are_refused(raw: str) -> None:
    with pytest.raises(SystemExit, match="DPG_WITHDRAWAL_DAILY_LIMITS"):
        Settings.from_env({"DPG_WITHDRAWAL_DAILY_LIMITS": raw})


def test_trusted_proxies_are_none_by_default_and_read_as_networks() -> None:
    assert Settings.from_env({}).trusted_proxies == ()
    s = Settings.from_env({"DPG_TRUSTED_PROXIES": " 10.0.0.5, 10.1.0.0/16,::1,10.0.0.5 "})
    assert s.trusted_proxies == ("10.0.0.5/32", "10.1.0.0/16", "::1/128")


@pytest.mark.parametrize("raw", ["proxy.local", "10.0.0.300", "*", "10.0.0.0/33"])
def test_bad_trusted_proxies_are_refused(raw: str) -> None:
    with pytest.raises(SystemExit, match="DPG_TRUSTED_PROXIES"):
        Settings.from_env({"DPG_TRUSTED_PROXIES": raw})
