"""`router.providers.sigv4` against AWS's published SigV4 test suite (tests/fixtures/sigv4)."""

from __future__ import annotations

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
