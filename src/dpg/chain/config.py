"""Chain settings: which EVM chains DPG keeps custody on, their vaults, tokens and confirmation depths.

The list comes from the JSON or TOML file named by ``DPG_CHAINS`` (``.json`` is read as JSON,
anything else as TOML); without it, the embedded development default: Ethereum and Polygon, each
an anvil node started by DPG with the contracts deployed at start (``dpg.chain.embedded``).

TOML (JSON has the same shape: ``{"chains": [{"name": ..., "tokens": {"USDT": {...}}}]}``)::

    [[chains]]
    name = "ethereum"            # the chain's name in DPG: deposit references are "<name>:<tx>:<log index>"
    chain_id = 1                 # checked against the node's eth_chainId
    rpc_url = "https://…"        # a JSON-RPC node; "" = an embedded chain started by DPG
    vault = "0x…"                # the Vault; "" only on an embedded chain (deployed at start)
    confirmations = 12           # blocks (the deposit's own included) before a deposit is credited
    native_asset = "ETH"         # the DPG asset the native coin credits; "" = native deposits are not credited
    start_block = 21000000       # optional: where the first scan starts (the vault's deployment block); 0
    poll_seconds = 6.0           # optional: seconds between two polls; 2
    max_block_range = 2000       # optional: most blocks one eth_getLogs asks for; 2000
    block_seconds = 2.0          # optional, embedded chains only: the dev chain's block interval; 2
    forwarder_factory = "0x…"    # optional: the ForwarderFactory of the deposit addresses; "" = none
                                 # (an embedded chain deploys one at start)
    min_sweep = { USDT = "10" }  # optional: the least of an asset a deposit address is swept for
    sequencer_uptime = "0x…"     # optional, an L2 only: Chainlink's sequencer-uptime feed; "" = none
    governance = true            # optional, embedded chains only: deploy DPG's governance contracts
                                 # (docs/governance.md) there, rewards in its USDT; false

    [chains.tokens.USDT]         # the token's symbol on that chain
    address = "0xdAC17F958D2ee523a2206206994597C13D831ec7"
    decimals = 6
    # asset = "USDT"             # optional: the DPG asset it credits; by default from the symbol

    [chains.tokens.WBTC]
    address = "0x2260FAC5E5542a773Aa44fBCfeDf7C193bc2C599"
    decimals = 8                 # WBTC credits BTC

    [[chains.feeds]]             # optional: a Chainlink feed of a perpetual's index (dpg.chain.oracle)
    market = "BTC-PERP"          # the perpetual it prices (in its quote, USDT: a USD feed)
    address = "0xF4030086522a5bEEa4988F8cA5B36dbC97BeE88c"   # the aggregator or its proxy; "" only on
                                 # an embedded chain (a DevAggregator deployed at start, fed by DPG)
    heartbeat_s = 3600           # the feed updates at least this often (Chainlink's heartbeat)
    margin_s = 60                # optional: how late past the heartbeat a round is still valid; 60

A token symbol maps to a DPG asset (ETH and WETH to ETH, USDT to USDT, WBTC and BTC to BTC, or
``asset``); its decimals must equal the asset's, so an on-chain amount is the credit amount,
unit for unit: a file that says otherwise is refused. On Polygon the native coin (POL) is no
DPG asset, so a Polygon entry has ``native_asset = ""`` and credits ETH through WETH.

``min_sweep`` (asset -> a decimal amount) overrides ``DEFAULT_MIN_SWEEP``: funds at a deposit
address below it wait there until more arrive, so that sending dust cannot make the exchange pay
a sweep's gas again and again.

``governance`` may be on one chain only, an embedded one with a USDT token (the embedded default:
Ethereum). ``feeds`` may be on one chain only (the index reads one chain; its ``sequencer_uptime`` feed, on
an L2, guards them all); a market has at most one feed per address. On the embedded default,
Ethereum has a DevAggregator for each perpetual (``DEV_FEED_HEARTBEAT_S``).
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from dpg.core.genesis import ASSETS, PERPS

# DPG's chain assets and their decimals (from the genesis listing: BTC 8, ETH 18, USDT 6, USD 6)
ASSET_DECIMALS: dict[str, int] = dict(ASSETS)
# a token symbol on a chain -> the DPG asset it credits
TOKEN_ASSETS: dict[str, str] = {"ETH": "ETH", "WETH": "ETH", "USDT": "USDT", "WBTC": "BTC", "BTC": "BTC"}
NATIVE = "0x" + "00" * 20  # the token address of the native coin in Vault events
# the least a deposit address is swept for, per asset, in base units: 0.005 ETH, 10 USDT, 0.0001 BTC
DEFAULT_MIN_SWEEP: dict[str, int] = {"ETH": 5 * 10**15, "USDT": 10 * 10**6, "BTC": 10**4}

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_PERP = re.compile(r"^[A-Z0-9]{1,16}-PERP$")
DEFAULT_FEED_MARGIN_S = 60  # a round may be this much older than its feed's heartbeat
DEV_FEED_HEARTBEAT_S = 60  # the embedded chain's DevAggregators: the dev feeder writes a round well within it


class ChainConfigError(ValueError):
    """The chain settings are invalid; the message says which field of which chain."""


@dataclass(frozen=True, slots=True)
class Token:
    symbol: str  # on the chain: USDT, WBTC, WETH
    asset: str  # the DPG asset it credits
    address: str  # lower-case 0x address; "" = deployed by the embedded chain
    decimals: int  # equal to the DPG asset's

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", self.address.lower())
        want = ASSET_DECIMALS.get(self.asset)
        if want is None:
            raise ChainConfigError(f"token {self.symbol}: {self.asset!r} is not a DPG asset")
        if self.decimals != want:
            raise ChainConfigError(
                f"token {self.symbol}: {self.decimals} decimals, but {self.asset} has {want}; amounts must convert 1:1"
            )


@dataclass(frozen=True, slots=True)
class FeedConfig:
    """A Chainlink price feed of a perpetual's index on this chain."""

    market: str  # the perpetual, e.g. BTC-PERP
    address: str  # lower-case 0x address of the aggregator or its proxy; "" = deployed by the embedded chain
    heartbeat_s: int  # the feed updates at least this often
    margin_s: int = DEFAULT_FEED_MARGIN_S  # how late past the heartbeat a round may be

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", self.address.lower())
        if not _PERP.match(self.market):
            raise ChainConfigError(f"feed market {self.market!r}: a perpetual's symbol, like BTC-PERP")
        if self.heartbeat_s < 1:
            raise ChainConfigError(f"feed {self.market}: heartbeat_s must be at least 1 second")
        if self.margin_s < 0:
            raise ChainConfigError(f"feed {self.market}: margin_s must not be negative")


