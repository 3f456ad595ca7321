"""Connection-level faults that RSGI has no API for.

RSGI can only end a response cleanly: raising mid-stream still makes granian write the chunked terminator, which
is not a dropped connection. To really cut the transfer we find this worker's socket for the client (by peer
address, via the process's fd table) and ``shutdown()`` it. ``shutdown`` acts on the connection itself, so it works
through our dup of the fd while granian keeps its own; it sends a FIN rather than a RST, so the client still reads
every byte sent before the cut and then sees the body end early (e.g. "incomplete chunked read").
"""

from __future__ import annotations

import os
import socket
import stat

_FD_DIRS = ("/proc/self/fd", "/dev/fd")


def _peer_matches(peer: object, host: str, port: int) -> bool:
    if not isinstance(peer, tuple) or len(peer) < 2 or peer[1] != port:
        return False
    address = str(peer[0])
    return address == host or address.removeprefix("::ffff:") == host.removeprefix("::ffff:")


def _split_client(client: str) -> tuple[str, int] | None:
    host, sep, port = client.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def abort_connection(client: str) -> bool:
    """Shut down the connection whose peer is ``client`` ("host:port" from the RSGI scope).

    Returns False when the socket cannot be found (no fd table to scan); callers then fall back to ending the
    response early, which is the closest RSGI itself can do.
    """
    target = _split_client(client)
    if target is None:
        return False
    fd_dir = next((d for d in _FD_DIRS if os.path.isdir(d)), None)
    if fd_dir is None:
        return False
    for name in os.listdir(fd_dir):
        try:
            fd = int(name)
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            sock = socket.socket(fileno=os.dup(fd))
        except (ValueError, OSError):
            continue
        with sock:
            try:
                if sock.type == socket.SOCK_STREAM and _peer_matches(sock.getpeername(), *target):
                    sock.shutdown(socket.SHUT_RDWR)
                    return True
            except OSError:
                continue
    return False
