"""``dpg exit`` against a real anvil node with nothing of the exchange but a proof file: status, a
forced withdrawal request, a freeze refused before the grace period and accepted after it, a claim
paying the proven balance, a second claim refused, and bad input (another key, a v1 proof) refused
with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

from dpg.chain import escape
from dpg.chain.signer import dev_key, write_key
from dpg.por import tree as por
from tests.api.client import dpg_cli
from tests.chain.conftest import DevChain
from tests.chain.test_forced_server import ETH, EXITS, published_tree

RICH, EMPTY = 7, 8


def test_request_freeze_claim_and_status_from_a_proof_file(dev_chain: DevChain, tmp_path: Path) -> None:
    dev_chain.deposit_eth(RICH, 3 * ETH)
    dev_chain.deposit_eth(EMPTY, 1 * ETH)
    t = published_tree(dev_chain, {RICH: 3 * ETH, EMPTY: 1 * ETH})
    proof = tmp_path / "proof.json"
    proof.write_text(json.dumps(por.proof(t, str(RICH))))
    key = tmp_path / "exit.key"
    write_key(key, EXITS[RICH])
    stranger = tmp_path / "stranger.key"
    write_key(stranger, dev_key(5))
    env = {"DPG_DATA_DIR": str(tmp_path / "nothing")}
    url = dev_chain.anvil.url

    def run(*args: str) -> tuple[int, str, str]:
        r = dpg_cli(env, "exit", *args)
        return r.returncode, r.stdout, r.stderr

    code, out, _ = run("status", str(proof), "--rpc", url)
    assert code == 0
    status = json.loads(out)
    assert (status["vault"], status["frozen"], status["requests"], status["claimed"]) == (dev_chain.vault, False, [],
                                                                                         False)
    assert status["proven_balance"] == str(3 * ETH) and status["seconds_to_silence"] > 0
    code, _, err = run("freeze", str(proof), "--rpc", url, "--key", str(key))
    assert code == 1 and "not yet" in err and "request a forced withdrawal first" in err
    code, _, err = run("request", str(proof), "--rpc", url, "--key", str(stranger))
    assert code == 2 and "not the proof's exit address" in err
    v1 = {k: v for k, v in json.loads(proof.read_text()).items() if k not in ("account", "exitAddress")}
    (tmp_path / "v1.json").write_text(json.dumps({**v1, "version": 1}))
    code, _, err = run("request", str(tmp_path / "v1.json"), "--rpc", url, "--key", str(key))
    assert code == 2 and "v1 proof" in err

    code, out, _ = run("request", str(proof), "--rpc", url, "--key", str(key))
    assert code == 0
    requested = json.loads(out)
    assert requested["grace_ends_at"] == requested["requested_at"] + 7 * 86400
    code, _, err = run("request", str(proof), "--rpc", url, "--key", str(key))
    assert code == 1 and "RequestOpen" in err and "already open" in err
    code, _, err = run("freeze", str(proof), "--rpc", url, "--key", str(key))
    assert code == 1 and "not yet" in err and requested["request_id"] in err
    code, _, err = run("claim", str(proof), "--rpc", url, "--key", str(key))
    assert code == 1 and "NotFrozen" in err
    (req,) = json.loads(run("status", str(proof), "--rpc", url)[1])["requests"]
    assert req["request_id"] == requested["request_id"] and 0 < req["seconds_left"] <= 7 * 86400 and not req["served"]

    dev_chain.rpc.call("evm_increaseTime", [req["seconds_left"] + 1])
    dev_chain.mine(1)
    code, out, err = run("freeze", str(proof), "--rpc", url, "--key", str(key))
    assert code == 0, err
    assert json.loads(out)["reason"] == "unserved" and json.loads(out)["frozen_epoch"] == 1
    assert escape.frozen(dev_chain.rpc, dev_chain.vault)
    before = dev_chain.rpc.balance(EXITS[RICH].address)
    code, out, err = run("claim", str(proof), "--rpc", url, "--key", str(key))
    assert code == 0, err
    claimed = json.loads(out)
    assert (claimed["amount"], claimed["base_units"]) == ("3", str(3 * ETH))
    receipt = dev_chain.rpc.receipt(claimed["tx_hash"])
    assert receipt is not None
    gas = int(receipt["gasUsed"], 16) * int(receipt["effectiveGasPrice"], 16)
    assert dev_chain.rpc.balance(EXITS[RICH].address) == before + 3 * ETH - gas
    code, _, err = run("claim", str(proof), "--rpc", url, "--key", str(key))
    assert code == 1 and "AlreadyClaimed" in err
    status = json.loads(run("status", str(proof), "--rpc", url)[1])
    assert status["frozen"] and status["claimed"] and status["claims"][0]["amount"] == str(3 * ETH)
