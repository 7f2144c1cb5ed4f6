"""The in-process bus: the API calls the sequencer directly (committed batches reach the API
through the sequencer's sinks, which the node wires).

Commands submitted in one turn of the event loop are handed to the sequencer together at the end
of it, so that its engine thread wakes once for them and applies them as one batch; the replies of
one commit come back to the event loop in one wake-up, not one each."""

from __future__ import annotations

import asyncio
from collections import deque
from functools import partial

from dpg.core.commands import Command
from dpg.core.events import Event
from dpg.journal.sequencer import Sequencer

Reply = tuple[int, list[Event]]


class LocalBus:
    def __init__(self, sequencer: Sequencer) -> None:
        self.sequencer = sequencer
        self._outgoing: list[tuple[Command, asyncio.Future[Reply]]] = []
        self._replies: deque[tuple[asyncio.Future[Reply], Reply]] = deque()
        self._waking = False  # a hand-over of the replies to the event loop is scheduled

    async def submit(self, cmd: Command) -> Reply:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Reply] = loop.create_future()
        if not self._outgoing:
            loop.call_soon(self._flush, loop)
        self._outgoing.append((cmd, fut))
        return await fut

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        """(event loop) Hand this turn's commands to the sequencer, in order."""
        outgoing, self._outgoing = self._outgoing, []
        for cmd, fut in outgoing:
            self.sequencer.submit(cmd, partial(self._reply, loop, fut))

    def _reply(self, loop: asyncio.AbstractEventLoop, fut: asyncio.Future[Reply], seq: int,
               events: list[Event]) -> None:
        """(journal thread) Queue a reply; wake the event loop once for all those queued meanwhile."""
        self._replies.append((fut, (seq, events)))
        if not self._waking:
            self._waking = True
            loop.call_soon_threadsafe(self._deliver)

    def _deliver(self) -> None:
        """(event loop) Resolve every queued reply."""
        self._waking = False  # before draining: a reply queued from now on schedules its own wake-up
        replies = self._replies
        while replies:
            fut, reply = replies.popleft()
            if not fut.done():
                fut.set_result(reply)

    def status(self) -> tuple[bool, str]:
        """(ok, reason): whether the engine takes commands."""
        return self.sequencer.status()

    async def close(self) -> None:
        return None
