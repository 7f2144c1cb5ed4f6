"""The hub writes a message for many subscribers as one frame straight to each connection's
transport; that needs the transport found under the server DPG runs (uvicorn on uvloop). Without
it every subscriber would get its own queue, task and framing."""

from __future__ import annotations

import asyncio
import socket

import uvicorn
import uvloop
from fastapi import FastAPI, WebSocket
from websockets.asyncio.client import connect

from dpg.api.ws import _transport, frame


def test_the_hub_finds_the_transport_under_uvicorn_on_uvloop() -> None:
    app = FastAPI()
    found: list[object] = []

    @app.websocket("/ws")
    async def ws(w: WebSocket) -> None:
        await w.accept()
        transport = _transport(w)
        found.append(transport)
        if transport is not None:
            transport.write(frame('{"direct":true}'))  # a frame written past the protocol arrives whole
        await w.receive_text()

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def main() -> str:
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, loop="none", log_level="warning",
                                               lifespan="off"))
        serving = asyncio.ensure_future(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        try:
            async with connect(f"ws://127.0.0.1:{port}/ws") as c:
                got = await asyncio.wait_for(c.recv(), 10)
                await c.send("bye")
            return str(got)
        finally:
            server.should_exit = True
            await serving

    got = uvloop.run(main())
    assert found and found[0] is not None
    assert type(found[0]).__module__.startswith("uvloop")
    assert got == '{"direct":true}'
