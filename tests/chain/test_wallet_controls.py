"""What a user controls of their withdrawals, through a running exchange (``dpg up``): the client
addresses withdrawals may come from, the waiting period of a new allow-listed address, the fee
quoted before sending, and cancelling a withdrawal before its third signature (against a signer
adding it at the same moment).

The exchange runs without its chains' threads (``DPG_CUSTODY=0``): the test records a custody chain
in the database as ``dpg up`` does at start, so withdrawals are requested, locked by the engine and
stay waiting for signatures, which the test adds as the signers would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pyotp
import pytest

from dpg.chain.config import ChainConfig, Token
from dpg.chain.signer import dev_key, sign
from dpg.chain.withdrawals import WithdrawalClosed, WithdrawalStore
from dpg.store import db
from tests.api.client import User, dpg_cli, exchange, signed, until

pytestmark = pytest.mark.timeout(300)

DEST = dev_key(8).address
OTHER = dev_key(9).address
USDT_TOKEN = "0x" + "7e" * 20
SIGNERS = [dev_key(i) for i in range(1, 6)]


@contextmanager
def wallet_exchange(pg_server: str, tmp: Path, prefix: str, **env: str) -> Iterator[tuple[str, str]]:
    """``dpg up`` on a scratch database with the chain "ethereum" recorded; yields (base URL, database URL)."""
    url = db.create_scratch(pg_server, prefix)
    try:
        with exchange(url, tmp, **env) as base:
            store = WithdrawalStore(url)
            try:
                store.save_chain(ChainConfig("ethereum", 31337, "http://127.0.0.1:9", "0x" + "5a" * 20, 3, "ETH",
                                             (Token("USDT", "USDT", USDT_TOKEN, 6),)),
                                 [k.address for k in SIGNERS])
            finally:
                store.close()
            yield base, url
    finally:
        db.drop(url)


@pytest.fixture(scope="module")
def ex(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """An exchange whose new addresses are usable at once (``DPG_ADDRESS_COOLDOWN=0``)."""
    with wallet_exchange(pg_server, tmp_path_factory.mktemp("wallet"), "dpg_test_wallet",
                         DPG_ADDRESS_COOLDOWN="0") as both:
        yield both


@pytest.fixture
def store(ex: tuple[str, str]) -> Iterator[WithdrawalStore]:
    s = WithdrawalStore(ex[1])
    try:
        yield s
    finally:
        s.close()


def funded(ex: tuple[str, str], email: str, usdt: str = "100") -> User:
    base, db_url = ex
    u = User(base, email)
    u.verify_email(db_url)  # withdrawals and new addresses need a verified address
    u.credit("USDT", usdt)
    assert u.http.post("/api/v1/wallet/addresses", json={"chain": "ethereum", "address": DEST}).status_code == 201
    return u


def withdraw(u: User, amount: str, **more: Any) -> httpx.Response:
    return u.http.post("/api/v1/withdrawals", json={"asset": "USDT", "chain": "ethereum", "address": DEST,
                                                   "amount": amount, **more})


def when_of(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def mailed_text(db_url: str, to: str, containing: str) -> str:
    """The newest message to ``to`` containing ``containing``, from the exchange's outbox."""
    def newest() -> str | None:
        with psycopg.connect(db_url) as conn:
            rows = conn.execute("SELECT body FROM outbox WHERE to_address = %s ORDER BY id DESC", (to,)).fetchall()
        return next((str(b) for (b,) in rows if containing in str(b)), None)

    text: str = until(f"a mail to {to} about {containing}", newest, 30)
    return text


def _dec(pair: tuple[str, str]) -> tuple[Decimal, Decimal]:
    return Decimal(pair[0]), Decimal(pair[1])


def from_other_address(base: str, user: User) -> httpx.Client:
    """The user's session from another client address (127.0.0.2: the whole of 127/8 is this host)."""
    return httpx.Client(base_url=base, timeout=30, transport=httpx.HTTPTransport(local_address="127.0.0.2"),
                        headers={"authorization": f"Bearer {user.token}"})


# ---------------------------------------------------------------------- client addresses


