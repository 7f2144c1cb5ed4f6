"""The engine's behaviour pinned by committed fixtures written before the core was split:
byte-identical trade tapes and books of the public matching replay, and a journal's state hash."""

from __future__ import annotations

import gzip
import json

import pytest

from tests.core import golden


@pytest.mark.parametrize("seed", golden.REPLAY_SEEDS)
def test_the_public_replay_gives_the_committed_tape_and_book(seed: int) -> None:
    trades, book = golden.replay_tape(seed)
    trades_path, book_path = golden.replay_paths(seed)
    assert trades == gzip.decompress(trades_path.read_bytes())
    assert book == gzip.decompress(book_path.read_bytes())


def test_the_committed_journal_replays_to_the_committed_state_hash() -> None:
    cmds = golden.read_journal(golden.JOURNAL)
    assert golden.run_journal(cmds) == json.loads(golden.JOURNAL_HASH.read_text())


def test_the_journal_fixture_still_comes_from_its_generator() -> None:
    # the fixture is the codec's encoding of the seeded stream: the codec did not change either
    assert golden.read_journal(golden.JOURNAL) == golden.journal_commands()
