"""DPG governance on a chain: the DPG token, Staking, the DPGGovernor with its timelock, and
ExchangeParams, deployed together (on the embedded development chain, at its first start).

The contracts (``contracts/src``, described in ``docs/governance.md``): ``DPGToken`` (votes on a
timestamp clock), ``Staking`` (stake DPG for a non-transferable voting receipt, earn the stakers'
share of fees in USDT), ``DPGGovernor`` (1 day delay, 1 week vote, quorum 4 % of the supply counting
For and Abstain), ``DPGTimelock`` (2 days; its only proposer and canceller is the governor, anyone
executes) and ``ExchangeParams`` (the timelock's decisions for the exchange, each with a change id).

The deployment sends every transaction at once: the contracts' addresses follow from the
deployer's nonce, so nothing waits for a receipt before the end (on the in-process chain they land
in one block). On a development chain, dev account ``STAKER`` holds DPG, stakes part of it and
delegates the rest to itself (enough votes to pass a proposal alone), and dev account ``HOLDER``
holds DPG it never delegated (so it has no votes).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import asdict, dataclass

from eth_utils.crypto import keccak

from dpg.chain.contracts import encode_call, encode_deploy, load_artifact
from dpg.chain.rpc import Rpc, to_int

DPG = 10**18  # DPG base units per DPG
SUPPLY = 1_000_000_000 * DPG
PROPOSAL_THRESHOLD = 100_000 * DPG  # votes needed to propose: 0.01 % of the supply
TIMELOCK_DELAY = 2 * 24 * 3600  # seconds
FEE_SHARE_BPS = 2_000  # stakers' share of trading fees at deployment, basis points
STAKER = 7  # dev accounts of the demo holders (not the deployer 0, signers 1-5, feeder 6, sender 9)
HOLDER = 8
STAKER_HOLDING = 50_000_000 * DPG  # 5 % of the supply: above the 4 % quorum
STAKER_STAKE = 30_000_000 * DPG
HOLDER_HOLDING = 10_000_000 * DPG

_GAS_DEPLOY = 8_000_000
_GAS_CALL = 300_000
_ZERO = "0x" + "00" * 20


@dataclass(frozen=True, slots=True)
class Governance:
    """The governance contracts' addresses (lower-case 0x)."""

    token: str  # DPGToken
    staking: str  # Staking (its receipt token is sDPG)
    timelock: str  # DPGTimelock
    governor: str  # DPGGovernor
    params: str  # ExchangeParams

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    @staticmethod
    def from_dict(doc: dict[str, str]) -> Governance:
        return Governance(doc["token"], doc["staking"], doc["timelock"], doc["governor"], doc["params"])

    def addresses(self) -> list[str]:
        return list(self.as_dict().values())


def create_address(sender: str, nonce: int) -> str:
    """The address of the contract ``sender`` creates with transaction ``nonce`` (CREATE):
    keccak256(rlp([sender, nonce]))[12:]."""
    if nonce == 0:
        encoded_nonce = b"\x80"
    elif nonce < 0x80:
        encoded_nonce = bytes([nonce])
    else:
        raw = nonce.to_bytes((nonce.bit_length() + 7) // 8, "big")
        encoded_nonce = bytes([0x80 + len(raw)]) + raw
    payload = b"\x94" + bytes.fromhex(sender[2:]) + encoded_nonce
    return "0x" + keccak(bytes([0xC0 + len(payload)]) + payload)[12:].hex()


def role(name: str) -> bytes:
    """A TimelockController role id, e.g. ``role("PROPOSER_ROLE")``."""
    return keccak(text=name)


def deploy_governance(rpc: Rpc, deployer: str, reward_token: str, staker: str = "", holder: str = "",
                      batch: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext,
                      ) -> Governance:
    """Deploy the governance contracts from ``deployer`` with ``reward_token`` (USDT) as the
    stakers' reward, hand Staking and ExchangeParams to the timelock, make the governor the
    timelock's only proposer and canceller and drop the deployer's admin role. The deployer stays
    Staking's rewards distributor (it notifies the fee rewards) and keeps the DPG supply but for
    what ``staker`` and ``holder`` (optional dev accounts) are given. The transactions are sent
    inside ``batch()`` (the in-process chain's ``one_block``), then mined and checked."""
    nonce = to_int(rpc.call("eth_getTransactionCount", [deployer, "pending"]))
    gov = Governance(*(create_address(deployer, nonce + i) for i in range(5)))
    sent: list[str] = []

    def send(frm: str, data: str, to: str = "", gas: int = _GAS_CALL) -> None:
        tx = {"from": frm, "gas": hex(gas), "data": data}
        if to:
            tx["to"] = to
        sent.append(rpc.send_transaction(tx))

    with batch():
        # in nonce order: the five contracts, then the wiring
        send(deployer, encode_deploy(load_artifact("DPGToken"), SUPPLY), gas=_GAS_DEPLOY)
        send(deployer, encode_deploy(load_artifact("Staking"), gov.token, reward_token, deployer, FEE_SHARE_BPS),
             gas=_GAS_DEPLOY)
        send(deployer, encode_deploy(load_artifact("DPGTimelock"), TIMELOCK_DELAY, [], [_ZERO], deployer),
             gas=_GAS_DEPLOY)
        send(deployer, encode_deploy(load_artifact("DPGGovernor"), gov.token, gov.staking, gov.timelock,
                                     PROPOSAL_THRESHOLD), gas=_GAS_DEPLOY)
        send(deployer, encode_deploy(load_artifact("ExchangeParams"), gov.timelock), gas=_GAS_DEPLOY)
        for name in ("PROPOSER_ROLE", "CANCELLER_ROLE"):
            send(deployer, encode_call("grantRole(bytes32,address)", role(name), gov.governor), gov.timelock)
        send(deployer, encode_call("setRewardsDistributor(address)", deployer), gov.staking)
        send(deployer, encode_call("transferOwnership(address)", gov.timelock), gov.staking)
        send(deployer, encode_call("renounceRole(bytes32,address)", b"\x00" * 32, deployer), gov.timelock)
        if staker:
            send(deployer, encode_call("transfer(address,uint256)", staker, STAKER_HOLDING), gov.token)
            send(staker, encode_call("approve(address,uint256)", gov.staking, STAKER_STAKE), gov.token)
            send(staker, encode_call("stake(uint256)", STAKER_STAKE), gov.staking)
            send(staker, encode_call("delegate(address)", staker), gov.token)
        if holder:
            send(deployer, encode_call("transfer(address,uint256)", holder, HOLDER_HOLDING), gov.token)
    rpc.mine()
    for tx in sent:
        receipt = rpc.wait_receipt(tx)
        if to_int(receipt["status"]) != 1:
            raise RuntimeError(f"governance deployment: transaction {tx} failed: {receipt}")
    return gov
