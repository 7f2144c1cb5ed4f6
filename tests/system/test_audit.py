"""The audit log on a real PostgreSQL: a hash chain that names the first edited, deleted or inserted
row even when whoever changed it disabled the append-only trigger first; appends from many
connections at once never fork it; ``dpg audit verify`` and ``dpg audit list``."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import psycopg
import pytest

from dpg.store import audit
from tests.test_cli import dpg


def _three(url: str) -> list[audit.Entry]:
    return [audit.record(url, "cli:alice", "credit", {"user_id": 7, "asset": "USDT", "amount": "100.5"}),
            audit.record(url, "signer:0xab", "signer.sign", {"withdrawal": "0x01", "signatures": 3}),
            audit.record(url, "admin-token", "user.grant_operator", {"user_id": 9, "email": "op@x.example"})]


def _as_superuser(url: str, sql: str, params: tuple[object, ...] = ()) -> None:
    """What an operator with the database's superuser can do: switch the trigger off, then change rows."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
        conn.execute(sql, params)
        conn.execute("ALTER TABLE audit_log ENABLE TRIGGER USER")


def test_an_intact_chain_verifies_and_links_each_row_to_the_one_before(pg_url: str) -> None:
    rows = _three(pg_url)
    assert [e.seq for e in rows] == [1, 2, 3]
    assert rows[0].prev_hash == audit.GENESIS
    assert rows[1].prev_hash == rows[0].hash and rows[2].prev_hash == rows[1].hash
    v = audit.verify(pg_url)
    assert v.ok and v.rows == 3 and v.bad_seq is None
    assert (v.head_seq, v.head_hash) == (3, rows[2].hash)
    stored = audit.entries(pg_url, limit=10)
    assert [e.seq for e in stored] == [3, 2, 1]
    assert stored[2].details == {"user_id": 7, "asset": "USDT", "amount": "100.5"}


