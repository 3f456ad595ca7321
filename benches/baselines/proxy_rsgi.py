"""Bare forwarder: granian RSGI + msgspec decode + aiohttp forward, nothing else (a baseline for benches/load.py)."""

import os

import aiohttp
import msgspec

UPSTREAM = os.environ.get("BASELINE_UPSTREAM", "http://127.0.0.1:18080/v1/chat/completions")
decoder = msgspec.json.Decoder()


class App:
    def __init__(self) -> None:
        self.client = None

    async def __rsgi__(self, scope, proto) -> None:
        if self.client is None:
            self.client = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200))
        body = await proto()
        decoder.decode(body)  # a real proxy reads the request
        async with self.client.post(UPSTREAM, data=body, headers={"content-type": "application/json"}) as response:
            data = await response.read()
        proto.response_bytes(200, [("content-type", "application/json")], data)


app = App()
