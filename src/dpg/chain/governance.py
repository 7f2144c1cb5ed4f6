"""DPG governance on a chain: the DPG token, Staking, the DPGGovernor with its timelock, and
ExchangeParams, deployed together (on the embedded development chain, at its first start), and the
Vault handed to the timelock (``govern_vault``).

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

The Vault of the governed chain names the timelock its ``governance`` (``Vault.setGovernance``, once,
by the vault's deployer): from then on only a passed proposal changes its per-token time-lock
threshold and daily limit (``governedConfigure``), its guardian (``governedSetGuardian``) and its
escape-hatch periods (``setEscapePeriods``); the signers' ``configure`` and ``setGuardian`` are refused.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from eth_abi.abi import decode
from eth_utils.crypto import keccak

from dpg.chain.contracts import encode_call, encode_deploy, load_artifact, param_types
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


def govern_vault(rpc: Rpc, deployer: str, vault: str, timelock: str) -> bool:
    """Name ``timelock`` the ``vault``'s governance (sent by the vault's ``deployer``) unless the vault
    has one already; True when it was named now. Raises when the vault refuses."""
    current = read(rpc, vault, "governance()", "address").lower()
    if current != _ZERO:
        if current != timelock.lower():
            raise RuntimeError(f"the vault {vault} is governed by {current}, not by the timelock {timelock}")
        return False
    tx = rpc.send_transaction({"from": deployer, "to": vault, "gas": hex(_GAS_CALL),
                               "data": encode_call("setGovernance(address)", timelock)})
    rpc.mine()
    receipt = rpc.wait_receipt(tx)
    if to_int(receipt["status"]) != 1:
        raise RuntimeError(f"the vault {vault} refused setGovernance({timelock}): {receipt}")
    return True


# ---------------------------------------------------------------------- reading proposals and accounts

STATES = ("Pending", "Active", "Canceled", "Defeated", "Succeeded", "Queued", "Expired", "Executed")
USDT = 10**6  # the stakers' reward token's base units per USDT
PROPOSAL_CREATED = ("ProposalCreated(uint256,address,address[],uint256[],string[],bytes[],uint256,uint256,string)")
_PROPOSAL_FIELDS = ["uint256", "address", "address[]", "uint256[]", "string[]", "bytes[]", "uint256", "uint256",
                    "string"]
# the calls a proposal makes, by selector: ExchangeParams', Staking's, the governor's and the Vault's settings
VAULT_CONFIGURE = "governedConfigure((address,uint256,uint256,bool))"  # (token, largeThreshold, dailyLimit, refuse)
VAULT_GUARDIAN = "governedSetGuardian(address)"
VAULT_ESCAPE_PERIODS = "setEscapePeriods(uint256,uint256)"  # (forcedGrace, silencePeriod), seconds
CALLS = ("setFees(bytes32,uint32,uint32)", "setStakerShare(uint32)",
         "listMarket(bytes32,bytes32,bytes32,uint128,uint128,uint128,uint32,uint32)", "haltMarket(bytes32)",
         "resumeMarket(bytes32)", "setFeeShareBps(uint256)", "setRewardsDuration(uint256)",
         "setVotingDelay(uint48)", "setVotingPeriod(uint32)", "setProposalThreshold(uint256)", VAULT_CONFIGURE,
         VAULT_GUARDIAN, VAULT_ESCAPE_PERIODS)
_BY_SELECTOR = {keccak(text=sig)[:4]: sig for sig in CALLS}


def units_text(units: int, per: int) -> str:
    """Base units as a decimal string with no trailing zero (10**18 per DPG: 1500000000000000000 -> "1.5")."""
    whole, frac = divmod(units, per)
    digits = len(str(per)) - 1
    text = f"{whole}.{frac:0{digits}d}".rstrip("0").rstrip(".") if frac else str(whole)
    return text


@dataclass(frozen=True, slots=True)
class Proposal:
    """A proposal as the governor's ProposalCreated event made it."""

    id: int
    proposer: str
    targets: list[str]
    values: list[int]
    calldatas: list[bytes]
    vote_start: int
    vote_end: int
    description: str

    def description_hash(self) -> bytes:
        return keccak(text=self.description)

    def actions(self) -> list[dict[str, Any]]:
        """Each call: its target, its signature when known and its arguments (symbols as text)."""
        out: list[dict[str, Any]] = []
        for target, data in zip(self.targets, self.calldatas, strict=True):
            sig = _BY_SELECTOR.get(data[:4])
            if sig is None:
                out.append({"target": target, "signature": None, "args": ["0x" + data.hex()]})
                continue
            types = param_types(sig)
            args = [a.rstrip(b"\x00").decode("ascii", "replace") if t == "bytes32" else
                    list(a) if isinstance(a, tuple) else a
                    for t, a in zip(types, decode(types, data[4:]), strict=True)]
            out.append({"target": target, "signature": sig, "args": args})
        return out