def test_the_trigger_refuses_updates_deletes_and_truncation(pg_url: str) -> None:
    _three(pg_url)
    for sql in ("UPDATE audit_log SET actor = 'x' WHERE seq = 1", "DELETE FROM audit_log WHERE seq = 3",
                "TRUNCATE audit_log"):
        with psycopg.connect(pg_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(sql)
    assert audit.verify(pg_url).rows == 3


@pytest.mark.parametrize("change", [
    "UPDATE audit_log SET details = jsonb_set(details, '{amount}', '\"1000.5\"') WHERE seq = 1",
    "UPDATE audit_log SET actor = 'cli:mallory' WHERE seq = 1",
    "UPDATE audit_log SET ts = ts + interval '1 microsecond' WHERE seq = 1",
])
def test_an_edited_row_is_named_even_with_the_trigger_disabled(pg_url: str, change: str) -> None:
    _three(pg_url)
    _as_superuser(pg_url, change)
    v = audit.verify(pg_url)
    assert not v.ok and v.bad_seq == 1 and "changed" in v.problem
    assert v.rows == 0


def test_an_edited_row_whose_hash_was_recomputed_breaks_the_link_of_the_next(pg_url: str) -> None:
    rows = _three(pg_url)
    e = rows[1]
    forged = audit.entry_hash(e.prev_hash, e.seq, e.ts, e.actor, "signer.reject", e.details)
    _as_superuser(pg_url, "UPDATE audit_log SET action = 'signer.reject', hash = %s WHERE seq = 2", (forged,))
    v = audit.verify(pg_url)
    assert not v.ok and v.bad_seq == 3 and "does not carry the hash of row 2" in v.problem


def test_a_deleted_row_is_named_by_the_row_after_the_gap(pg_url: str) -> None:
    _three(pg_url)
    _as_superuser(pg_url, "DELETE FROM audit_log WHERE seq = 2")
    v = audit.verify(pg_url)
    assert not v.ok and v.bad_seq == 3 and "row(s) 2 deleted" in v.problem
    assert v.rows == 1


def test_a_row_renumbered_into_a_gap_still_breaks_the_chain(pg_url: str) -> None:
    _three(pg_url)
    _as_superuser(pg_url, "DELETE FROM audit_log WHERE seq = 2")
    _as_superuser(pg_url, "UPDATE audit_log SET seq = 2 WHERE seq = 3")
    v = audit.verify(pg_url)
    assert not v.ok and v.bad_seq == 2


def test_rows_cut_from_the_end_are_found_against_an_anchor(pg_url: str) -> None:
    rows = _three(pg_url)
    anchor = audit.Anchor.parse(f"3:{rows[2].hash}")
    assert audit.verify(pg_url, anchor).ok
    _as_superuser(pg_url, "DELETE FROM audit_log WHERE seq = 3")
    assert audit.verify(pg_url).ok  # consistent in itself: only a head kept elsewhere shows the cut
    v = audit.verify(pg_url, anchor)
    assert not v.ok and v.bad_seq == 3 and "deleted from its end" in v.problem


def test_appends_from_many_connections_at_once_never_fork_the_chain(pg_url: str) -> None:
    threads, each = 8, 15
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            with psycopg.connect(pg_url) as conn:
                start.wait()
                for i in range(each):
                    audit.record(conn, f"worker:{n}", "test.append", {"i": i})
        except BaseException as e:  # reported below, on the test's thread
            errors.append(e)

    ts = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors
    v = audit.verify(pg_url)
    assert v.ok and v.rows == threads * each == v.head_seq


def test_record_joins_the_callers_transaction(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        with conn.transaction():
            audit.record(conn, "cli:alice", "credit", {"n": 1})
        with pytest.raises(RuntimeError), conn.transaction():
            audit.record(conn, "cli:alice", "credit", {"n": 2})
            raise RuntimeError("the action failed: its audit row goes with it")
    assert [e.details for e in audit.entries(pg_url)] == [{"n": 1}]


def test_details_refuse_floats_and_other_values_jsonb_would_not_give_back(pg_url: str) -> None:
    with pytest.raises(TypeError):
        audit.record(pg_url, "cli:alice", "credit", {"amount": 1.5})
    with pytest.raises(ValueError):
        audit.record(pg_url, "", "credit", {})
    assert audit.verify(pg_url).rows == 0


def test_dpg_audit_verify_exits_0_only_when_intact_and_names_the_first_bad_row(pg_url: str) -> None:
    env = {"DPG_DATABASE_URL": pg_url}
    rows = _three(pg_url)
    r = dpg("audit", "verify", env=env)
    assert r.returncode == 0, r.stderr
    assert f"3:{rows[2].hash}" in r.stdout
    r = dpg("audit", "verify", "--json", "--anchor", f"3:{rows[2].hash}", env=env)
    assert r.returncode == 0 and json.loads(r.stdout)["ok"] is True
    listed = [json.loads(line) for line in dpg("audit", "list", "--json", env=env).stdout.splitlines()]
    assert [e["seq"] for e in listed] == [3, 2, 1] and listed[2]["actor"] == "cli:alice"
    _as_superuser(pg_url, "UPDATE audit_log SET details = '{\"amount\": \"1\"}' WHERE seq = 2")
    r = dpg("audit", "verify", env=env)
    assert r.returncode == 1
    assert "row 2" in r.stderr
    assert dpg("audit", "verify", "--anchor", "nonsense", env=env).returncode == 2


def _signing_withdrawal(url: str, wid: str, signers: list[str]) -> None:
    """A withdrawal waiting for signatures on a chain whose vault has ``signers`` (rows as the pipeline writes them)."""
    vault, to = "0x" + "11" * 20, "0x" + "22" * 20
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO chains (name, chain_id, rpc_url, vault, confirmations, native_asset, tokens, signers)"
                     " VALUES ('ethereum', 31337, 'http://127.0.0.1:1', %s, 3, 'ETH', '[]', %s)"
                     " ON CONFLICT DO NOTHING", (vault, json.dumps(signers)))
        conn.execute("INSERT INTO withdrawals (id, account, asset, amount, chain, chain_id, vault, token, to_address,"
                     " deadline, status, required) VALUES (%s, 5, 'ETH', 10, 'ethereum', 31337, %s, %s, %s,"
                     " 4102444800, 'signing', 3)", (wid, vault, "0x" + "00" * 20, to))


def test_signer_decisions_are_audited_with_the_signature_or_rejection(pg_url: str, tmp_path: Path) -> None:
    from dpg.chain.signer import dev_key, sign
    from dpg.chain.withdrawals import WithdrawalStore

    policy, human = dev_key(1), dev_key(3)
    signers = [dev_key(i).address.lower() for i in range(1, 6)]
    first, second = "0x" + "aa" * 32, "0x" + "bb" * 32
    _signing_withdrawal(pg_url, first, signers)
    _signing_withdrawal(pg_url, second, signers)
    store = WithdrawalStore(pg_url)
    w = store.get(first)
    assert w is not None
    assert store.add_signature(first, policy.address, sign(w.terms(), policy), "policy")
    assert not store.add_signature(first, policy.address, sign(w.terms(), policy), "policy")  # once: no second row
    store.add_review(first, dev_key(2).address, "declined", "over the policy's limit")
    store.close()

    key = tmp_path / "human.key"
    key.write_text("0x" + bytes(human.key).hex() + "\n")
    r = dpg("signer", "reject", second, "--reason", "unknown destination", "--key-file", str(key),
            env={"DPG_DATABASE_URL": pg_url})
    assert r.returncode == 0, r.stderr

    rows = [(e.actor, e.action, e.details) for e in reversed(audit.entries(pg_url))]
    assert rows[:2] == [
        (f"policy-signer:{policy.address.lower()}", "signer.sign", {"withdrawal": first, "signatures": 1}),
        (f"policy-signer:{dev_key(2).address.lower()}", "signer.decline",
         {"withdrawal": first, "reason": "over the policy's limit"}),
    ]
    actor, action, details = rows[2]
    assert (actor, action) == (f"signer:{human.address.lower()}", "signer.reject")
    assert details["withdrawal"] == second and details["reason"] == "unknown destination"
    assert details["by"].startswith("cli:")
    assert len(rows) == 3 and audit.verify(pg_url).ok


def test_the_settings_an_exchange_starts_with_are_recorded_when_they_changed(pg_url: str, tmp_path: Path) -> None:
    from dpg.config import Settings

    first = Settings.from_env({"DPG_DATA_DIR": str(tmp_path), "DPG_DATABASE_URL": "postgresql://u:pw@h/db",
                               "DPG_SMTP_URL": "smtp://u:secret@mail.example:587"}).audited()
    assert "database_url" not in first and "smtp_url" not in first and "por_secret" not in first
    e = audit.record_settings(pg_url, first)
    assert e is not None and e.action == "settings.change" and e.details["before"] == {}
    assert "pw" not in json.dumps(e.details) and "secret" not in json.dumps(e.details["settings"])
    assert audit.record_settings(pg_url, first) is None  # the same settings: nothing new
    changed = Settings.from_env({"DPG_DATA_DIR": str(tmp_path), "DPG_ADDRESS_COOLDOWN": "60"}).audited()
    e = audit.record_settings(pg_url, changed)
    assert e is not None and e.details["changed"] == ["address_cooldown"]
    assert e.details["before"] == {"address_cooldown": 86400} and e.details["settings"]["address_cooldown"] == 60
    assert audit.verify(pg_url).rows == 2
