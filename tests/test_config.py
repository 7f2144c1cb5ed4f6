"""Settings read from DPG_* variables: bad values stop the exchange at start with a reason."""

from __future__ import annotations

import json
from pathlib import Path

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


def test_the_address_cooldown_is_a_day_by_default_and_zero_turns_it_off() -> None:
    assert Settings.from_env({}).address_cooldown == 86_400
    assert Settings.from_env({"DPG_ADDRESS_COOLDOWN": "0"}).address_cooldown == 0
    assert Settings.from_env({"DPG_ADDRESS_COOLDOWN": "3600"}).address_cooldown == 3600
    for raw in ("-1", "1.5", "a day", "9" * 20):
        with pytest.raises(SystemExit, match="DPG_ADDRESS_COOLDOWN"):
            Settings.from_env({"DPG_ADDRESS_COOLDOWN": raw})


def test_mail_settings() -> None:
    s = Settings.from_env({"DPG_SMTP_URL": "smtp://u:p@mail.example:2525", "DPG_PUBLIC_URL": "https://dpg.example/",
                           "DPG_MAIL_FROM": " ops@dpg.example "})
    assert (s.smtp_url, s.public_url, s.mail_from) == ("smtp://u:p@mail.example:2525", "https://dpg.example",
                                                       "ops@dpg.example")
    assert Settings.from_env({}).smtp_url == ""
    assert Settings.from_env({"DPG_PORT": "9000"}).public_url == "http://127.0.0.1:9000"
    for env, what in (({"DPG_SMTP_URL": "http://mail.example"}, "scheme"),
                      ({"DPG_SMTP_URL": "smtp+plain://u:secret@h"}, "no credentials"),
                      ({"DPG_PUBLIC_URL": "ftp://dpg.example"}, "DPG_PUBLIC_URL")):
        with pytest.raises(SystemExit, match=what) as info:
            Settings.from_env(env)
        assert "secret" not in str(info.value)


def test_trusted_proxies_are_none_by_default_and_read_as_networks() -> None:
    assert Settings.from_env({}).trusted_proxies == ()
    s = Settings.from_env({"DPG_TRUSTED_PROXIES": " 10.0.0.5, 10.1.0.0/16,::1,10.0.0.5 "})
    assert s.trusted_proxies == ("10.0.0.5/32", "10.1.0.0/16", "::1/128")


@pytest.mark.parametrize("raw", ["proxy.local", "10.0.0.300", "*", "10.0.0.0/33"])
def test_bad_trusted_proxies_are_refused(raw: str) -> None:
    with pytest.raises(SystemExit, match="DPG_TRUSTED_PROXIES"):
        Settings.from_env({"DPG_TRUSTED_PROXIES": raw})


def test_governance_is_on_by_default_with_the_embedded_governance_chain(tmp_path: Path) -> None:
    assert Settings.from_env({}).governance is None  # unset: the node leaves it off
    assert Settings.from_env({}).with_chains({}).governance is True  # the default chains carry it
    assert Settings.from_env({"DPG_GOVERNANCE": "0"}).with_chains({}).governance is False
    assert Settings.from_env({"DPG_GOVERNANCE": "1", "DPG_CUSTODY": "0"}).with_chains({}).governance is True
    assert Settings.from_env({"DPG_CUSTODY": "0"}).with_chains({}).governance is False  # no chains run
    chains = tmp_path / "chains.json"
    chains.write_text(json.dumps({"chains": [{"name": "dev", "chain_id": 31337, "confirmations": 1,
                                              "governance": False, "tokens": {"USDT": {"decimals": 6}}}]}))
    assert Settings.from_env({}).with_chains({"DPG_CHAINS": str(chains)}).governance is False
