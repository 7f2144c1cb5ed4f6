"""The vault's escape hatch reads the proof-of-reserves registry: deploying a registry names it in the
vault (``Vault.setRegistry``, once, by the vault's deployer), on anvil."""

from __future__ import annotations

import pytest

from dpg.chain.contracts import encode_deploy, load_artifact
from dpg.chain.embedded import FORCED_GRACE_SECONDS, SILENCE_SECONDS, TIMELOCK_SECONDS
from dpg.por.registry import Chain, deploy_registry, name_in_vault, vault_registry
from tests.chain.conftest import DevChain, anvil_bin, artifacts, dev_chain  # noqa: F401 (fixtures)

ZERO = "0x" + "00" * 20


def test_the_first_registry_is_named_in_the_vault_and_only_it(dev_chain: DevChain,  # noqa: F811
                                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="dpg.por.publish")
    tokens = Chain.from_config(dev_chain.config()).tokens
    assert vault_registry(dev_chain.rpc, dev_chain.vault) == ZERO

    first = deploy_registry(dev_chain.rpc, dev_chain.accounts[0], dev_chain.vault, tokens)
    assert vault_registry(dev_chain.rpc, dev_chain.vault) == first
    assert "event=vault_registry_set" in caplog.text
    assert name_in_vault(dev_chain.rpc, dev_chain.accounts[0], dev_chain.vault, first)  # already so

    second = deploy_registry(dev_chain.rpc, dev_chain.accounts[0], dev_chain.vault, tokens)
    assert second != first
    assert vault_registry(dev_chain.rpc, dev_chain.vault) == first  # once: the vault keeps its registry
    assert "event=vault_registry_other" in caplog.text


def test_only_the_vaults_deployer_names_its_registry(dev_chain: DevChain,  # noqa: F811
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="dpg.por.publish")
    rpc, deployer, operator = dev_chain.rpc, dev_chain.accounts[7], dev_chain.accounts[0]
    tx = rpc.send_transaction({"from": deployer, "gas": hex(8_000_000), "data": encode_deploy(
        load_artifact("Vault"), dev_chain.accounts[1:6], deployer, TIMELOCK_SECONDS, FORCED_GRACE_SECONDS,
        SILENCE_SECONDS, [])})
    vault = str(rpc.wait_receipt(tx)["contractAddress"]).lower()

    registry = deploy_registry(rpc, operator, vault, {"USDT": dev_chain.usdt})
    assert vault_registry(rpc, vault) == ZERO  # the operator did not deploy this vault
    assert "event=vault_registry_unset" in caplog.text
    assert name_in_vault(rpc, deployer, vault, registry)
    assert vault_registry(rpc, vault) == registry
    assert vault_registry(rpc, dev_chain.usdt) is None  # no escape hatch there
