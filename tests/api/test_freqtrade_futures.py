"""freqtrade (pinned, in its own environment ``.venv-freqtrade``) trades DPG's perpetuals live through
the Binance USDⓈ-M dialect, in futures mode with isolated margin and leverage 3, with the
configuration docs/ccxt-freqtrade.md gives: a strategy that goes long BTC/USDT:USDT and short
ETH/USDT:USDT and exits once each entry filled completes a long and a short round trip, and its
records (its sqlite database) match DPG's own orders, trades, fees and PnL to the base unit."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.api.client import ROOT, User, served, wait_projected

pytestmark = pytest.mark.timeout(900)

FT_VENV = ROOT / ".venv-freqtrade"
FREQTRADE = FT_VENV / "bin" / "freqtrade"
LONG, SHORT = "BTC/USDT:USDT", "ETH/USDT:USDT"
PAIRS = [LONG, SHORT]
NATIVE = {LONG: "BTC-PERP", SHORT: "ETH-PERP"}
# the spot books that make each perpetual's index, and the perpetual's own book: (bid, ask, quantity)
SPOT = {"BTC/USDT": ("49990.00", "50010.00", "1.0000"), "ETH/USDT": ("1999.00", "2001.00", "1.0000")}
BOOK = {"BTC-PERP": ("49999.00", "50001.00", "0.1000"), "ETH-PERP": ("1999.00", "2001.00", "1.0000")}
LEVERAGE = 3

STRATEGY = '''
from pandas import DataFrame

from freqtrade.strategy import IStrategy


class DpgFuturesRoundTrip(IStrategy):
    """Go long BTC and short ETH once each, at leverage 3; exit as soon as the entry has filled."""

    INTERFACE_VERSION = 3
    timeframe = "1m"
    can_short = True
    minimal_roi = {"0": 100}
    stoploss = -0.9
    process_only_new_candles = False
    startup_candle_count = 0
    use_exit_signal = True

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        short = metadata["pair"].startswith("ETH/")
        dataframe["enter_long"] = 0 if short else 1
        dataframe["enter_short"] = 1 if short else 0
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["exit_long"] = 0
        dataframe["exit_short"] = 0
        return dataframe

    entered: set[str] = set()

    def confirm_trade_entry(self, pair, order_type, amount, rate, time_in_force, current_time, entry_tag, side,
                            **kwargs) -> bool:
        if pair in self.entered:
            return False
        self.entered.add(pair)
        return True

    def leverage(self, pair, current_time, current_rate, proposed_leverage, max_leverage, entry_tag, side,
                 **kwargs) -> float:
        return 3.0

    def custom_exit(self, pair, trade, current_time, current_rate, current_profit, **kwargs):
        return "dpg_round_trip"
'''


def freqtrade_config(base: str, key: str, secret: str, db: Path) -> dict[str, Any]:
    """The futures configuration docs/ccxt-freqtrade.md describes, for live trading (dry_run false)."""
    v1, v2, v3 = f"{base}/fapi/v1", f"{base}/fapi/v2", f"{base}/fapi/v3"
    ws = base.replace("http", "ws")
    ccxt_config = {
        "urls": {"api": {"fapiPublic": v1, "fapiPublicV2": v2, "fapiPublicV3": v3,
                         "fapiPrivate": v1, "fapiPrivateV2": v2, "fapiPrivateV3": v3,
                         "public": f"{base}/api/v3", "private": f"{base}/api/v3", "v1": f"{base}/api/v3",
                         "sapi": f"{base}/sapi/v1", "ws": {"linear": f"{ws}/fstream/ws"}}},
        "options": {"fetchMarkets": {"types": ["linear"]}, "fetchMargins": False, "fetchCurrencies": False},
    }
    return {
        "bot_name": "dpg-futures-round-trips",
        "dry_run": False,
        "trading_mode": "futures",
        "margin_mode": "isolated",
        "max_open_trades": len(PAIRS),
        "stake_currency": "USDT",
        "stake_amount": 50,
        "tradable_balance_ratio": 0.99,
        "fiat_display_currency": "",
        "timeframe": "1m",
        "initial_state": "running",
        "db_url": f"sqlite:///{db}",
        "unfilledtimeout": {"entry": 20, "exit": 20, "unit": "seconds"},
        "order_types": {"entry": "limit", "exit": "limit", "stoploss": "market", "stoploss_on_exchange": False},
        "entry_pricing": {"price_side": "other", "use_order_book": True, "order_book_top": 1,
                          "price_last_balance": 0.0, "check_depth_of_market": {"enabled": False}},
        "exit_pricing": {"price_side": "other", "use_order_book": True, "order_book_top": 1},
        "exchange": {
            "name": "binance",
            "key": key,
            "secret": secret,
            "enable_ws": True,  # candles from the futures kline streams, at /fstream/ws/<n>
            "ccxt_config": ccxt_config,
            "ccxt_async_config": ccxt_config,
            "pair_whitelist": PAIRS,
            "pair_blacklist": [],
            # keep the candle still forming: a fresh exchange has no finished candle yet
            "_ft_has_params": {"ohlcv_partial_candle": False},
        },
        "pairlists": [{"method": "StaticPairList"}],
        "internals": {"process_throttle_secs": 1, "heartbeat_interval": 0},
    }


@pytest.fixture(scope="module")
def freqtrade() -> Path:
    """The freqtrade command of ``.venv-freqtrade``, installed (make) on first use."""
    done = subprocess.run(["make", "-s", ".venv-freqtrade/.installed"], cwd=ROOT, capture_output=True, text=True,
                          timeout=1200, check=False)
    why = done.stdout[-3000:] + done.stderr[-3000:]
    assert done.returncode == 0 and FREQTRADE.exists(), f"make .venv-freqtrade/.installed failed:\n{why}"
    return FREQTRADE


@pytest.fixture(scope="module")
def base(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with served(pg_server, tmp_path_factory.mktemp("freqtrade-futures-dpg"), "dpg_test_freqtrade_futures",
                DPG_INDEX_EVERY_MS="100") as b:
        yield b


def closed_trades(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM trades WHERE is_open = 0").fetchone()[0])
        except sqlite3.OperationalError:  # tables not created yet
            return 0


def indexed(base: str) -> None:
    """Spot books around 50,000 and 2,000, the perpetuals' books on top, and a first trade on each."""
    spot = User(base, "spot-maker@ftfut.dpg")
    spot.credit("USDT", "1000000")
    spot.credit("BTC", "10")
    spot.credit("ETH", "100")
    for pair, (bid, ask, qty) in SPOT.items():
        for side, px in (("buy", bid), ("sell", ask)):
            assert spot.order(market=pair, side=side, price=px, quantity=qty).status_code == 201
    deadline = time.monotonic() + 30
    while True:
        rows = spot.http.get("/api/v1/futures/markets").json()
        if all(r["index_price"] for r in rows if r["market"] in BOOK):
            break
        assert time.monotonic() < deadline, rows
        time.sleep(0.1)
    maker, seed = User(base, "mm@ftfut.dpg"), User(base, "seed@ftfut.dpg")
    maker.credit("USDT", "1000000")
    seed.credit("USDT", "10000")
    for market, (bid, ask, qty) in BOOK.items():
        for side, px in (("buy", bid), ("sell", ask)):
            r = maker.order(market=market, side=side, price=px, quantity=qty)
            assert r.status_code == 201, r.text
        r = seed.order(market=market, side="buy", type="market", quantity="0.0100")
        assert r.status_code == 201, r.text