def test_withdrawals_and_allow_list_changes_come_only_from_listed_client_addresses(ex: tuple[str, str]) -> None:
    base, _ = ex
    u = funded(ex, "ip@wallet.dpg")
    r = u.http.get("/api/v1/wallet/ip-allow")
    assert r.json() == {"networks": [], "your_address": "127.0.0.1"}  # empty: any address
    assert u.http.put("/api/v1/wallet/ip-allow", json={"networks": ["no such address"]}).json()["code"] == "INVALID_IP"
    r = u.http.put("/api/v1/wallet/ip-allow", json={"networks": ["10.0.0.0/8"]})
    assert (r.status_code, r.json()["code"]) == (400, "IP_ALLOW_LOCKOUT"), r.text  # it would shut this client out
    r = u.http.put("/api/v1/wallet/ip-allow", json={"networks": ["127.0.0.1", "10.0.0.0/8"]})
    assert r.status_code == 200 and r.json()["networks"] == ["127.0.0.1/32", "10.0.0.0/8"], r.text

    other = from_other_address(base, u)
    assert other.get("/api/v1/wallet/ip-allow").json()["your_address"] == "127.0.0.2"
    refused = [
        other.post("/api/v1/withdrawals", json={"asset": "USDT", "chain": "ethereum", "address": DEST,
                                                "amount": "10"}),
        other.post("/api/v1/wallet/addresses", json={"chain": "ethereum", "address": OTHER}),
        other.delete(f"/api/v1/wallet/addresses/ethereum/{DEST.lower()}"),
        other.put("/api/v1/wallet/ip-allow", json={"networks": []}),
    ]
    for r in refused:
        assert (r.status_code, r.json()["code"]) == (403, "WITHDRAWAL_IP_NOT_ALLOWED"), r.text
        assert "127.0.0.2" in r.json()["reason"]
    assert other.get("/api/v1/withdrawals").status_code == 200  # reading is not restricted
    assert _dec(u.balance("USDT")) == (100, 0)
    assert [a["address"] for a in u.http.get("/api/v1/wallet/addresses").json()] == [DEST.lower()]

    # a signed API-key request from the unlisted address is refused too
    k = u.http.post("/api/v1/api-keys", json={"name": "bot", "permissions": ["read", "withdraw"]}).json()
    bot = httpx.Client(base_url=base, timeout=30, transport=httpx.HTTPTransport(local_address="127.0.0.2"))
    r = signed(bot, k["key"], k["secret"], "POST", "/api/v1/withdrawals",
               {"asset": "USDT", "chain": "ethereum", "address": DEST, "amount": "10"})
    assert (r.status_code, r.json()["code"]) == (403, "WITHDRAWAL_IP_NOT_ALLOWED"), r.text

    # from the listed address everything works
    assert withdraw(u, "10").status_code == 201
    assert _dec(u.balance("USDT")) == (90, 10)

    # with 2FA on, the list changes only with a code
    secret = u.http.post("/api/v1/auth/2fa/setup").json()["secret"]
    assert u.http.post("/api/v1/auth/2fa/enable", json={"code": pyotp.TOTP(secret).now()}).status_code == 200
    r = u.http.put("/api/v1/wallet/ip-allow", json={"networks": []})
    assert (r.status_code, r.json()["code"]) == (401, "TOTP_REQUIRED"), r.text
    fresh = pyotp.TOTP(secret).at(time.time() + 30)  # the next time step's code: not the one used to enable
    r = u.http.put("/api/v1/wallet/ip-allow", json={"networks": [], "totp": fresh})
    assert r.status_code == 200 and r.json()["networks"] == [], r.text
    r = other.post("/api/v1/wallet/addresses", json={"chain": "ethereum", "address": OTHER})
    assert r.json()["code"] == "TOTP_REQUIRED"  # no longer refused for its address, now for the missing code


# ---------------------------------------------------------------------- fee quote


