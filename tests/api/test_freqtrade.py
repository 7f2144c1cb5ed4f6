"""freqtrade (pinned, in its own environment ``.venv-freqtrade``) trades live on a running DPG
through the Binance dialect, with the configuration docs/ccxt-freqtrade.md gives: a strategy that
enters whenever it has no trade and exits once the entry filled completes round trips, and its
records (its sqlite database) match DPG's own orders and trades to the base unit."""

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
PAIRS = ["ETH/USDT", "BTC/USDT"]  # two pairs: freqtrade locks a pair for the rest of the candle after an exit
# market maker's book: (bid, ask) per pair, and the quantity on each side
BOOK = {"ETH/USDT": ("1999.00", "2001.00", "1.0000"), "BTC/USDT": ("49999.00", "50001.00", "0.1000")}

STRATEGY = '''
from pandas import DataFrame

from freqtrade.strategy import IStrategy


class DpgRoundTrip(IStrategy):
    """Enter each pair once; exit as soon as the entry has filled."""

    INTERFACE_VERSION = 3
    timeframe = "1m"
    minimal_roi = {"0": 100}
    stoploss = -0.9
    process_only_new_candles = False
    startup_candle_count = 0
    use_exit_signal = True

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["enter_long"] = 1
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["exit_long"] = 0
        return dataframe

    entered: set[str] = set()

    def confirm_trade_entry(self, pair, order_type, amount, rate, time_in_force, current_time, entry_tag, side,
                            **kwargs) -> bool:
        if pair in self.entered:
            return False
        self.entered.add(pair)
        return True

    def custom_exit(self, pair, trade, current_time, current_rate, current_profit, **kwargs):
        return "dpg_round_trip"
'''


