"""Fetching image and PDF URLs for providers that take only bytes (Gemini, Vertex AI, Bedrock).

A URL in a request is the caller's, so fetching it is a server-side request on the caller's behalf: every
address a host name resolves to is checked, and the connection goes to a checked address (never a second
resolution a DNS rebinding could answer differently). Loopback, private, link-local, shared (CGNAT), reserved,
multicast and unspecified addresses are refused, at every redirect hop, unless the provider sets
`fetch_private_urls: true`. Each fetch has a size cap, a timeout covering every hop, a redirect limit and a
content-type check; failures are the caller's 400 naming the content part, never forwarded upstream.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import socket
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from ..errors import InvalidRequest

if TYPE_CHECKING:
    import httpcore

Json = dict[str, Any]

MAX_REDIRECTS = 3
# URL parts fetched per request; more is refused rather than fetched one after another for minutes.
MAX_URLS = 16
# Content types each kind of block may have (what Gemini and Bedrock accept inline).
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/heic", "image/heif"})
DOCUMENT_TYPES = frozenset({"application/pdf"})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def forbidden(address: str) -> bool:
    """Whether `address` is one a fetch on a caller's behalf must not reach."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


class _Refused(Exception):
    def __init__(self, host: str, address: str) -> None:
        super().__init__(f"{host} resolves to {address}, a private, loopback or link-local address")


def _checked_backend(allow_private: bool) -> httpcore.AsyncNetworkBackend:
    """A network backend that resolves the host itself, refuses it if any of its addresses is forbidden, and
    connects to the first. (httpcore is imported on first use: it is not needed to start a worker.)"""
    import httpcore

    inner = httpcore.AnyIOBackend()

    class CheckedBackend(httpcore.AsyncNetworkBackend):
        async def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
            local_address: str | None = None,
            socket_options: Any = None,
        ) -> httpcore.AsyncNetworkStream:
            loop = asyncio.get_running_loop()
            infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout)
            addresses = [str(info[4][0]) for info in infos]
            if not addresses:
                raise OSError(f"{host} has no address")
            if not allow_private:
                for address in addresses:
                    if forbidden(address):
                        raise _Refused(host, address)
            return await inner.connect_tcp(
                addresses[0], port, timeout=timeout, local_address=local_address, socket_options=socket_options
            )

        async def sleep(self, seconds: float) -> None:
            await inner.sleep(seconds)

    return CheckedBackend()


class MediaFetcher:
    """One provider's fetcher, with its settings (`fetch_private_urls`, `fetch_max_bytes`, `fetch_timeout`)."""

    def __init__(self, provider: str, allow_private: bool, max_bytes: int, timeout: float) -> None:
        self.provider = provider
        self.max_bytes = max_bytes
        self.timeout = timeout
        import httpcore

        self._failures = (httpcore.ConnectError, httpcore.ProtocolError, httpcore.ReadError, OSError)
        self._pool = httpcore.AsyncConnectionPool(
            network_backend=_checked_backend(allow_private), max_connections=32, retries=0
        )

    async def close(self) -> None:
        await self._pool.aclose()

    async def fetch(self, url: str, where: str, allowed: frozenset[str]) -> tuple[str, bytes]:
        """(content type, bytes) of `url`, or a 400 naming `where` and what was wrong."""
        try:
            async with asyncio.timeout(self.timeout):
                return await self._fetch(url, where, allowed)
        except TimeoutError:
            raise _bad(where, f"the URL could not be fetched within {self.timeout:g} s") from None
        except _Refused as exc:
            raise _bad(where, f"the URL is refused: {exc}") from None
        except self._failures as exc:
            raise _bad(where, f"the URL could not be fetched ({type(exc).__name__})") from None

    async def _fetch(self, url: str, where: str, allowed: frozenset[str]) -> tuple[str, bytes]:
        for _ in range(MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise _bad(where, "only http:// and https:// URLs (or data: URLs) can be fetched")
            headers = [(b"user-agent", b"router-media-fetch"), (b"accept", ", ".join(sorted(allowed)).encode())]
            async with self._pool.stream("GET", url, headers=headers) as response:
                status = response.status
                values = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response.headers}
                if status in _REDIRECTS and values.get("location"):
                    url = urljoin(url, values["location"])
                    continue
                if status != 200:
                    raise _bad(where, f"the URL answered HTTP {status}")
                kind = values.get("content-type", "").split(";", 1)[0].strip().lower()
                if kind not in allowed:
                    raise _bad(where, f"the URL's content type is {kind or 'missing'!r}, not one of {sorted(allowed)}")
                length = values.get("content-length", "")
                if length.isdigit() and int(length) > self.max_bytes:
                    raise _bad(where, f"the URL's content is {int(length)} bytes; the limit is {self.max_bytes}")
                body = bytearray()
                async for chunk in response.aiter_stream():
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise _bad(where, f"the URL's content is larger than the limit of {self.max_bytes} bytes")
                return kind, bytes(body)
        raise _bad(where, f"the URL redirected more than {MAX_REDIRECTS} times")

    async def inline(self, request: Json) -> bool:
        """Replace the URL sources of a Messages request's image and document blocks by their bytes (base64);
        whether there were any."""
        found: list[tuple[Json, str, frozenset[str]]] = []
        for i, message in enumerate(request.get("messages") or ()):
            _collect(message.get("content"), f"messages[{i}].content", found)
        if not found:
            return False
        if len(found) > MAX_URLS:
            raise _bad(found[MAX_URLS][1], f"at most {MAX_URLS} image or document URLs can be fetched per request")
        fetched = await asyncio.gather(*(self.fetch(b["source"]["url"], where, kinds) for b, where, kinds in found))
        for (block, _, _), (kind, data) in zip(found, fetched, strict=True):
            block["source"] = {"type": "base64", "media_type": kind, "data": base64.b64encode(data).decode()}
        return True


def _collect(content: Any, where: str, found: list[tuple[Json, str, frozenset[str]]]) -> None:
    if not isinstance(content, list):
        return
    for j, block in enumerate(content):
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        source = block.get("source")
        if kind in ("image", "document") and isinstance(source, dict) and source.get("type") == "url":
            found.append((block, f"{where}[{j}]", IMAGE_TYPES if kind == "image" else DOCUMENT_TYPES))
        elif kind == "tool_result":
            _collect(block.get("content"), f"{where}[{j}].content", found)


def _bad(where: str, problem: str) -> InvalidRequest:
    return InvalidRequest(f"{where}: {problem}.", param=where, code="invalid_media_url")
