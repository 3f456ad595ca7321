"""`router.providers.sigv4` against AWS's published SigV4 test suite (tests/fixtures/sigv4)."""

from __future__ import annotations

import hmac
import json
from pathlib import Path

import pytest

from router.providers.sigv4 import Credentials, SigV4Signer, canonical_path, payload_hash

VECTORS = Path(__file__).parent.parent / "fixtures" / "sigv4"
CASES = sorted(p.name for p in VECTORS.iterdir() if p.is_dir())


def _parse_request(raw: str) -> tuple[str, str, str, list[tuple[str, str]], bytes]:
    head, _, body = raw.partition("\n\n")
    lines = head.split("\n")
    method, target, _ = lines[0].split(" ", 1)[0], *lines[0].split(" ", 1)[1].rsplit(" ", 1)
    headers: list[tuple[str, str]] = []
    for line in filter(None, lines[1:]):
        if line[:1] in (" ", "\t") and headers:  # a folded continuation line
            name, value = headers.pop()
            headers.append((name, f"{value} {line.strip()}"))
        else:
            name, _, value = line.partition(":")
            headers.append((name, value))
    path, _, query = target.partition("?")
    return method, path, query, headers, body.encode()


@pytest.mark.parametrize("case", CASES)
def test_aws_vector(case: str) -> None:
    d = VECTORS / case
    ctx = json.loads((d / "context.json").read_text())
    method, path, query, headers, body = _parse_request((d / "request.txt").read_text())
    creds = ctx["credentials"]
    signer = SigV4Signer(
        Credentials(creds["access_key_id"], creds["secret_access_key"], creds.get("token")),
        ctx["region"],
        ctx["service"],
    )
    amz_date = ctx["timestamp"].replace("-", "").replace(":", "")
    host = next(v for n, v in headers if n.lower() == "host")
    others = [(n, v) for n, v in headers if n.lower() != "host"]
    token = creds.get("token")
    omit = ctx.get("omit_session_token", False)
    # The intermediate steps, exactly as published.
    signing = [("host", host), *others, ("x-amz-date", amz_date)]
    if token and not omit:
        signing.append(("x-amz-security-token", token))
    if ctx["sign_body"]:
        signing.append(("x-amz-content-sha256", payload_hash(body)))
    canonical, _ = signer.canonical_request(method, path, query, signing, payload_hash(body), ctx["normalize"])
    assert canonical == (d / "header-canonical-request.txt").read_text()
    assert signer.string_to_sign(amz_date, canonical) == (d / "header-string-to-sign.txt").read_text()
    # And the end result: the Authorization header of the published signed request.
    added = signer.sign(
        method,
        host,
        path,
        query,
        others,
        body,
        amz_date=amz_date,
        normalize=ctx["normalize"],
        sign_body_header=ctx["sign_body"],
        sign_session_token=not omit,
    )
    signature = (d / "header-signature.txt").read_text().strip()
    assert added["authorization"].endswith(f"Signature={signature}")
    expected_auth = next(
        line.split(":", 1)[1]
        for line in (d / "header-signed-request.txt").read_text().split("\n")
        if line.startswith("Authorization:")
    )
    assert added["authorization"] == expected_auth
    if token:
        assert added["x-amz-security-token"] == token


def test_suite_is_complete() -> None:
    assert len(CASES) >= 38


def test_bedrock_model_ids_are_double_encoded() -> None:
    # botocore signs `/model/anthropic.claude-v2%3A1/converse` with the `%` encoded again.
    assert canonical_path("/model/anthropic.claude-v2%3A1/converse") == "/model/anthropic.claude-v2%253A1/converse"


def test_signing_key_is_cached_per_day_and_secret_not_in_repr() -> None:
    signer = SigV4Signer(Credentials("AKID", "SECRETKEY", "TOKEN"), "eu-central-1", "bedrock")
    k1 = signer.signing_key("20250101")
    assert signer.signing_key("20250101") is k1
    assert signer.signing_key("20250102") != k1
    assert "SECRETKEY" not in repr(signer.credentials) and "TOKEN" not in repr(signer.credentials)


def test_repeat_signatures_match_the_general_computation() -> None:
    """`sign` fills a per-target template and a precomputed HMAC: every later request to the same target (other
    date, other body, the content hash signed or not) must still sign exactly what the step-by-step path does."""
    signer = SigV4Signer(Credentials("AKID", "SECRETKEY", "TOKEN"), "eu-central-1", "bedrock")
    host, path = "bedrock-runtime.eu-central-1.amazonaws.com", "/model/eu.anthropic.claude-v2%3A1/converse"
    headers = [("Content-Type", " application/json "), ("X-Custom", "a  b"), ("x-custom", "c")]
    for amz_date, body, sign_body in [
        ("20250101T000000Z", b'{"a":1}', False),
        ("20250101T000001Z", b'{"a":2}', False),
        ("20250102T235959Z", b"", False),
        ("20250102T235959Z", b'{"b":1}', True),
        ("20250103T120000Z", b'{"b":2}', True),
    ]:
        added = signer.sign("POST", host, path, "b=2&a=1", headers, body, amz_date=amz_date, sign_body_header=sign_body)
        signing = [("host", host), *headers, ("x-amz-date", amz_date), ("x-amz-security-token", "TOKEN")]
        if sign_body:
            signing.append(("x-amz-content-sha256", payload_hash(body)))
        canonical, signed = signer.canonical_request("POST", path, "b=2&a=1", signing, payload_hash(body))
        to_sign = signer.string_to_sign(amz_date, canonical)
        expected = hmac.digest(signer.signing_key(amz_date[:8]), to_sign.encode(), "sha256").hex()
        assert added["authorization"] == (
            f"AWS4-HMAC-SHA256 Credential=AKID/{amz_date[:8]}/eu-central-1/bedrock/aws4_request, "
            f"SignedHeaders={signed}, Signature={expected}"
        )
        assert signed == "content-type;host;x-amz-date;x-amz-security-token;x-custom" or sign_body
    # A caller's header named like one `sign` adds is merged as the general path merges it, not templated.
    added = signer.sign("POST", host, path, "", [("X-Amz-Date", "x")], b"", amz_date="20250101T000000Z")
    canonical, _ = signer.canonical_request(
        "POST", path, "", [("host", host), ("X-Amz-Date", "x"), ("x-amz-date", "20250101T000000Z"),
                           ("x-amz-security-token", "TOKEN")], payload_hash(b"")
    )  # fmt: skip
    expected = hmac.digest(
        signer.signing_key("20250101"), signer.string_to_sign("20250101T000000Z", canonical).encode(), "sha256"
    ).hex()
    assert added["authorization"].endswith(f"Signature={expected}")