def freqtrade_config(base: str, key: str, secret: str, db: Path) -> dict[str, Any]:
    """The configuration docs/ccxt-freqtrade.md describes, for live trading (dry_run false)."""
    api, ws = f"{base}/api/v3", base.replace("http", "ws")
    ccxt_config = {
        "urls": {"api": {"public": api, "private": api, "v1": api, "sapi": f"{base}/sapi/v1",
                         "ws": {"spot": f"{ws}/ws", "ws-api": {"spot": f"{ws}/ws-api/v3"}}}},
        "options": {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]}, "fetchMargins": False,
                    "fetchCurrencies": False},
    }
    return {
        "bot_name": "dpg-round-trips",
        "dry_run": False,
        "trading_mode": "spot",
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
            "enable_ws": True,  # candles from the kline streams, at /ws/<n> (the host-swapped Binance URL)
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
    with served(pg_server, tmp_path_factory.mktemp("freqtrade-dpg"), "dpg_test_freqtrade") as b:
        yield b


def closed_trades(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM trades WHERE is_open = 0").fetchone()[0])
        except sqlite3.OperationalError:  # tables not created yet
            return 0


def test_freqtrade_completes_round_trips_live_and_its_records_match_dpg(
        freqtrade: Path, base: str, tmp_path: Path) -> None:
    bot = User(base, "freqtrade@dpg.test")
    r = bot.http.post("/api/v1/api-keys", json={"name": "freqtrade", "permissions": ["read", "trade"]})
    assert r.status_code == 201, r.text
    key, secret = r.json()["key"], r.json()["secret"]
    bot.credit("USDT", "1000")
    maker, seed = User(base, "mm@dpg.test"), User(base, "seed@dpg.test")
    maker.credit("USDT", "100000")
    maker.credit("ETH", "10")
    maker.credit("BTC", "1")
    seed.credit("USDT", "10000")
    for pair, (bid, ask, qty) in BOOK.items():
        for side, price in (("buy", bid), ("sell", ask)):
            assert maker.order(market=pair, side=side, price=price, quantity=qty).status_code == 201
        # a first trade, so that the pair has a candle
        assert seed.order(market=pair, side="buy", type="market", quantity="0.0010").status_code == 201

    user_data = tmp_path / "user_data"
    (user_data / "strategies").mkdir(parents=True)
    (user_data / "strategies" / "dpg_round_trip.py").write_text(STRATEGY)
    db = tmp_path / "tradesv3.sqlite"
    config = tmp_path / "config.json"
    config.write_text(json.dumps(freqtrade_config(base, key, secret, db), indent=2))
    log = tmp_path / "freqtrade.log"
    with log.open("w") as out:
        proc = subprocess.Popen([str(freqtrade), "trade", "--config", str(config), "--userdir", str(user_data),
                                 "--strategy", "DpgRoundTrip", "--logfile", str(log)],
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
        running_log = log.read_text()  # what it logged while trading (an interrupt may cut a commit short)
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

    # every order DPG has for the bot is one freqtrade recorded, and the other way round
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
        assert n["market"] == o["ft_pair"]
        assert n["side"] == o["ft_order_side"] and n["side"] == o["side"]
        assert dec(o["amount"]) == Decimal(n["quantity"])
        assert dec(o["price"]) == Decimal(n["price"])
        assert dec(o["filled"]) == Decimal(n["filled"])
        assert dec(o["remaining"]) == Decimal(n["remaining"])
        assert o["status"] == {"filled": "closed", "canceled": "canceled", "expired": "expired"}.get(
            n["status"], "open")
        if Decimal(n["filled"]):
            assert dec(o["average"]) == Decimal(n["filled_quote"]) / Decimal(n["filled"])
            assert dec(o["cost"]) == Decimal(n["filled_quote"])

    # DPG's fills of the bot add up, order by order, to what freqtrade recorded as filled
    fills: dict[str, Decimal] = {}
    mine = bot.http.get("/api/v1/my-trades", params={"limit": 500}).json()["trades"]
    for t in mine:
        fills[str(t["order_id"])] = fills.get(str(t["order_id"]), Decimal(0)) + Decimal(t["quantity"])
    assert fills == {oid: Decimal(n["filled"]) for oid, n in native.items() if Decimal(n["filled"])}

    closed = [t for t in trades if not t["is_open"]]
    assert len(closed) == len(trades) == 2 and {t["pair"] for t in closed} == set(PAIRS)
    for t in closed:
        entry, exit_ = (next(o for o in orders if o["ft_trade_id"] == t["id"] and o["ft_order_side"] == side)
                        for side in ("buy", "sell"))
        n_entry, n_exit = native[entry["order_id"]], native[exit_["order_id"]]
        assert (n_entry["status"], n_exit["status"]) == ("filled", "filled")
        # DPG takes a buyer's fee in the base asset, a seller's in the quote asset: freqtrade found both
        assert (n_entry["fee_asset"], n_exit["fee_asset"]) == tuple(t["pair"].split("/"))
        assert dec(entry["ft_fee_base"]) == Decimal(n_entry["fee"])
        assert (t["fee_close_currency"], dec(t["fee_close_cost"])) == (n_exit["fee_asset"], Decimal(n_exit["fee"]))
        assert dec(t["amount"]) == Decimal(n_exit["filled"]) <= Decimal(n_entry["filled"]) - Decimal(n_entry["fee"])
        assert dec(t["open_rate"]) == Decimal(n_entry["filled_quote"]) / Decimal(n_entry["filled"])
        assert dec(t["close_rate"]) == Decimal(n_exit["filled_quote"]) / Decimal(n_exit["filled"])
        assert t["exit_reason"] == "dpg_round_trip"

    # the bot's balances on DPG follow from freqtrade's records alone, to the base unit
    def total(asset: str) -> Decimal:
        return sum((Decimal(x) for x in bot.balance(asset)), Decimal(0))

    usdt = Decimal(1000)
    for t in closed:
        base_asset = t["pair"].split("/")[0]
        mine_orders = [o for o in orders if o["ft_trade_id"] == t["id"]]
        held = sum((dec(o["filled"]) - dec(o["ft_fee_base"]) if o["side"] == "buy" else -dec(o["filled"])
                    for o in mine_orders), Decimal(0))
        assert total(base_asset) == held
        usdt += sum((dec(o["cost"]) if o["side"] == "sell" else -dec(o["cost"]) for o in mine_orders), Decimal(0))
        usdt -= dec(t["fee_close_cost"])
    assert total("USDT") == usdt
