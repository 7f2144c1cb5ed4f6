"""Settings: one object read from ``DPG_*`` environment variables, with embedded defaults."""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path  # DPG_DATA_DIR: embedded PostgreSQL and other local state
    database_url: str  # DPG_DATABASE_URL: empty = the embedded PostgreSQL under data_dir
    snapshot_every: int  # DPG_SNAPSHOT_EVERY: commands between two snapshots
    batch_max: int  # DPG_BATCH_MAX: most commands in one journal transaction
    log_level: str  # DPG_LOG_LEVEL
    redis_url: str  # DPG_REDIS_URL: set, the engine and API processes run apart over Redis
    host: str  # DPG_HOST: where the API listens
    port: int  # DPG_PORT
    ip_rate: float  # DPG_RATE_IP: requests per second per client address (burst: twice that)
    key_rate: float  # DPG_RATE_KEY: requests per second per API key or session user
    ws_max_streams: int  # DPG_WS_MAX_STREAMS: channels (streams) one WebSocket connection may hold
    trusted_proxies: tuple[str, ...]  # DPG_TRUSTED_PROXIES: addresses/networks whose X-Forwarded-For is read
    por_interval: int  # DPG_POR_INTERVAL: seconds between proof-of-reserves epochs (86400: daily at 00:00 UTC)
    custody: bool  # DPG_CUSTODY: 0 runs the exchange without its chains (no deposits, no withdrawals)
    withdrawal_ttl: int  # DPG_WITHDRAWAL_TTL: seconds a withdrawal's signatures stay valid (its signed deadline)
    withdrawal_replace_after: int  # DPG_WITHDRAWAL_REPLACE_AFTER: seconds before a stuck transaction is replaced
    withdrawal_daily_limits: dict[str, str]  # DPG_WITHDRAWAL_DAILY_LIMITS: "BTC=10,ETH=200,USDT=1000000" per account
    address_cooldown: int  # DPG_ADDRESS_COOLDOWN: seconds before a newly allow-listed address is usable (0: at once)
    por_secret: str  # DPG_POR_SECRET: hex; empty = the one kept in DPG_DATA_DIR/por.secret (see por_key)
    por_registry: str  # DPG_POR_REGISTRY: the ReserveRegistry; empty = recorded or deployed on an embedded chain
    por_rpc: str  # DPG_POR_RPC: the registry chain's public JSON-RPC URL (verifiers, browsers); empty = the chain's
    por_publish: bool  # DPG_POR_PUBLISH: 0 = dpg up/engine leave publishing to dpg por publish
    smtp_url: str = ""  # DPG_SMTP_URL: where mail goes (smtp://user:pass@host:587); empty = the outbox only
    mail_from: str = ""  # DPG_MAIL_FROM: the sender of that mail; empty = DPG <no-reply@dpg.local>
    public_url: str = "http://127.0.0.1:8000"  # DPG_PUBLIC_URL: the exchange's address in mailed links
    index_every_ms: int = 1_000  # DPG_INDEX_EVERY_MS: how often the perpetuals' index prices are sampled
    dev_clock: bool = False  # DPG_DEV_CLOCK: 1 = the operator may move the clock forward (a dev exchange)
    # DPG_GOVERNANCE: 1 = fees, halts, listings change only by governance decisions; 0 = not (yet); unset
    # (None): `dpg up`/`dpg engine` turn it on when they run an embedded chain with governance (with_chains)
    governance: bool | None = None
    staker_period: int = 7 * 86_400  # DPG_STAKER_PERIOD: seconds of a reward period (the stakers' fees paid once each)

    @staticmethod
    def from_env(env: dict[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        return Settings(
            data_dir=Path(e.get("DPG_DATA_DIR", ".dpg")).expanduser().resolve(),
            database_url=e.get("DPG_DATABASE_URL", ""),
            snapshot_every=_positive(e, "DPG_SNAPSHOT_EVERY", 100_000),
            batch_max=_positive(e, "DPG_BATCH_MAX", 8_192),
            log_level=e.get("DPG_LOG_LEVEL", "INFO").upper(),
            redis_url=e.get("DPG_REDIS_URL", ""),
            host=e.get("DPG_HOST", "127.0.0.1"),
            port=_positive(e, "DPG_PORT", 8000),
            ip_rate=float(_positive(e, "DPG_RATE_IP", 100)),
            key_rate=float(_positive(e, "DPG_RATE_KEY", 100)),
            ws_max_streams=_positive(e, "DPG_WS_MAX_STREAMS", 200),
            trusted_proxies=_networks(e.get("DPG_TRUSTED_PROXIES", ""), "DPG_TRUSTED_PROXIES"),
            por_interval=_positive(e, "DPG_POR_INTERVAL", 86_400),
            custody=e.get("DPG_CUSTODY", "1") not in ("0", "off", "false", "no"),
            withdrawal_ttl=_positive(e, "DPG_WITHDRAWAL_TTL", 6 * 3600),
            withdrawal_replace_after=_positive(e, "DPG_WITHDRAWAL_REPLACE_AFTER", 30),
            withdrawal_daily_limits=_limits(e.get("DPG_WITHDRAWAL_DAILY_LIMITS", "BTC=10,ETH=200,USDT=1000000")),
            address_cooldown=_seconds(e, "DPG_ADDRESS_COOLDOWN", 86_400),
            por_secret=_secret(e.get("DPG_POR_SECRET", ""), "DPG_POR_SECRET"),
            por_registry=_registry(e.get("DPG_POR_REGISTRY", "")),
            por_rpc=e.get("DPG_POR_RPC", ""),
            por_publish=e.get("DPG_POR_PUBLISH", "1") not in ("0", "off", "false", "no"),
            smtp_url=_smtp(e.get("DPG_SMTP_URL", "")),
            mail_from=e.get("DPG_MAIL_FROM", "").strip(),
            public_url=_public_url(e.get("DPG_PUBLIC_URL", "")
                                   or f"http://{e.get('DPG_HOST', '127.0.0.1')}:{e.get('DPG_PORT', '8000')}"),
            index_every_ms=_positive(e, "DPG_INDEX_EVERY_MS", 1_000),
            dev_clock=e.get("DPG_DEV_CLOCK", "0") in ("1", "on", "true", "yes"),
            governance=_flag(e.get("DPG_GOVERNANCE", "")),
            staker_period=_positive(e, "DPG_STAKER_PERIOD", 7 * 86_400),
        )

    def with_chains(self, env: Mapping[str, str] | None = None) -> Settings:
        """These settings for a node that runs its chains: DPG_GOVERNANCE, when unset, is on if the
        exchange runs custody (DPG_CUSTODY) and an embedded chain carries the governance contracts
        (the default chains do)."""
        if self.governance is not None:
            return self
        from dpg.chain.config import ChainConfigError, load_chains

        try:
            governed = self.custody and any(c.embedded and c.governance for c in load_chains(env))
        except ChainConfigError:
            governed = False  # the chains' own start says what is wrong
        return replace(self, governance=governed)

    def por_key(self) -> bytes:
        """The proof-of-reserves secret (the salts' HMAC key): DPG_POR_SECRET, else 32 random bytes
        kept as hex in DPG_DATA_DIR/por.secret (created 0600 on first use)."""
        if self.por_secret:
            return bytes.fromhex(self.por_secret)
        path = self.data_dir / "por.secret"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process made it first
                pass
            else:
                with os.fdopen(fd, "w") as f:
                    f.write(secrets.token_hex(32) + "\n")
        return bytes.fromhex(_secret(path.read_text().strip(), str(path)))


def _flag(raw: str) -> bool | None:
    """An on/off setting; None when unset."""
    raw = raw.strip().lower()
    return None if not raw else raw in ("1", "on", "true", "yes")


def _positive(env: os._Environ[str] | dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be a positive integer, not {raw!r}") from None
    if value <= 0:
        raise SystemExit(f"{name} must be a positive integer, not {raw!r}")
    return value


def _seconds(env: os._Environ[str] | dict[str, str], name: str, default: int) -> int:
    """A number of seconds, 0 allowed."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if not raw.strip().isdigit() or len(raw.strip()) > 12:
        raise SystemExit(f"{name} must be a whole number of seconds (0 or more), not {raw!r}")
    return int(raw)


def _secret(raw: str, name: str) -> str:
    """A hex secret of at least 16 bytes (``0x`` allowed), normalized to bare lower-case hex."""
    raw = raw.strip().removeprefix("0x").lower()
    if not raw:
        return ""
    try:
        key = bytes.fromhex(raw)
    except ValueError:
        raise SystemExit(f"{name} must be hex") from None
    if len(key) < 16:
        raise SystemExit(f"{name} must be at least 16 bytes")
    return key.hex()


def _smtp(raw: str) -> str:
    from dpg.mail import SmtpServer

    raw = raw.strip()
    if raw:
        try:
            SmtpServer.parse(raw)
        except ValueError as e:
            raise SystemExit(str(e)) from None
    return raw


def _public_url(raw: str) -> str:
    from urllib.parse import urlsplit

    raw = raw.strip().rstrip("/")
    u = urlsplit(raw)
    if u.scheme not in ("http", "https") or not u.hostname or u.query or u.fragment:
        raise SystemExit(f"DPG_PUBLIC_URL must be an http(s) URL of the exchange (no query), not {raw!r}")
    return raw


def _registry(raw: str) -> str:
    raw = raw.strip().lower()
    if raw and (len(raw) != 42 or not raw.startswith("0x") or not all(c in "0123456789abcdef" for c in raw[2:])):
        raise SystemExit(f"DPG_POR_REGISTRY must be a 0x address, not {raw!r}")
    return raw


def _networks(raw: str, name: str) -> tuple[str, ...]:
    """Comma-separated IP addresses or networks (``10.0.0.1``, ``10.0.0.0/8``, ``::1``), normalized."""
    out: list[str] = []
    for part in raw.split(","):
        if not part.strip():
            continue
        try:
            net = str(ipaddress.ip_network(part.strip(), strict=False))
        except ValueError:
            raise SystemExit(f"{name}: comma-separated IP addresses or networks; {part.strip()!r} is neither") from None
        if net not in out:
            out.append(net)
    return tuple(out)


def _limits(raw: str) -> dict[str, str]:
    """ASSET=AMOUNT pairs of listed assets, each amount within its asset's decimals."""
    from dpg.core.errors import DomainError
    from dpg.core.genesis import ASSETS
    from dpg.core.model import parse_amount

    places = dict(ASSETS)
    out: dict[str, str] = {}
    for part in raw.split(","):
        asset, sep, amount = (x.strip() for x in part.partition("="))
        asset = asset.upper()
        try:
            ok = bool(sep) and asset in places and parse_amount(amount, places[asset]) >= 0
        except DomainError:
            ok = False
        if not ok:
            raise SystemExit(f"DPG_WITHDRAWAL_DAILY_LIMITS: ASSET=AMOUNT pairs of {', '.join(places)}, comma-"
                             f"separated, within each asset's decimals; not {raw!r}")
        out[asset] = amount
    return out
