"""The exchanges running on this machine, and how operator commands find theirs.

``dpg up`` and ``dpg engine`` register themselves (data directory, database, API address) in a
file of their own under ``$XDG_STATE_HOME/dpg/running/`` (default ``~/.local/state``), removed when
they stop. An operator command (``dpg user create``, ``dpg credit``, ``dpg signer …``) acts on the
exchange named by ``DPG_DATA_DIR`` / ``DPG_DATABASE_URL``, else on the ``.dpg`` of the current
folder, else on the one exchange running on this machine; it never creates a second, empty one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from dpg.config import Settings

log = logging.getLogger("dpg.running")


class NotFound(Exception):
    """No exchange to act on; the message says what to do."""


@dataclass(frozen=True, slots=True)
class Running:
    pid: int
    data_dir: Path
    database_url: str  # "" = the embedded PostgreSQL under data_dir
    api: str  # "http://host:port", or "" for an engine process
    cwd: str


def _dir(env: dict[str, str] | None = None) -> Path:
    e = os.environ if env is None else env
    state = e.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "dpg" / "running"


def register(settings: Settings, api: str) -> Path:
    """Record this process as a running exchange; returns the file to remove at stop."""
    folder = _dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{os.getpid()}.json"
    tmp = folder / f".{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # may hold a database URL's password
    with os.fdopen(fd, "w") as f:
        json.dump({"pid": os.getpid(), "data_dir": str(settings.data_dir), "database_url": settings.database_url,
                   "api": api, "cwd": os.getcwd()}, f)
    tmp.replace(path)
    return path


def unregister(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running(env: dict[str, str] | None = None) -> list[Running]:
    """The registered exchanges whose process is alive (files of dead ones are removed)."""
    out: list[Running] = []
    folder = _dir(env)
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.json")):
        try:
            d = json.loads(path.read_text())
            r = Running(int(d["pid"]), Path(d["data_dir"]), str(d.get("database_url", "")), str(d.get("api", "")),
                        str(d.get("cwd", "")))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if _alive(r.pid):
            out.append(r)
        else:
            unregister(path)
    return out


def locate(env: dict[str, str] | None = None) -> tuple[Settings, str]:
    """The settings an operator command acts on, and the API address of that exchange ("" when not
    known: the command's own DPG_HOST/DPG_PORT). Raises NotFound rather than pointing at a new,
    empty data directory."""
    e = dict(os.environ if env is None else env)
    if e.get("DPG_DATABASE_URL"):
        settings = Settings.from_env(e)
        return settings, _api_of(settings, e)
    if e.get("DPG_DATA_DIR"):
        settings = Settings.from_env(e)
        if not (settings.data_dir / "pg").is_dir():
            raise NotFound(f"DPG_DATA_DIR={settings.data_dir} holds no exchange (no embedded database in it); "
                           "name the data directory of a running exchange, or set DPG_DATABASE_URL")
        return settings, _api_of(settings, e)
    here = Settings.from_env(e)
    if (here.data_dir / "pg").is_dir():
        return here, _api_of(here, e)
    live = running(e)
    if len(live) == 1:
        r = live[0]
        named = bool(e.get("DPG_HOST") or e.get("DPG_PORT"))
        e["DPG_DATA_DIR"] = str(r.data_dir)
        if r.database_url:
            e["DPG_DATABASE_URL"] = r.database_url
        log.info("event=using_running_exchange data_dir=%s pid=%d", r.data_dir, r.pid)
        return Settings.from_env(e), "" if named else r.api
    if len(live) > 1:
        listed = "; ".join(f"pid {r.pid}: DPG_DATA_DIR={r.data_dir}" for r in live)
        raise NotFound(f"no exchange data in {here.data_dir}, and {len(live)} exchanges run on this machine "
                       f"({listed}): set DPG_DATA_DIR to choose one")
    raise NotFound(f"no exchange data in {here.data_dir} and no exchange running on this machine: run this command "
                   "from the folder where `dpg up` runs (make up), or set DPG_DATA_DIR or DPG_DATABASE_URL")


def _api_of(settings: Settings, env: dict[str, str]) -> str:
    """The API address of the running exchange on these settings' data, if one is registered (not
    when DPG_HOST or DPG_PORT name one: then that is the address)."""
    if env.get("DPG_HOST") or env.get("DPG_PORT"):
        return ""
    for r in running(env):
        if r.data_dir == settings.data_dir and r.database_url == settings.database_url and r.api:
            return r.api
    return ""
