"""The proof of reserves with futures, on anvil: users with open perpetual positions (cross and
isolated, in profit and in loss, one whose loss is beyond its balance) are recorded at an epoch with
their equity at the mark prices; the USDT tree is published in the ReserveRegistry and each user's
proof verifies on chain with that equity as its value; the insurance fund's balance is published
beside the root and equals the ledger's."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest

from dpg.core.commands import IndexStale, MarkEpoch, SetLeverage, SetMarginMode
from dpg.core.model import INSURANCE_ACCOUNT
from dpg.por import ipfs, proofs
from dpg.por import tree as por
from dpg.por.publish import publish_epoch
from dpg.por.registry import Chain, deploy_registry, insurance_fund, published, verify_onchain
from dpg.store.projection import Projector
from tests.chain.conftest import CHAIN_ID, DevChain, anvil_bin, artifacts, dev_chain  # noqa: F401 (fixtures)
from tests.core.helpers import USDT
from tests.core.test_futures import BI, PerpDesk, open_pair
from tests.core.test_por_equity import reference

B = "BTC-PERP"
SECRET = bytes(range(32))


def _desk() -> PerpDesk:
    """1 cross long and 2 cross short 0.1 BTC; 3 isolated long 0.1 BTC against 4; 5 cross short 0.3
    BTC at 100x against 7 and long 1 ETH, ETH then stale (a scope with a stale market is not
    liquidated); 6 holds USDT and no position. BTC then rises 50,000 -> 52,000: 1, 3 and 7 gain, 2
    and 4 lose, and 5's loss (600) is beyond its balance (450 less fees and margin)."""
    d = PerpDesk()
    d.index(B, 50_000)
    d.index("ETH-PERP", 3_000)
    for a, amount in ((1, 10_000), (2, 10_000), (3, 2_000), (4, 100_000), (5, 450), (6, 777), (7, 100_000)):
        d.fund(a, "USDT", amount * USDT)
    open_pair(d, 1, 2, 50_000, 0.1)
    d.apply(SetMarginMode(3, B, True))
    open_pair(d, 3, 4, 50_000, 0.1)
    d.apply(SetLeverage(5, B, 100))
    open_pair(d, 7, 5, 50_000, 0.3)
    open_pair(d, 5, 7, 3_000, 1, "ETH-PERP")
    d.apply(IndexStale("ETH-PERP"))
    d.index(B, 52_000)
    return d


@pytest.mark.timeout(300)
def test_a_users_proof_verifies_on_chain_with_equity_and_the_insurance_fund_is_published(
        dev_chain: DevChain, pg_url: str, tmp_path: Path) -> None:  # noqa: F811
    d = _desk()
    fut = d.engine.fut
    assert fut.equity(5, -1)[0] < 0 and d.size(5) == -3000  # a loss beyond the balance, still open
    assert fut.positions[(3, BI)].isolated and fut.positions[(3, BI)].margin > 0
    epoch = int(time.time())
    d.apply(MarkEpoch(epoch))
    equity = {a: fut.liability(a) for a in range(1, 8)}
    usdt = {a: d.engine.balances[a][4] + d.engine.balances[a][5] for a in range(1, 8)}
    assert equity == {a: reference(d, a) for a in range(1, 8)}
    assert equity[1] > usdt[1] and equity[3] > usdt[3] and equity[7] > usdt[7]  # gains counted
    assert equity[2] < usdt[2] and equity[4] < usdt[4]  # loss counted
    assert equity[5] == 0 and equity[6] == usdt[6] == 777 * USDT
    fund = d.engine.balances[INSURANCE_ACCOUNT][4] + d.engine.balances[INSURANCE_ACCOUNT][5]
    assert fund > 0  # its share of the trading fees

    projector = Projector(pg_url)
    assert projector.write_epoch(epoch, d.engine.seq, epoch * 1000, d.engine)
    projector.close()

    rpc = dev_chain.rpc
    owner = dev_chain.accounts[0]
    dev_chain.deposit_token(dev_chain.usdt, 1, sum(equity.values()))  # the vault holds the liabilities
    dev_chain.mine()
    registry = deploy_registry(rpc, owner, dev_chain.vault, {"USDT": dev_chain.usdt})
    home = Chain("ethereum", CHAIN_ID, rpc, dev_chain.vault, {"USDT": dev_chain.usdt})
    with psycopg.connect(pg_url) as conn:
        recorded = {int(a): int(b) for a, b in conn.execute(
            "SELECT account, balance FROM por_balances WHERE epoch = %s AND asset = 'USDT'", (epoch,))}
        assert recorded == {a: v for a, v in equity.items() if v}  # 5 (zero) has no leaf
        marks = dict(conn.execute("SELECT market, mark FROM por_marks WHERE epoch = %s", (epoch,)).fetchall())
        assert int(marks[B]) == fut.perps[BI].mark
        report = publish_epoch(conn, epoch, SECRET, home, registry, [], ipfs.Store(tmp_path / "ipfs"), owner)
        assert report["ok"], report
        (entry,) = [a for a in report["assets"] if a["asset"] == "USDT"]
        assert entry["liabilities"] == str(sum(equity.values()))
        assert entry["insuranceFund"] == str(fund) and entry["insuranceFundTx"].startswith("0x")
        assert report["marks"][B] == str(fut.perps[BI].mark)

        root, total, depth = published(rpc, registry, epoch, "USDT")
        assert total == sum(equity.values())
        params = por.Params(CHAIN_ID, registry, epoch, "USDT")
        for a in (1, 2, 3, 4, 6, 7):
            proof = proofs.read(conn, params, depth, str(a))
            assert proof is not None
            assert int(proof["balance"]) == equity[a]
            assert verify_onchain(rpc, registry, proof), a
            # the ledger balance alone (without the positions) does not verify
            if usdt[a] != equity[a]:
                assert not verify_onchain(rpc, registry, {**proof, "balance": str(usdt[a])}), a
        assert proofs.read(conn, params, depth, "5") is None

        # the insurance fund's published balance is the ledger's
        assert insurance_fund(rpc, registry, epoch, "USDT") == (fund, True)
        row = conn.execute("SELECT balance, tx_hash FROM por_insurance WHERE epoch = %s AND asset = 'USDT'",
                           (epoch,)).fetchone()
        assert row is not None and int(row[0]) == fund and row[1] == entry["insuranceFundTx"]

        # publishing again changes nothing and finds the same balance there
        again = publish_epoch(conn, epoch, SECRET, home, registry, [], ipfs.Store(tmp_path / "ipfs"), owner)
        assert again["ok"] and again["assets"][0]["insuranceFund"] == str(fund)
        assert published(rpc, registry, epoch, "USDT") == (root, total, depth)