@dataclass(frozen=True, slots=True)
class ChainConfig:
    name: str
    chain_id: int
    rpc_url: str  # "" = embedded
    vault: str  # lower-case 0x address; "" = deployed by the embedded chain
    confirmations: int
    native_asset: str  # "" = native deposits are not credited
    tokens: tuple[Token, ...] = ()
    start_block: int = 0
    poll_seconds: float = 2.0
    max_block_range: int = 2000
    block_seconds: float = 2.0
    forwarder_factory: str = ""  # lower-case 0x address; "" = no deposit addresses (or: deployed, if embedded)
    min_sweep: tuple[tuple[str, int], ...] = ()  # (asset, base units): overrides DEFAULT_MIN_SWEEP
    feeds: tuple[FeedConfig, ...] = ()  # the perpetuals' Chainlink feeds read on this chain
    sequencer_uptime: str = ""  # lower-case 0x address of an L2's sequencer-uptime feed; "" = none
    governance: bool = False  # the governance contracts are deployed on this (embedded) chain
    _by_address: dict[str, Token] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "vault", self.vault.lower())
        object.__setattr__(self, "forwarder_factory", self.forwarder_factory.lower())
        object.__setattr__(self, "sequencer_uptime", self.sequencer_uptime.lower())
        if not re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", self.name):
            raise ChainConfigError(f"chain name {self.name!r}: lower-case letters, digits, - and _, at most 32")
        if self.confirmations < 1:
            raise ChainConfigError(f"chain {self.name}: confirmations must be at least 1")
        if self.native_asset and ASSET_DECIMALS.get(self.native_asset) != 18:
            raise ChainConfigError(f"chain {self.name}: native_asset {self.native_asset!r} is not an 18-decimal asset")
        if not self.embedded and not self.vault:
            raise ChainConfigError(f"chain {self.name}: a chain with an rpc_url needs its vault address")
        if self.native_asset:
            self._by_address[NATIVE] = Token("native", self.native_asset, NATIVE, 18)
        for t in self.tokens:
            if t.address == NATIVE:
                raise ChainConfigError(f"chain {self.name}: token {t.symbol} at the zero address (the native coin)")
            if not t.address and not self.embedded:
                raise ChainConfigError(f"chain {self.name}: token {t.symbol} needs an address")
            if t.address:
                if t.address in self._by_address:
                    raise ChainConfigError(f"chain {self.name}: token address {t.address} listed twice")
                self._by_address[t.address] = t
        seen: set[tuple[str, str]] = set()  # (market, address); address "": the market's deployed feed
        for f in self.feeds:
            if not f.address and not self.embedded:
                raise ChainConfigError(f"chain {self.name}: feed {f.market} needs an address (only an embedded "
                                       "chain deploys its feeds)")
            if (f.market, f.address) in seen:
                raise ChainConfigError(f"chain {self.name}: feed {f.market} at {f.address or 'a deployed address'} "
                                       "listed twice")
            seen.add((f.market, f.address))
        if self.sequencer_uptime and not self.feeds:
            raise ChainConfigError(f"chain {self.name}: a sequencer_uptime feed without feeds guards nothing")
        if self.governance and not any(t.asset == "USDT" for t in self.tokens):
            raise ChainConfigError(f"chain {self.name}: governance pays stakers in USDT: the chain has no USDT token")

    @property
    def embedded(self) -> bool:
        """Started by DPG (an anvil node), not reached at a configured URL."""
        return not self.rpc_url

    def token_at(self, address: str) -> Token | None:
        """The configured token at ``address`` (any case); the native coin at the zero address."""
        return self._by_address.get(address.lower())

    def min_sweep_of(self, asset: str) -> int:
        """The least of ``asset`` (base units) a deposit address is swept for."""
        return dict(self.min_sweep).get(asset, DEFAULT_MIN_SWEEP.get(asset, 1))