def test_the_fee_is_quoted_before_sending_and_carried_by_the_withdrawal(ex: tuple[str, str]) -> None:
    base, _ = ex
    u = funded(ex, "fee@wallet.dpg")
    q = {"asset": "USDT", "chain": "ethereum", "amount": "12,5"}
    r = u.http.get("/api/v1/wallet/withdrawal-quote", params=q)
    assert r.status_code == 200, r.text
    assert r.json() == {"asset": "USDT", "amount": "12.500000", "fee": "0.000000", "fee_asset": "USDT",
                        "receive": "12.500000", "destination": {"chain": "ethereum", "token": USDT_TOKEN,
                                                                "address": None, "allow_listed": None,
                                                                "usable_at": None}}
    listed = u.http.get("/api/v1/wallet/addresses").json()[0]
    d = u.http.get("/api/v1/wallet/withdrawal-quote", params={**q, "address": DEST}).json()["destination"]
    assert d == {"chain": "ethereum", "token": USDT_TOKEN, "address": DEST.lower(), "allow_listed": True,
                 "usable_at": listed["usable_at"]}
    d = u.http.get("/api/v1/wallet/withdrawal-quote", params={**q, "address": OTHER}).json()["destination"]
    assert (d["allow_listed"], d["usable_at"]) == (False, None)
    for params, status, code in [({**q, "amount": "0"}, 400, "INVALID_AMOUNT"),
                                 ({**q, "amount": "abc"}, 400, None),
                                 ({**q, "chain": "mars"}, 404, "UNKNOWN_CHAIN"),
                                 ({**q, "asset": "USD"}, 400, "ASSET_NOT_ON_CHAIN"),
                                 ({**q, "address": "0x12"}, 400, "INVALID_ADDRESS")]:
        r = u.http.get("/api/v1/wallet/withdrawal-quote", params=params)
        assert r.status_code == status and (code is None or r.json()["code"] == code), (params, r.text)
    assert httpx.get(f"{base}/api/v1/wallet/withdrawal-quote", params=q).status_code == 401

    r = withdraw(u, "12.5")
    assert r.status_code == 201, r.text
    assert (r.json()["amount"], r.json()["fee"], r.json()["receive"]) == ("12.500000", "0.000000", "12.500000")
    listed_w = u.http.get("/api/v1/withdrawals").json()[0]
    assert (listed_w["fee"], listed_w["receive"]) == ("0.000000", "12.500000")


# ---------------------------------------------------------------------- cancel


def add_signatures(store: WithdrawalStore, wid: str, *indexes: int) -> None:
    w = store.get(wid)
    assert w is not None
    for i in indexes:
        assert store.add_signature(wid, SIGNERS[i].address, sign(w.terms(), SIGNERS[i]), "policy")


def test_a_user_cancels_a_pending_withdrawal_and_the_funds_return(ex: tuple[str, str], store: WithdrawalStore,
                                                                  tmp_path: Path) -> None:
    _base, url = ex
    u = funded(ex, "cancel@wallet.dpg")
    w = withdraw(u, "40").json()
    assert w["status"] == "signing" and w["cancellable"] is True
    assert _dec(u.balance("USDT")) == (60, 40)
    add_signatures(store, w["id"], 0, 1)  # the two policy signers

    r = u.http.delete(f"/api/v1/withdrawals/{w['id']}")
    assert r.status_code == 200, r.text
    done = r.json()
    assert (done["status"], done["reason"], done["cancellable"]) == ("failed", "cancelled by the user", False)
    assert [e["step"] for e in done["timeline"]][-2:] == ["cancelled", "failed"]
    assert _dec(u.balance("USDT")) == (100, 0)  # returned through the engine (FailWithdrawal)

    # signers refuse it from then on: the store, and a person with dpg signer sign
    with pytest.raises(WithdrawalClosed):
        store.add_signature(w["id"], SIGNERS[2].address, sign(store.get(w["id"]).terms(), SIGNERS[2]),  # type: ignore[union-attr]
                            "human")
    key = tmp_path / "human.key"
    key.write_text("0x" + bytes(SIGNERS[2].key).hex() + "\n")
    r2 = dpg_cli({"DPG_DATABASE_URL": url, "DPG_DATA_DIR": str(tmp_path)}, "signer", "sign", w["id"], "--key-file",
                 str(key))
    assert r2.returncode != 0 and "failed" in r2.stderr, r2.stderr
    assert len(store.signatures(w["id"])) == 2

    again = u.http.delete(f"/api/v1/withdrawals/{w['id']}")
    assert (again.status_code, again.json()["code"]) == (409, "WITHDRAWAL_NOT_CANCELLABLE")
    assert _dec(u.balance("USDT")) == (100, 0)  # returned once
    assert u.http.delete("/api/v1/withdrawals/0x" + "ab" * 32).status_code == 404
    stranger = funded(ex, "stranger@wallet.dpg")
    theirs = withdraw(stranger, "5").json()
    r = u.http.delete(f"/api/v1/withdrawals/{theirs['id']}")
    assert (r.status_code, r.json()["code"]) == (404, "WITHDRAWAL_NOT_FOUND")
    assert _dec(stranger.balance("USDT")) == (95, 5)

    # with its three signatures it can be paid at any moment: too late to cancel
    w3 = withdraw(u, "30").json()
    add_signatures(store, w3["id"], 0, 1, 2)
    assert u.http.get(f"/api/v1/withdrawals/{w3['id']}").json()["cancellable"] is False
    r = u.http.delete(f"/api/v1/withdrawals/{w3['id']}")
    assert (r.status_code, r.json()["code"]) == (409, "WITHDRAWAL_NOT_CANCELLABLE"), r.text
    assert _dec(u.balance("USDT")) == (70, 30)


