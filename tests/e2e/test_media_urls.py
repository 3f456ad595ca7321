"""Image and PDF URLs for providers that take bytes only (Gemini, Bedrock): fetched by the gateway with a size cap,
a timeout and a content-type check, and never from loopback or private addresses unless the provider allows it
(`fetch_private_urls: true`, which these tests need for their loopback image server)."""

from __future__ import annotations

import base64
import contextlib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai
import pytest

from router.mock import bedrock as mock_bedrock
from router.mock import gemini as mock_gemini
from router.mock.openai_images import png

from servers import MockControl, Server, create_key, gateway_env, start_gateway

IMAGE = png(b"media-url-test")
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
CONFIG = f"""
providers:
  google:
    kind: gemini
    base_url: env:TEST_GEMINI_URL
    api_key: {mock_gemini.API_KEY}
  intranet:
    kind: gemini
    base_url: env:TEST_GEMINI_URL
    api_key: {mock_gemini.API_KEY}
    fetch_private_urls: true
    fetch_max_bytes: 4096
    fetch_timeout: 1
  bedrock:
    kind: bedrock
    base_url: env:TEST_BEDROCK_URL
    region: eu-central-1
    api_key: {mock_bedrock.API_KEY}
    fetch_private_urls: true
models:
  - {{id: google/gemini-2.5-flash, capabilities: [streaming, vision]}}
  - {{id: intranet/gemini-2.5-flash, capabilities: [streaming, vision]}}
  - {{id: bedrock/eu.anthropic.claude-sonnet-4-5-20250929-v1:0, capabilities: [streaming, vision]}}
"""


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        routes = {
            "/cat.png": (200, "image/png", IMAGE),
            "/doc.pdf": (200, "application/pdf", PDF),
            "/page.html": (200, "text/html; charset=utf-8", b"<html></html>"),
            "/big.png": (200, "image/png", b"\x89PNG" + b"\x00" * 10_000),
            "/missing.png": (404, "text/plain", b"no"),
        }
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("location", "/cat.png")
            self.end_headers()
            return
        if self.path == "/loop":
            self.send_response(302)
            self.send_header("location", "/loop")
            self.end_headers()
            return
        if self.path == "/slow.png":
            time.sleep(3)
        status, kind, body = routes.get(self.path, (200, "image/png", IMAGE))
        self.send_response(status)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        # The gateway stops reading past its size cap or timeout: what is being tested.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def images() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def gw(mock_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("media")
    (root / "config.yaml").write_text(CONFIG)
    env = gateway_env(root / "router.db", mock_server.base, root / "config.yaml")
    env |= {"TEST_GEMINI_URL": f"{mock_server.base}/v1beta", "TEST_BEDROCK_URL": mock_server.base}
    server = start_gateway(env)
    server.key = create_key(server.env, "media")["key"]  # type: ignore[attr-defined]
    yield server
    server.stop()


@pytest.fixture
def oai(gw: Server) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gw.base}/v1", api_key=gw.key, max_retries=0, timeout=20) as client:  # type: ignore[attr-defined]
        yield client


def _ask(oai: openai.OpenAI, model: str, url: str, part: str = "image_url") -> openai.types.chat.ChatCompletion:
    content: dict = (
        {"type": "image_url", "image_url": {"url": url}}
        if part == "image_url"
        else {"type": "file", "file": {"file_url": url, "filename": "doc.pdf"}}
    )
    return oai.chat.completions.create(
        model=model, messages=[{"role": "user", "content": [{"type": "text", "text": "What is this?"}, content]}]
    )


def test_loopback_url_is_refused_by_default(oai: openai.OpenAI, images: str, mock: MockControl) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        _ask(oai, "google/gemini-2.5-flash", f"{images}/cat.png")
    error = refused.value
    assert error.code == "invalid_media_url" and "127.0.0.1" in error.message and "private" in error.message
    assert error.param == "messages[0].content[1]"
    assert mock.count() == 0


@pytest.mark.parametrize("host", ["localhost", "[::1]", "169.254.169.254", "10.0.0.1", "[::ffff:127.0.0.1]"])
def test_other_private_hosts_are_refused(oai: openai.OpenAI, host: str, mock: MockControl) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        _ask(oai, "google/gemini-2.5-flash", f"http://{host}:9/x.png")
    assert refused.value.code == "invalid_media_url"
    assert mock.count() == 0


def test_allowed_provider_inlines_the_fetched_bytes(oai: openai.OpenAI, images: str, mock: MockControl) -> None:
    assert _ask(oai, "intranet/gemini-2.5-flash", f"{images}/redirect").choices[0].message.content
    part = mock.requests()[-1]["body"]["contents"][0]["parts"][1]
    assert part == {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(IMAGE).decode()}}


def test_pdf_url_reaches_bedrock_as_bytes(oai: openai.OpenAI, images: str, mock: MockControl) -> None:
    _ask(oai, "bedrock/eu.anthropic.claude-sonnet-4-5-20250929-v1:0", f"{images}/cat.png")
    content = mock.requests()[-1]["body"]["messages"][0]["content"]
    image = next(c["image"] for c in content if "image" in c)
    assert image["format"] == "png" and base64.b64decode(image["source"]["bytes"]) == IMAGE
    _ask(oai, "bedrock/eu.anthropic.claude-sonnet-4-5-20250929-v1:0", f"{images}/doc.pdf", part="file")
    content = mock.requests()[-1]["body"]["messages"][0]["content"]
    document = next(c["document"] for c in content if "document" in c)
    assert base64.b64decode(document["source"]["bytes"]) == PDF


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("/page.html", "content type is 'text/html'"),
        ("/big.png", "limit is 4096"),
        ("/missing.png", "HTTP 404"),
        ("/loop", "redirected more than 3 times"),
        ("/slow.png", "within 1 s"),
    ],
)
def test_bad_urls_are_400_naming_the_part(
    oai: openai.OpenAI, images: str, mock: MockControl, path: str, problem: str
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        _ask(oai, "intranet/gemini-2.5-flash", images + path)
    assert problem in refused.value.message and refused.value.param == "messages[0].content[1]"
    assert mock.count() == 0


def test_non_http_schemes_are_refused(oai: openai.OpenAI, mock: MockControl) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        _ask(oai, "intranet/gemini-2.5-flash", "file:///etc/passwd")
    assert "http://" in refused.value.message
    assert mock.count() == 0
