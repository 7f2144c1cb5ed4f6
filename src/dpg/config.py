"""Settings: one object read from ``DPG_*`` environment variables, with embedded defaults."""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path


@dataclass(frozen=True, slots=True)
class SurveillanceSettings:
    """Trade surveillance (dpg.surveillance, docs/surveillance.md): its schedule and thresholds.
    Percentages are exact decimals (``Decimal``): a boundary case is decided by integer arithmetic."""

    interval: int = 60  # DPG_SURVEILLANCE_INTERVAL: seconds between two runs in dpg up / dpg engine; 0 = none
    window: int = 3600  # DPG_SURVEILLANCE_WINDOW: seconds a wash pair's two sides, or spoofing's orders, may span
    wash_price_pct: Decimal = Decimal(3)  # DPG_SURVEILLANCE_WASH_PRICE_PCT: |p1-p2| <= pct% of the lower price
    wash_qty_pct: Decimal = Decimal(3)  # DPG_SURVEILLANCE_WASH_QTY_PCT: |q1-q2| <= pct% of the smaller size
    spoof_cancel_pct: Decimal = Decimal(10)  # DPG_SURVEILLANCE_SPOOF_CANCEL_PCT: cancelled share that alerts
    spoof_near_pct: Decimal = Decimal(1)  # DPG_SURVEILLANCE_SPOOF_NEAR_PCT: "near the best price", in %
    layering_orders: int = 3  # DPG_SURVEILLANCE_LAYERING_ORDERS: fewest layered orders cancelled
    layering_levels: int = 2  # DPG_SURVEILLANCE_LAYERING_LEVELS: fewest distinct price levels among them
    layering_cancel_s: int = 10  # DPG_SURVEILLANCE_LAYERING_CANCEL_S: seconds after the execution
    benford_alpha: Decimal = Decimal("0.05")  # DPG_SURVEILLANCE_BENFORD_ALPHA: the chi-square test's significance
    benford_min_trades: int = 100  # DPG_SURVEILLANCE_BENFORD_MIN_TRADES: fewer trades in a day: not tested
    exempt: frozenset[int] = frozenset()  # DPG_SURVEILLANCE_EXEMPT: accounts (designated market makers) that
    # spoofing and layering leave out; wash trades are searched for every account

    @staticmethod
    def from_env(e: os._Environ[str] | dict[str, str]) -> SurveillanceSettings:
        return SurveillanceSettings(
            interval=_seconds(e, "DPG_SURVEILLANCE_INTERVAL", 60),
            window=_positive(e, "DPG_SURVEILLANCE_WINDOW", 3600),
            wash_price_pct=_percent(e, "DPG_SURVEILLANCE_WASH_PRICE_PCT", Decimal(3)),
            wash_qty_pct=_percent(e, "DPG_SURVEILLANCE_WASH_QTY_PCT", Decimal(3)),
            spoof_cancel_pct=_percent(e, "DPG_SURVEILLANCE_SPOOF_CANCEL_PCT", Decimal(10)),
            spoof_near_pct=_percent(e, "DPG_SURVEILLANCE_SPOOF_NEAR_PCT", Decimal(1)),
            layering_orders=_positive(e, "DPG_SURVEILLANCE_LAYERING_ORDERS", 3),
            layering_levels=_positive(e, "DPG_SURVEILLANCE_LAYERING_LEVELS", 2),
            layering_cancel_s=_positive(e, "DPG_SURVEILLANCE_LAYERING_CANCEL_S", 10),
            benford_alpha=_fraction(e, "DPG_SURVEILLANCE_BENFORD_ALPHA", Decimal("0.05")),
            benford_min_trades=_positive(e, "DPG_SURVEILLANCE_BENFORD_MIN_TRADES", 100),
            exempt=_accounts(e.get("DPG_SURVEILLANCE_EXEMPT", ""), "DPG_SURVEILLANCE_EXEMPT"),
        )


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
    backup_dir: str = ""  # DPG_BACKUP_DIR: where backups are kept (the console lists them); empty = DATA_DIR/backups
    # DPG_BACKUP_KEY: 64 hex characters, or a file holding them; empty = DPG_DATA_DIR/backup.key. A secret:
    # never logged, never recorded with the other settings
    backup_key: str = ""
    backup_every: int = 86_400  # DPG_BACKUP_EVERY: seconds between dpg up's backups (at multiples, UTC); 0 = none
    backup_keep: int = 7  # DPG_BACKUP_KEEP: how many of dpg up's backups are kept (older ones are deleted)
    backup_ship_every: int = 60  # DPG_BACKUP_SHIP_EVERY: seconds between shipped journal files; 0 = none
    surveillance: SurveillanceSettings = field(default_factory=SurveillanceSettings)  # DPG_SURVEILLANCE_*
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
            backup_dir=e.get("DPG_BACKUP_DIR", "").strip(),
            backup_key=e.get("DPG_BACKUP_KEY", "").strip(),
            backup_every=_seconds(e, "DPG_BACKUP_EVERY", 86_400),
            backup_keep=_positive(e, "DPG_BACKUP_KEEP", 7),
            backup_ship_every=_seconds(e, "DPG_BACKUP_SHIP_EVERY", 60),
            surveillance=SurveillanceSettings.from_env(e),
            staker_period=_positive(e, "DPG_STAKER_PERIOD", 7 * 86_400),
        )

    def audited(self) -> dict[str, str | int | bool]:
        """The settings as the audit log keeps them: every one but those that may hold a secret
        (the database, Redis and SMTP URLs, the proof-of-reserves secret, the backup key); floats as text."""
        secret = {"database_url", "redis_url", "smtp_url", "por_secret", "backup_key"}
        out: dict[str, str | int | bool] = {}
        for f in fields(self):
            if f.name in secret:
                continue
            value = getattr(self, f.name)
            if isinstance(value, dict):
                value = ",".join(f"{k}={v}" for k, v in sorted(value.items()))
            elif isinstance(value, tuple):
                value = ",".join(map(str, value))
            out[f.name] = value if isinstance(value, bool | int) and not isinstance(value, float) else str(value)
        return out

    def backups(self) -> Path:
        """The backup folder: DPG_BACKUP_DIR, else DPG_DATA_DIR/backups (it need not exist)."""
        return Path(self.backup_dir).expanduser().resolve() if self.backup_dir else self.data_dir / "backups"

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

    def backup_key_bytes(self, create: bool = False) -> bytes:
        """The backup key: DPG_BACKUP_KEY (64 hex characters, or the path of a file holding them),
        else DPG_DATA_DIR/backup.key (made with a new random key, mode 0600, when ``create``).
        Raises ``ValueError`` saying what is wrong."""
        from dpg.identity.sealing import create_key_file, parse_key

        raw = self.backup_key
        path = self.backup_key_path()
        if path is None:
            return parse_key(raw.removeprefix("0x"), "DPG_BACKUP_KEY")
        if not path.is_file():
            if raw or not create:
                raise ValueError(f"no backup key: DPG_BACKUP_KEY must be 64 hex characters or a file holding them"
                                 f" ({path} is not a file)")
            path.parent.mkdir(parents=True, exist_ok=True)
            create_key_file(path)
        return parse_key(path.read_text().strip(), str(path))

    def backup_key_path(self) -> Path | None:
        """The file the backup key is read from (None: DPG_BACKUP_KEY holds the key itself)."""
        raw = self.backup_key
        if len(raw.removeprefix("0x")) == 64 and all(c in "0123456789abcdefABCDEF" for c in raw.removeprefix("0x")):
            return None
        return (Path(raw).expanduser() if raw else self.data_dir / "backup.key").resolve()


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


