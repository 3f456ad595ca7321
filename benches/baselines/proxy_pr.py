"""Bare forwarder: granian RSGI + msgspec decode + pyreqwest forward, nothing else (a baseline for benches/load.py)."""

import os

import msgspec
from pyreqwest.client import ClientBuilder

UPSTREAM = os.environ.get("BASELINE_UPSTREAM", "http://127.0.0.1:18080/v1/chat/completions")
decoder = msgspec.json.Decoder()


class App:
    def __init__(self) -> None:
        self.client = None

    async def __rsgi__(self, scope, proto) -> None:
        if self.client is None:
            self.client = ClientBuilder().max_connections(200).build()
        body = await proto()
        decoder.decode(body)  # a real proxy reads the request
        request = self.client.post(UPSTREAM).header("content-type", "application/json").body_bytes(body).build()
        response = await request.send()
        data = await response.bytes()
        proto.response_bytes(200, [("content-type", "application/json")], bytes(data))


app = App()