def test_freqtrade_futures_goes_long_and_short_live_and_its_records_match_dpg(
        freqtrade: Path, base: str, tmp_path: Path) -> None:
    bot = User(base, "freqtrade@ftfut.dpg")
    r = bot.http.post("/api/v1/api-keys", json={"name": "freqtrade", "permissions": ["read", "trade"]})
    assert r.status_code == 201, r.text
    key, secret = r.json()["key"], r.json()["secret"]
    bot.credit("USDT", "1000")
    indexed(base)

    user_data = tmp_path / "user_data"
    (user_data / "strategies").mkdir(parents=True)
    (user_data / "strategies" / "dpg_futures_round_trip.py").write_text(STRATEGY)
    db = tmp_path / "tradesv3.sqlite"
    config = tmp_path / "config.json"
    config.write_text(json.dumps(freqtrade_config(base, key, secret, db), indent=2))
    log = tmp_path / "freqtrade.log"
    with log.open("w") as out:
        proc = subprocess.Popen([str(freqtrade), "trade", "--config", str(config), "--userdir", str(user_data),
                                 "--strategy", "DpgFuturesRoundTrip", "--logfile", str(log)],
                                cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 150
        while closed_trades(db) < 2:
            if proc.poll() is not None:
                pytest.fail(f"freqtrade exited ({proc.returncode}):\n{log.read_text()[-6000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"freqtrade closed {closed_trades(db)} trades in 150 s:\n{log.read_text()[-6000:]}")
            time.sleep(0.5)
        running_log = log.read_text()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    errors = [line for line in running_log.splitlines() if " - ERROR - " in line or " - WARNING - " in line]
    assert not errors, "\n".join(errors)
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        trades = [dict(t) for t in conn.execute("SELECT * FROM trades ORDER BY id")]
        orders = [dict(o) for o in conn.execute("SELECT * FROM orders ORDER BY id")]

    native: dict[str, dict[str, Any]] = {}
    for o in orders:
        got = bot.http.get(f"/api/v1/orders/{o['order_id']}")
        assert got.status_code == 200, got.text
        native[o["order_id"]] = got.json()
    wait_projected(bot, max(n["updated_seq"] for n in native.values()))
    history = bot.http.get("/api/v1/orders/history", params={"limit": 500}).json()
    dpg_ids = {str(o["order_id"]) for o in history["orders"]} | {
        str(o["order_id"]) for o in bot.http.get("/api/v1/orders/open").json()}
    assert dpg_ids == set(native), (dpg_ids, set(native))

    def dec(x: float | None) -> Decimal:
        return Decimal(str(x)) if x is not None else Decimal(0)

    for o in orders:
        n = native[o["order_id"]]
        assert n["market"] == NATIVE[o["ft_pair"]]
        assert n["side"] == o["side"]
        assert dec(o["amount"]) == Decimal(n["quantity"])
        assert dec(o["price"]) == Decimal(n["price"])
        assert dec(o["filled"]) == Decimal(n["filled"])
        assert dec(o["remaining"]) == Decimal(n["remaining"])
        assert o["status"] == {"filled": "closed", "canceled": "canceled", "expired": "expired"}.get(
            n["status"], "open")
        if Decimal(n["filled"]):
            assert dec(o["average"]) == Decimal(n["filled_quote"]) / Decimal(n["filled"])
            assert dec(o["cost"]) == Decimal(n["filled_quote"])

    fills: dict[str, Decimal] = {}
    for t in bot.http.get("/api/v1/my-trades", params={"limit": 500}).json()["trades"]:
        fills[str(t["order_id"])] = fills.get(str(t["order_id"]), Decimal(0)) + Decimal(t["quantity"])
    assert fills == {oid: Decimal(n["filled"]) for oid, n in native.items() if Decimal(n["filled"])}

    # freqtrade set each perpetual to isolated margin at leverage 3 on DPG
    settings = {s["market"]: s for s in bot.http.get("/api/v1/futures/settings").json()}
    for market in NATIVE.values():
        assert (settings[market]["margin_mode"], settings[market]["leverage"]) == ("isolated", LEVERAGE)

    closed = [t for t in trades if not t["is_open"]]
    assert len(closed) == len(trades) == 2
    assert {(t["pair"], bool(t["is_short"])) for t in closed} == {(LONG, False), (SHORT, True)}
    profit = Decimal(0)
    for t in closed:
        assert t["trading_mode"] == "FUTURES" and t["leverage"] == LEVERAGE
        entry_side, exit_side = ("sell", "buy") if t["is_short"] else ("buy", "sell")
        entry, exit_ = (next(o for o in orders if o["ft_trade_id"] == t["id"] and o["ft_order_side"] == side)
                        for side in (entry_side, exit_side))
        n_entry, n_exit = native[entry["order_id"]], native[exit_["order_id"]]
        assert (n_entry["status"], n_exit["status"]) == ("filled", "filled")
        assert (n_entry["side"], n_exit["side"]) == (entry_side, exit_side)
        # fees on perpetuals are USDT: freqtrade found both, to the base unit
        assert (n_entry["fee_asset"], n_exit["fee_asset"]) == ("USDT", "USDT")
        # (freqtrade rewrites fee_open_cost as its rate times the margin stake; its profit uses the rate)
        assert t["fee_open_currency"] == "USDT"
        assert (t["fee_close_currency"], dec(t["fee_close_cost"])) == ("USDT", Decimal(n_exit["fee"]))
        assert dec(t["amount"]) == Decimal(n_exit["filled"]) == Decimal(n_entry["filled"])
        assert dec(t["open_rate"]) == Decimal(n_entry["filled_quote"]) / Decimal(n_entry["filled"])
        assert dec(t["close_rate"]) == Decimal(n_exit["filled_quote"]) / Decimal(n_exit["filled"])
        assert t["exit_reason"] == "dpg_round_trip"
        # the round trip's PnL: what DPG realized, less both fees
        sign = -1 if t["is_short"] else 1
        realized = sign * (Decimal(n_exit["filled_quote"]) - Decimal(n_entry["filled_quote"]))
        funding = dec(t["funding_fees"])
        assert funding == 0  # no funding time passes in the test
        # freqtrade's gross PnL from its own rates and amount is DPG's to the base unit
        assert sign * dec(t["amount"]) * (dec(t["close_rate"]) - dec(t["open_rate"])) == realized
        exact = realized - Decimal(n_entry["fee"]) - Decimal(n_exit["fee"])
        # its net profit prices the entry fee as rate x value (float), which may differ from DPG's fee,
        # rounded up to the base unit, by at most one unit (0.000001 USDT)
        assert abs(dec(t["close_profit_abs"]) - exact) <= Decimal("0.000001")
        profit += exact

    # no position is left, and the bot's USDT on DPG is its credit plus freqtrade's profits, to the base unit
    assert [p for p in bot.http.get("/api/v1/futures/positions").json() if Decimal(p["size"])] == []
    assert sum((Decimal(x) for x in bot.balance("USDT")), Decimal(0)) == Decimal(1000) + profit
