"""The mock's Bedrock authentication: SigV4 recomputed with the test credentials, or the API key."""

from __future__ import annotations

import time
from types import SimpleNamespace

from router.mock import bedrock
from router.providers.sigv4 import Credentials, SigV4Signer

HOST = "127.0.0.1:9000"
PATH = "/model/anthropic.claude-v2%3A1/converse"
BODY = b'{"messages":[]}'


def _scope(headers: dict[str, str], path: str = "/model/anthropic.claude-v2:1/converse") -> SimpleNamespace:
    return SimpleNamespace(method="POST", path=path, query_string="", headers={"host": HOST, **headers})


def _signed(secret: str = bedrock.SECRET_ACCESS_KEY, body: bytes = BODY, **kw: str) -> dict[str, str]:
    signer = SigV4Signer(Credentials(bedrock.ACCESS_KEY_ID, secret), "eu-central-1", "bedrock")
    headers = {"content-type": "application/json"}
    return headers | signer.sign("POST", HOST, PATH, "", list(headers.items()), body, **kw)


def test_a_correct_signature_passes() -> None:
    assert bedrock.verify(_scope(_signed()), BODY) is None


def test_a_wrong_secret_tampered_body_or_header_fails() -> None:
    assert bedrock.verify(_scope(_signed("wrong")), BODY)[1] == "InvalidSignatureException"  # type: ignore[index]
    assert bedrock.verify(_scope(_signed()), BODY + b" ")[1] == "InvalidSignatureException"  # type: ignore[index]
    headers = _signed() | {"content-type": "text/plain"}
    assert bedrock.verify(_scope(headers), BODY)[0] == 403  # type: ignore[index]
    other_path = _scope(_signed(), "/model/anthropic.claude-v3:1/converse")
    assert bedrock.verify(other_path, BODY)[1] == "InvalidSignatureException"  # type: ignore[index]


def test_an_old_signature_expires() -> None:
    old = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() - 3600))
    assert "expired" in bedrock.verify(_scope(_signed(amz_date=old)), BODY)[2]  # type: ignore[index]


def test_missing_or_unknown_credentials() -> None:
    assert bedrock.verify(_scope({}), BODY)[1] == "MissingAuthenticationTokenException"  # type: ignore[index]
    assert bedrock.verify(_scope({"authorization": "Bearer nope"}), BODY)[0] == 403  # type: ignore[index]
    assert bedrock.verify(_scope({"authorization": f"Bearer {bedrock.API_KEY}"}), BODY) is None
