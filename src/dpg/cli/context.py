"""What every ``dpg`` command shares: how it speaks, how it fails, its logging, and the existing
exchange an operator command acts on."""

from __future__ import annotations

import sys
from typing import Any

import typer

from dpg.config import Settings


def setup_logging(settings: Settings) -> None:
    """Structured logs at DPG_LOG_LEVEL, for the commands that run the exchange."""
    from dpg.logs import setup

    setup(settings.log_level)


def say(message: str) -> None:
    """A line for the operator, flushed at once (a supervisor may be reading the pipe)."""
    typer.echo(message)
    sys.stdout.flush()


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``error: message`` and return the exit to raise (2: bad usage; 1: refused or failed)."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def target(schema: bool = True) -> Any:
    """The existing exchange an operator command acts on (``dpg.system.target.operator_target``)."""
    from dpg.running import NotFound
    from dpg.system.target import operator_target

    try:
        return operator_target(schema=schema)
    except NotFound as e:
        raise fail(str(e), 1) from None


def unreachable(base: str, e: OSError) -> str:
    """What to say when no exchange answers at ``base``."""
    reason = getattr(e, "reason", e)
    return (f"no exchange answers at {base} ({reason}): is `dpg up` running? Name its address with --url, "
            "or set DPG_HOST/DPG_PORT as the exchange has them")
