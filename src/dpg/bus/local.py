"""The in-process bus: the API calls the sequencer directly (committed batches reach the API
through the sequencer's sinks, which the node wires)."""

from __future__ import annotations

from dpg.core.commands import Command
from dpg.core.events import Event
from dpg.journal.sequencer import Sequencer


class LocalBus:
    def __init__(self, sequencer: Sequencer) -> None:
        self.sequencer = sequencer

    async def submit(self, cmd: Command) -> tuple[int, list[Event]]:
        return await self.sequencer.submit_async(cmd)

    def status(self) -> tuple[bool, str]:
        """(ok, reason): whether the engine takes commands."""
        return self.sequencer.status()

    async def close(self) -> None:
        return None
