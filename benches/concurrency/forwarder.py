"""The do-nothing forwarder the gateway is compared with: granian RSGI, the request body decoded (msgspec) and
sent on with pyreqwest, the answer relayed as it comes (a stream chunk by chunk). No auth, no accounting, no
backpressure: the ceiling of this stack, not a product. `granian --interface rsgi benches/concurrency/forwarder:app`
with UPSTREAM set to the upstream's chat completions URL."""

from __future__ import annotations

import os

import msgspec
from granian.rsgi import HTTPProtocol, Scope
from pyreqwest.client import Client, ClientBuilder
from pyreqwest.http import Url

_decode = msgspec.json.Decoder()
_HEADERS = [("content-type", "application/json")]
_STREAM_HEADERS = [("content-type", "text/event-stream")]


class App:
    def __init__(self) -> None:
        self.url = Url(os.environ["UPSTREAM"])
        self.client: Client | None = None

    async def __rsgi__(self, scope: Scope, proto: HTTPProtocol) -> None:
        if self.client is None:
            self.client = ClientBuilder().build()  # no connection cap: in-flight requests grow with the load
        body = await proto()
        request = _decode.decode(body)
        call = self.client.post(self.url).header("content-type", "application/json").body_bytes(body)
        if not request.get("stream"):
            response = await call.build().send()
            proto.response_bytes(response.status, _HEADERS, bytes(await response.bytes()))
            return
        async with call.streamed_read_buffer_limit(0).build_streamed() as response:
            transport = proto.response_stream(response.status, _STREAM_HEADERS)
            reader = response.body_reader
            while (chunk := await reader.read_chunk()) is not None:
                await transport.send_bytes(bytes(chunk))


app = App()