def _waiting_for_a_lock(url: str) -> bool:
    with psycopg.connect(url) as c:
        row = c.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND wait_event_type = 'Lock'").fetchone()
    return bool(row and row[0])


def test_a_cancel_waits_for_a_signer_adding_the_third_signature_and_then_refuses(
        ex: tuple[str, str], store: WithdrawalStore) -> None:
    _base, url = ex
    u = funded(ex, "race@wallet.dpg")
    w = withdraw(u, "40").json()
    add_signatures(store, w["id"], 0, 1)
    got: list[httpx.Response] = []
    with psycopg.connect(url) as signer:
        # a signer's transaction holds the row (as add_signature does) while it stores the third signature
        signer.execute("SELECT status FROM withdrawals WHERE id = %s FOR UPDATE", (w["id"],))
        t = threading.Thread(target=lambda: got.append(u.http.delete(f"/api/v1/withdrawals/{w['id']}")))
        t.start()
        until("the cancel waiting for the row", lambda: _waiting_for_a_lock(url), timeout=30)
        terms = store.get(w["id"]).terms()  # type: ignore[union-attr]
        signer.execute("INSERT INTO withdrawal_signatures (withdrawal_id, signer, signature, kind) VALUES"
                       " (%s, %s, %s, 'human')", (w["id"], SIGNERS[2].address.lower(), sign(terms, SIGNERS[2])))
        signer.commit()
        t.join(30)
    (r,) = got
    assert (r.status_code, r.json()["code"]) == (409, "WITHDRAWAL_NOT_CANCELLABLE"), r.text
    assert _dec(u.balance("USDT")) == (60, 40)  # still locked: it is about to be paid
    assert store.get(w["id"]).status == "signing"  # type: ignore[union-attr]


# ---------------------------------------------------------------------- waiting period


def test_a_newly_listed_address_is_usable_only_after_its_waiting_period(pg_server: str, tmp_path: Path) -> None:
    with wallet_exchange(pg_server, tmp_path, "dpg_test_cooldown") as (base, url):  # the default: 24 hours
        u = User(base, "cooling@wallet.dpg")
        u.verify_email(url)
        u.credit("USDT", "100")
        r = u.http.post("/api/v1/wallet/addresses", json={"chain": "ethereum", "address": DEST, "label": "new"})
        assert r.status_code == 201, r.text
        added = r.json()
        assert added["usable_at"] - added["created_at"] == 86_400_000 and added["usable"] is False
        notice = mailed_text(url, u.email, "withdrawal allow-list")  # the user is told, in case it was not them
        assert DEST.lower() in notice and when_of(added["usable_at"]) in notice
        (listed,) = u.http.get("/api/v1/wallet/addresses").json()
        assert (listed["usable_at"], listed["usable"]) == (added["usable_at"], False)

        r = withdraw(u, "10")
        assert (r.status_code, r.json()["code"]) == (403, "ADDRESS_COOLING_DOWN"), r.text
        assert when_of(added["usable_at"]) in r.json()["reason"]
        assert _dec(u.balance("USDT")) == (100, 0)
        store = WithdrawalStore(url)
        try:
            assert store.allowed(u.id, "ethereum", DEST) is False  # nor would the policy signers sign for it
        finally:
            store.close()
        # adding it again does not start its waiting period over, nor end it
        again = u.http.post("/api/v1/wallet/addresses", json={"chain": "ethereum", "address": DEST, "label": "x"})
        assert again.json()["usable_at"] == added["usable_at"]