def proposals(rpc: Rpc, governor: str, to_block: int | None = None) -> list[Proposal]:
    """Every proposal made to ``governor``, oldest first (read from its ProposalCreated events)."""
    topic = "0x" + keccak(text=PROPOSAL_CREATED).hex()
    raw = rpc.get_logs(governor, [topic], 0, rpc.block_number() if to_block is None else to_block)
    out = []
    for entry in raw:
        pid, proposer, targets, values, _sigs, calldatas, start, end, description = decode(
            _PROPOSAL_FIELDS, bytes.fromhex(str(entry["data"])[2:]))
        out.append(Proposal(pid, proposer, [t.lower() for t in targets], list(values), list(calldatas), start, end,
                            description))
    return out


def read(rpc: Rpc, to: str, signature: str, out: str, *args: object) -> Any:
    (value,) = decode([out], rpc.eth_call(to, encode_call(signature, *args)))
    return value


def proposal_view(rpc: Rpc, gov: Governance, p: Proposal, now: int) -> dict[str, Any]:
    """A proposal with its state, votes (decimal DPG), quorum and timelock ETA (API and CLI shape)."""
    state = STATES[read(rpc, gov.governor, "state(uint256)", "uint8", p.id)]
    against, for_, abstain = decode(["uint256"] * 3, rpc.eth_call(gov.governor,
                                                                  encode_call("proposalVotes(uint256)", p.id)))
    quorum = read(rpc, gov.governor, "quorum(uint256)", "uint256", min(p.vote_start, now - 1))
    eta = read(rpc, gov.governor, "proposalEta(uint256)", "uint256", p.id)
    return {"id": str(p.id), "proposer": p.proposer, "description": p.description, "state": state,
            "for": units_text(for_, DPG), "against": units_text(against, DPG), "abstain": units_text(abstain, DPG),
            "quorum": units_text(quorum, DPG), "vote_start": p.vote_start, "vote_end": p.vote_end,
            "eta": eta or None, "actions": p.actions()}


YEAR = 365 * 86_400  # seconds


def reward_per_dpg_year(rate: int, staked_total: int) -> int:
    """USDT base units a year that one whole staked DPG earns at reward ``rate`` (base units a second
    among ``staked_total`` DPG base units), rounded down: the yield of the last period notified. (An APR
    in percent would need a price of DPG in USDT, which the exchange does not list.)"""
    return rate * YEAR * DPG // staked_total if staked_total else 0


def account_view(rpc: Rpc, gov: Governance, address: str) -> dict[str, Any]:
    """An address's DPG, stake, unclaimed USDT reward, votes (DPG and staked), delegate, and what a
    staked DPG earns a year at the last period's rate."""
    dpg = read(rpc, gov.token, "balanceOf(address)", "uint256", address)
    staked = read(rpc, gov.staking, "staked(address)", "uint256", address)
    earned = read(rpc, gov.staking, "earned(address)", "uint256", address)
    votes = (read(rpc, gov.token, "getVotes(address)", "uint256", address)
             + read(rpc, gov.staking, "getVotes(address)", "uint256", address))
    delegate = read(rpc, gov.token, "delegates(address)", "address", address).lower()
    return {"address": address.lower(), "dpg": units_text(dpg, DPG), "staked": units_text(staked, DPG),
            "earned_usdt": units_text(earned, USDT), "votes": units_text(votes, DPG),
            "delegate": None if delegate == _ZERO else delegate,
            "reward_per_dpg_year": units_text(reward_per_dpg_year(read(rpc, gov.staking, "rewardRate()", "uint256"),
                                                                  read(rpc, gov.staking, "totalSupply()", "uint256")),
                                              USDT)}
