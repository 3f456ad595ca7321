"""The issue's reference do-nothing forwarder: granian RSGI, the request body decoded (msgspec) and sent on with
aiohttp, the answer read whole and relayed (a stream chunk by chunk). The same shape as `forwarder.py` with
aiohttp as the upstream client instead of pyreqwest: the "do-nothing granian + aiohttp forwarder" of the
throughput-per-core goal. No auth, no accounting: the ceiling of that stack, not a product.
`granian --interface rsgi benches/concurrency/forwarder_aiohttp:app` with UPSTREAM set to the upstream's chat
completions URL."""

from __future__ import annotations

import os

import aiohttp
import msgspec
from granian.rsgi import HTTPProtocol, Scope

_decode = msgspec.json.Decoder()
_HEADERS = [("content-type", "application/json")]
_STREAM_HEADERS = [("content-type", "text/event-stream")]
_UPSTREAM_HEADERS = {"content-type": "application/json"}


class App:
    def __init__(self) -> None:
        self.url = os.environ["UPSTREAM"]
        self.session: aiohttp.ClientSession | None = None

    async def __rsgi__(self, scope: Scope, proto: HTTPProtocol) -> None:
        if self.session is None:  # made on the worker's loop, at the first request
            self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200))
        body = await proto()
        request = _decode.decode(body)
        async with self.session.post(self.url, data=body, headers=_UPSTREAM_HEADERS) as response:
            if not request.get("stream"):
                proto.response_bytes(response.status, _HEADERS, await response.read())
                return
            transport = proto.response_stream(response.status, _STREAM_HEADERS)
            async for chunk in response.content.iter_any():
                await transport.send_bytes(chunk)


app = App()
