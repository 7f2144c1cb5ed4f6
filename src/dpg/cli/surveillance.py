"""``dpg surveillance``: search a window of the projections for wash trades, spoofing and layering
(``run``), read the stored alerts (``alerts``), and the daily per-market report of trade sizes
(``report``)."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import typer

from dpg.cli.context import fail, target

surveillance_app = typer.Typer(help="Trade surveillance: wash trades, spoofing, layering (docs/surveillance.md)",
                               no_args_is_help=True)

_SPAN = re.compile(r"([0-9]{1,9})([smhd])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def moment(text: str, now: datetime) -> datetime:
    """``2h`` (that long before ``now``; s, m, h, d) or an ISO 8601 time (UTC unless it says)."""
    span = _SPAN.fullmatch(text.strip())
    if span:
        return now - timedelta(seconds=int(span.group(1)) * _UNIT[span.group(2)])
    try:
        t = datetime.fromisoformat(text.strip())
    except ValueError:
        raise fail(f"{text!r} is neither a span (30m, 2h, 1d) nor an ISO 8601 time") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _exchange() -> Any:
    exchange = target()
    from dpg.store import db

    db.migrate(exchange.url)  # the surveillance tables on an exchange older than them
    return exchange


@surveillance_app.command("run")
def run(
    since: Annotated[str | None, typer.Option(help="Start: a span back from now (2h) or an ISO time; default "
                                                   "DPG_SURVEILLANCE_WINDOW back")] = None,
    until: Annotated[str | None, typer.Option(help="End: a span back from now or an ISO time; default now")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Search the window once and store the alerts not stored yet (a window searched again adds none)."""
    from dpg.surveillance import store

    exchange = _exchange()
    s = exchange.settings.surveillance
    now = datetime.now(UTC)
    end = moment(until, now) if until else now
    start = moment(since, now) if since else end - timedelta(seconds=s.window)
    if start >= end:
        raise fail(f"the window is empty: {start.isoformat()} is not before {end.isoformat()}")
    result = store.run(exchange.url, s, int(start.timestamp() * 1e9), int(end.timestamp() * 1e9))
    if as_json:
        typer.echo(json.dumps(result.as_json()))
        return
    typer.echo(f"searched {start.isoformat()} to {end.isoformat()}: {len(result.found)} alert(s), "
               f"{len(result.new)} new")
    for a in result.new:
        typer.echo(f"  {a.kind:<10} {a.market:<10} accounts {','.join(map(str, a.accounts))}: {a.details}")


@surveillance_app.command("alerts")
def alerts(
    kind: Annotated[str | None, typer.Option(help="wash_trade, spoofing or layering")] = None,
    market: Annotated[str | None, typer.Option(help="e.g. ETH/USDT")] = None,
    account: Annotated[int | None, typer.Option(help="Alerts naming this account")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many of the newest")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines, with the evidence")] = False,
) -> None:
    """The newest stored alerts, newest first."""
    from dpg.surveillance import store

    if kind is not None and kind not in ("wash_trade", "spoofing", "layering"):
        raise fail(f"--kind must be wash_trade, spoofing or layering, not {kind!r}")
    rows = store.alerts(_exchange().url, kind=kind, market=market, account=account, limit=limit)
    for r in rows:
        typer.echo(json.dumps(r) if as_json else f"{r['id']:>6}  {r['detected_at'][:19]}  {r['kind']:<10} "
                                                 f"{r['market']:<10} {r['details']}")
    if not rows and not as_json:
        typer.echo("no alerts")


@surveillance_app.command("report")
def report(
    day: Annotated[str | None, typer.Option(help="UTC day YYYY-MM-DD; default today (so far)")] = None,
    market: Annotated[str | None, typer.Option(help="One market only")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines")] = False,
) -> None:
    """Per market: trade sizes' first digits against Benford's law (chi-square, pass/fail at
    DPG_SURVEILLANCE_BENFORD_ALPHA) and their clustering at round sizes."""
    from dpg.surveillance import store

    try:
        when = date.fromisoformat(day) if day else datetime.fromtimestamp(time.time(), UTC).date()
    except ValueError:
        raise fail(f"--day must be YYYY-MM-DD, not {day!r}") from None
    exchange = _exchange()
    reports = store.daily_reports(exchange.url, exchange.settings.surveillance, when, market)
    for r in reports:
        if as_json:
            typer.echo(json.dumps(r.as_json()))
            continue
        b = r.as_json()["benford"]
        ratio = "-" if r.round_ratio is None else f"{r.round_ratio:.2f}"
        typer.echo(f"{r.market:<10} {r.day} trades {r.trades:>7}  Benford chi2 {r.chi2:9.2f} p {r.p_value:.4f} "
                   f"(alpha {r.alpha}): {b['result']}  round sizes {r.round_share * 100:5.1f} % ratio {ratio}")
    if not reports and not as_json:
        typer.echo(f"no trades on {when.isoformat()}")