def _address(value: Any, what: str, *, allow_empty: bool) -> str:
    if value in ("", None) and allow_empty:
        return ""
    if not isinstance(value, str) or not _ADDRESS.match(value):
        raise ChainConfigError(f"{what}: {value!r} is not a 0x address of 40 hex digits")
    return value.lower()


def _int(entry: Mapping[str, Any], key: str, what: str, default: int | None = None) -> int:
    value = entry.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ChainConfigError(f"{what}: {key} must be a non-negative integer, not {value!r}")
    return value


def _bool(entry: Mapping[str, Any], key: str, what: str) -> bool:
    value = entry.get(key, False)
    if not isinstance(value, bool):
        raise ChainConfigError(f"{what}: {key} must be true or false, not {value!r}")
    return value


def _number(entry: Mapping[str, Any], key: str, what: str, default: float) -> float:
    value = entry.get(key, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        raise ChainConfigError(f"{what}: {key} must be a positive number, not {value!r}")
    return float(value)


def _amount(asset: str, value: Any, what: str) -> int:
    """A decimal amount of ``asset`` (a string or a number) in base units."""
    places = ASSET_DECIMALS.get(asset)
    if places is None:
        raise ChainConfigError(f"{what}: {asset!r} is not a DPG asset")
    try:
        units = Decimal(str(value)) * 10**places
    except InvalidOperation:
        raise ChainConfigError(f"{what}: {asset} = {value!r} is not an amount") from None
    if isinstance(value, bool) or units < 0 or units != units.to_integral_value():
        raise ChainConfigError(f"{what}: {asset} = {value!r}: a non-negative amount, at most {places} decimals")
    return int(units)


def parse_chain(entry: Mapping[str, Any]) -> ChainConfig:
    """One chain from its JSON/TOML table (see the module docstring)."""
    name = entry.get("name")
    if not isinstance(name, str):
        raise ChainConfigError(f"a chain needs a name: {dict(entry)!r}")
    what = f"chain {name}"
    known = {"name", "chain_id", "rpc_url", "vault", "confirmations", "native_asset", "tokens", "start_block",
             "poll_seconds", "max_block_range", "block_seconds", "forwarder_factory", "min_sweep", "feeds",
             "sequencer_uptime", "governance"}
    unknown = set(entry) - known
    if unknown:
        raise ChainConfigError(f"{what}: unknown keys {sorted(unknown)}")
    rpc_url = entry.get("rpc_url", "")
    if not isinstance(rpc_url, str) or (rpc_url and not rpc_url.startswith(("http://", "https://"))):
        raise ChainConfigError(f"{what}: rpc_url must be an http(s) URL or empty, not {rpc_url!r}")
    native = entry.get("native_asset", "")
    if not isinstance(native, str):
        raise ChainConfigError(f"{what}: native_asset must be a string")
    tokens_in = entry.get("tokens", {})
    if not isinstance(tokens_in, Mapping):
        raise ChainConfigError(f"{what}: tokens must be a table of symbol -> {{address, decimals}}")
    tokens = []
    for symbol, t in tokens_in.items():
        if not isinstance(t, Mapping):
            raise ChainConfigError(f"{what}: token {symbol} must be a table")
        extra = set(t) - {"address", "decimals", "asset"}
        if extra:
            raise ChainConfigError(f"{what}: token {symbol}: unknown keys {sorted(extra)}")
        asset = t.get("asset", TOKEN_ASSETS.get(symbol, ""))
        if not isinstance(asset, str) or not asset:
            raise ChainConfigError(f"{what}: token {symbol} maps to no DPG asset (set asset = ...)")
        tokens.append(Token(
            symbol=symbol,
            asset=asset,
            address=_address(t.get("address", ""), f"{what}: token {symbol}", allow_empty=not rpc_url),
            decimals=_int(t, "decimals", f"{what}: token {symbol}"),
        ))
    min_in = entry.get("min_sweep", {})
    if not isinstance(min_in, Mapping):
        raise ChainConfigError(f"{what}: min_sweep must be a table of asset -> amount")
    min_sweep = tuple((asset, _amount(asset, value, f"{what}: min_sweep")) for asset, value in min_in.items())
    feeds = _feeds(entry.get("feeds", []), what, embedded=not rpc_url)
    governance = _bool(entry, "governance", what)
    if governance and rpc_url:  # a resolved embedded chain has its URL, so this is checked here
        raise ChainConfigError(f"{what}: governance is deployed on an embedded chain only")
    max_range = _int(entry, "max_block_range", what, 2000)
    if max_range < 1:
        raise ChainConfigError(f"{what}: max_block_range must be at least 1")
    return ChainConfig(
        name=name,
        chain_id=_int(entry, "chain_id", what),
        rpc_url=rpc_url,
        vault=_address(entry.get("vault", ""), f"{what}: vault", allow_empty=not rpc_url),
        confirmations=_int(entry, "confirmations", what),
        native_asset=native,
        tokens=tuple(tokens),
        start_block=_int(entry, "start_block", what, 0),
        poll_seconds=_number(entry, "poll_seconds", what, 2.0),
        max_block_range=max_range,
        block_seconds=_number(entry, "block_seconds", what, 2.0),
        forwarder_factory=_address(entry.get("forwarder_factory", ""), f"{what}: forwarder_factory", allow_empty=True),
        min_sweep=min_sweep,
        feeds=feeds,
        sequencer_uptime=_address(entry.get("sequencer_uptime", ""), f"{what}: sequencer_uptime", allow_empty=True),
        governance=governance,
    )


def _feeds(value: Any, what: str, *, embedded: bool) -> tuple[FeedConfig, ...]:
    """A chain's ``feeds``: a list of tables {market, address, heartbeat_s, margin_s}."""
    if not isinstance(value, list):
        raise ChainConfigError(f"{what}: feeds must be a list of tables {{market, address, heartbeat_s, margin_s}}")
    out = []
    for n, f in enumerate(value):
        if not isinstance(f, Mapping):
            raise ChainConfigError(f"{what}: feeds[{n}] must be a table")
        extra = set(f) - {"market", "address", "heartbeat_s", "margin_s"}
        if extra:
            raise ChainConfigError(f"{what}: feeds[{n}]: unknown keys {sorted(extra)}")
        market = f.get("market")
        if not isinstance(market, str):
            raise ChainConfigError(f"{what}: feeds[{n}] needs its market (a perpetual, like BTC-PERP)")
        fw = f"{what}: feed {market}"
        if "heartbeat_s" not in f:
            raise ChainConfigError(f"{fw}: heartbeat_s is required (the feed's heartbeat, in seconds)")
        address = _address(f.get("address", ""), fw, allow_empty=embedded)
        heartbeat, margin = _int(f, "heartbeat_s", fw), _int(f, "margin_s", fw, DEFAULT_FEED_MARGIN_S)
        try:
            out.append(FeedConfig(market, address, heartbeat, margin))
        except ChainConfigError as err:
            raise ChainConfigError(f"{what}: {err}") from None
    return tuple(out)


def parse_chains(doc: Mapping[str, Any]) -> tuple[ChainConfig, ...]:
    entries = doc.get("chains")
    if not isinstance(entries, list):
        raise ChainConfigError("the chain settings need a list 'chains'")
    chains = tuple(parse_chain(e) for e in entries)
    names = [c.name for c in chains]
    if len(set(names)) != len(names):
        raise ChainConfigError(f"chain names must be unique: {names}")
    with_governance = [c.name for c in chains if c.governance]
    if len(with_governance) > 1:
        raise ChainConfigError(f"governance is on one chain only, but {', '.join(with_governance)} have it")
    with_feeds = [c.name for c in chains if c.feeds]
    if len(with_feeds) > 1:
        raise ChainConfigError(f"feeds are read on one chain only, but {', '.join(with_feeds)} have feeds")
    return chains


def default_chains() -> tuple[ChainConfig, ...]:
    """The embedded development setup: two anvil chains, 3 confirmations, the tokens deployed at start;
    on the first, a DevAggregator per perpetual and the governance contracts."""
    return (
        ChainConfig(
            name="ethereum", chain_id=31337, rpc_url="", vault="", confirmations=3, native_asset="ETH",
            tokens=(Token("USDT", "USDT", "", 6), Token("WBTC", "BTC", "", 8)),
            feeds=tuple(FeedConfig(p.symbol, "", DEV_FEED_HEARTBEAT_S) for p in PERPS), governance=True,
        ),
        ChainConfig(
            name="polygon", chain_id=31338, rpc_url="", vault="", confirmations=3, native_asset="",
            tokens=(Token("USDT", "USDT", "", 6), Token("WBTC", "BTC", "", 8), Token("WETH", "ETH", "", 18)),
        ),
    )


def load_chains(env: Mapping[str, str] | None = None) -> tuple[ChainConfig, ...]:
    """The chains of the file named by ``DPG_CHAINS``, else the embedded defaults."""
    e = os.environ if env is None else env
    path = e.get("DPG_CHAINS", "")
    if not path:
        return default_chains()
    p = Path(path).expanduser()
    try:
        raw = p.read_bytes()
    except OSError as err:
        raise ChainConfigError(f"DPG_CHAINS={path}: {err}") from None
    try:
        doc = json.loads(raw) if p.suffix == ".json" else tomllib.loads(raw.decode())
    except (ValueError, tomllib.TOMLDecodeError) as err:
        raise ChainConfigError(f"DPG_CHAINS={path}: {err}") from None
    if not isinstance(doc, dict):
        raise ChainConfigError(f"DPG_CHAINS={path}: expected a table with 'chains'")
    return parse_chains(doc)