def _decimal(env: os._Environ[str] | dict[str, str], name: str, default: Decimal, within: Callable[[Decimal], bool],
             says: str) -> Decimal:
    """A decimal number for which ``within`` holds (``says`` what that is, for the refusal); ``default`` when
    unset."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = Decimal(raw.strip())
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or not within(value) or len(raw.strip()) > 20:
        raise SystemExit(f"{name} must be {says}, not {raw!r}")
    return value


def _percent(env: os._Environ[str] | dict[str, str], name: str, default: Decimal) -> Decimal:
    """A percentage: a decimal number from 0 to 100."""
    return _decimal(env, name, default, lambda v: 0 <= v <= 100, "a percentage from 0 to 100 (e.g. 3 or 2.5)")


def _fraction(env: os._Environ[str] | dict[str, str], name: str, default: Decimal) -> Decimal:
    """A number strictly between 0 and 1 (a significance level)."""
    return _decimal(env, name, default, lambda v: 0 < v < 1, "a number between 0 and 1 (e.g. 0.05)")


def _accounts(raw: str, name: str) -> frozenset[int]:
    """Comma-separated account numbers (positive integers)."""
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    if not all(p.isdigit() and len(p) <= 19 and int(p) > 0 for p in parts):
        raise SystemExit(f"{name} must be comma-separated account numbers, not {raw!r}")
    return frozenset(int(p) for p in parts)


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
