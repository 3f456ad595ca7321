"""A pure-Python AWS event-stream decoder: the cross-check and benchmark baseline for `router._core`'s.

Written the straightforward way (struct + zlib.crc32 over a growing bytearray), as a Python gateway would.
"""

from __future__ import annotations

import struct
import zlib

_LENGTHS = {2: 1, 3: 2, 4: 4, 5: 8, 8: 8, 9: 16}
_FORMATS = {2: ">b", 3: ">h", 4: ">i", 5: ">q", 8: ">q"}


class RefEventStreamError(ValueError):
    pass


def _headers(b: bytes) -> dict[str, object]:
    out: dict[str, object] = {}
    i = 0
    while i < len(b):
        n = b[i]
        name = b[i + 1 : i + 1 + n].decode()
        tag = b[i + 1 + n]
        i += 2 + n
        value: object
        if tag in (0, 1):
            value = tag == 0
        elif tag in (6, 7):
            (length,) = struct.unpack_from(">H", b, i)
            raw = b[i + 2 : i + 2 + length]
            value = raw.decode() if tag == 7 else bytes(raw)
            i += 2 + length
        elif tag == 9:
            value = bytes(b[i : i + 16])
            i += 16
        elif tag in _FORMATS:
            (value,) = struct.unpack_from(_FORMATS[tag], b, i)
            i += _LENGTHS[tag]
        else:
            raise RefEventStreamError(f"unknown header type {tag}")
        out[name] = value
    return out


class RefEventStreamDecoder:
    def __init__(self, max_message_size: int = 16 * 1024 * 1024) -> None:
        self._buf = bytearray()
        self._max = max_message_size

    def feed(self, chunk: bytes) -> list[tuple[dict[str, object], bytes]]:
        self._buf += chunk
        out = []
        while len(self._buf) >= 12:
            total, headers_len, prelude_crc = struct.unpack_from(">III", self._buf)
            if zlib.crc32(self._buf[:8]) != prelude_crc:
                raise RefEventStreamError("prelude CRC mismatch")
            if total < 16 or total > self._max or headers_len > total - 16:
                raise RefEventStreamError("bad length")
            if len(self._buf) < total:
                break
            (message_crc,) = struct.unpack_from(">I", self._buf, total - 4)
            if zlib.crc32(memoryview(self._buf)[: total - 4]) != message_crc:
                raise RefEventStreamError("message CRC mismatch")
            headers = _headers(bytes(self._buf[12 : 12 + headers_len]))
            out.append((headers, bytes(self._buf[12 + headers_len : total - 4])))
            del self._buf[:total]
        return out

    def finish(self) -> None:
        if self._buf:
            raise RefEventStreamError("truncated")
