"""The /por page in a real browser: after two epochs published on anvil (each with the insurance
fund's balance beside the root), it shows the insurance fund's history per asset, newest first,
each balance, change and transaction as the registry holds them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from dpg.por import ipfs
from dpg.por.registry import deploy_registry, insurance_fund
from tests.api.client import exchange
from tests.chain.conftest import DevChain, anvil_bin, artifacts, dev_chain  # noqa: F401 (fixtures)
from tests.por.test_audit import BALANCES, record_and_publish

pytestmark = pytest.mark.timeout(300)


def test_the_por_page_shows_the_insurance_funds_history(dev_chain: DevChain, pg_url: str,  # noqa: F811
                                                         tmp_path: Path, page: Any, vendored: None) -> None:
    chain = dev_chain
    chain.deposit_token(chain.usdt, 1, 2 * sum(BALANCES.values()))
    registry = deploy_registry(chain.rpc, chain.accounts[0], chain.vault, {"USDT": chain.usdt})
    store = ipfs.Store(tmp_path / "ipfs")
    first, e1 = record_and_publish(chain, pg_url, store, registry, BALANCES, 123_456)
    second, e2 = record_and_publish(chain, pg_url, store, registry, {**BALANCES, 6: 1}, 100_000)
    assert first < second
    assert insurance_fund(chain.rpc, registry, first, "USDT") == (123_456, True)
    assert insurance_fund(chain.rpc, registry, second, "USDT") == (100_000, True)

    with exchange(pg_url, tmp_path) as base:
        page.goto(f"{base}/por")
        expect(page.get_by_role("heading", name="Insurance fund history")).to_be_visible()
        rows = page.locator("table[data-asset=USDT] tr.insurance-epoch")
        expect(rows).to_have_count(2)
        newest, oldest = rows.nth(0).locator("td"), rows.nth(1).locator("td")
        expect(newest.nth(0)).to_have_text(str(second))
        expect(newest.nth(2)).to_have_text("100000")
        expect(newest.nth(3)).to_have_text("-23456")
        expect(newest.nth(4)).to_have_text(e2["insuranceFundTx"])
        expect(oldest.nth(0)).to_have_text(str(first))
        expect(oldest.nth(2)).to_have_text("123456")
        expect(oldest.nth(3)).to_have_text("-")
        expect(oldest.nth(4)).to_have_text(e1["insuranceFundTx"])
        assert e1["insuranceFundTx"] != e2["insuranceFundTx"] and e1["insuranceFundTx"].startswith("0x")
