"""Bare forwarder: granian ASGI + msgspec decode + aiohttp forward, nothing else (a baseline for benches/load.py)."""

import os

import aiohttp
import msgspec

UPSTREAM = os.environ.get("BASELINE_UPSTREAM", "http://127.0.0.1:18080/v1/chat/completions")
decoder = msgspec.json.Decoder()
client = None


async def app(scope, receive, send) -> None:
    global client
    if scope["type"] != "http":
        return
    if client is None:
        client = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200))
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    decoder.decode(body)  # a real proxy reads the request
    async with client.post(UPSTREAM, data=body, headers={"content-type": "application/json"}) as response:
        data = await response.read()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": data})
