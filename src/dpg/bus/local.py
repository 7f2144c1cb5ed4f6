"""The in-process bus: the API calls the sequencer directly and receives committed batches from
its journal thread on the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from dpg.bus.wire import Batch
from dpg.core.commands import Command
from dpg.core.events import Event
from dpg.journal.sequencer import Applied, Sequencer


class LocalBus:
    def __init__(self, sequencer: Sequencer) -> None:
        self.sequencer = sequencer

    async def submit(self, cmd: Command) -> tuple[int, list[Event]]:
        return await self.sequencer.submit_async(cmd)

    def subscribe(self, loop: asyncio.AbstractEventLoop, on_batch: Callable[[Batch], None]) -> None:
        """``on_batch`` runs on ``loop`` with every committed batch, in order."""

        def sink(batch: Sequence[Applied]) -> None:
            loop.call_soon_threadsafe(on_batch, [(a.seq, a.ts, a.events) for a in batch])

        self.sequencer.sinks.append(sink)

    def status(self) -> tuple[bool, str]:
        """(ok, reason): whether the engine takes commands."""
        return self.sequencer.status()

    async def close(self) -> None:
        return None
