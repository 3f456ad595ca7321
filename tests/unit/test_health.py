from __future__ import annotations

import asyncio

from router.config import load_config
from router.server import handlers
from router.server.app import App


class Capture:
    def send_bytes(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.status, self.body = status, body


def test_readyz_reports_an_unreachable_database(tmp_path) -> None:
    app = App(load_config(), str(tmp_path / "r.db"), None)
    ok = Capture()
    asyncio.run(handlers.readyz(app, ok))
    assert ok.status == 200
    app.store._conn.close()  # what a vanished or broken database looks like to the server
    down = Capture()
    asyncio.run(handlers.readyz(app, down))
    assert down.status == 503
    assert b"unreachable" in down.body
