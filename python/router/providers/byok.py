"""BYOK: the organisation's own provider keys, sealed at rest with AES-GCM under the master key.

The master key is 32 random bytes given as base64 (or 64 hex digits) in `ROUTER_MASTER_KEY`; it never touches
the database. Each sealed key is `nonce (12 bytes) || ciphertext+tag`, with the organisation and provider as
associated data, so a sealed blob moved to another provider's row does not open. Each row records the short
id of the master key that sealed it, so `router byok rotate` (old key in `ROUTER_MASTER_KEY_PREVIOUS`) knows
which rows still need re-sealing and a worker started with the wrong master key says so instead of sending
garbage upstream.

`OwnKeyring` is a worker's decrypted view, rebuilt when the store's change epoch moves. Plaintext keys live
only there, in the provider's credential header, and are never logged or returned by the API.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import ConfigError
from ..routing.credentials import Credential
from ..store.routing_tables import ORG

if TYPE_CHECKING:
    from ..store import Store
    from .openai_compat import OpenAICompatProvider

log = logging.getLogger("router.byok")

MASTER_KEY_ENV = "ROUTER_MASTER_KEY"
PREVIOUS_MASTER_KEY_ENV = "ROUTER_MASTER_KEY_PREVIOUS"
_NONCE = 12


def fingerprint(secret: str) -> str:
    """A short, non-reversible handle on a provider key: enough to tell two keys apart, useless to an attacker."""
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


class MasterKey:
    def __init__(self, raw: bytes) -> None:
        if len(raw) != 32:
            raise ValueError("a master key is 32 bytes")
        self._aead = AESGCM(raw)
        # Names the key in the database without revealing it (a domain-separated digest).
        self.id = hashlib.sha256(b"router-byok-master:" + raw).hexdigest()[:12]

    @classmethod
    def parse(cls, text: str, name: str) -> MasterKey:
        text = text.strip()
        raw: bytes | None = None
        try:
            raw = bytes.fromhex(text) if len(text) == 64 else base64.b64decode(text + "=" * (-len(text) % 4), b"-_")
        except (ValueError, binascii.Error):
            raw = None
        if raw is None or len(raw) != 32:
            raise ConfigError(
                f"{name}: expected 32 random bytes as base64 or 64 hex digits "
                '(e.g. python -c "import os,base64; print(base64.b64encode(os.urandom(32)).decode())")'
            )
        return cls(raw)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, name: str = MASTER_KEY_ENV) -> MasterKey | None:
        value = environ.get(name)
        return cls.parse(value, name) if value else None

    def seal(self, provider: str, secret: str, org_id: str = ORG) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, secret.encode(), _aad(org_id, provider))

    def open(self, provider: str, sealed: bytes, org_id: str = ORG) -> str:
        """The plaintext key; raises InvalidTag when `sealed` was not made by this key for this provider."""
        return self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], _aad(org_id, provider)).decode()


def _aad(org_id: str, provider: str) -> bytes:
    return f"router-byok:{org_id}:{provider}".encode()


class OwnKeyring:
    """Provider name → the credential of the organisation's stored key, for one worker."""

    def __init__(self, store: Store, master: MasterKey | None, providers: Mapping[str, OpenAICompatProvider]) -> None:
        self._store = store
        self._master = master
        self._providers = providers
        self._credentials: dict[str, Credential] = {}

    def get(self, provider: str) -> Credential | None:
        return self._credentials.get(provider)

    def refresh(self) -> None:
        self.load()()

    def load(self) -> Callable[[], None]:
        """Read and open the stored keys (any thread); the returned function swaps them in."""
        credentials: dict[str, Credential] = {}
        for row in self._store.provider_keys():
            adapter = self._providers.get(row.provider)
            if adapter is None:
                continue
            if self._master is None or row.master != self._master.id:
                log.error(
                    "BYOK key for provider %r (fingerprint %s) is sealed under master key %s, but %s is %s; "
                    "it is not used (see `router byok rotate`)",
                    row.provider, row.fingerprint, row.master, MASTER_KEY_ENV,
                    "unset" if self._master is None else self._master.id,
                )  # fmt: skip
                continue
            try:
                secret = self._master.open(row.provider, row.sealed)
            except InvalidTag:
                log.error("BYOK key for provider %r does not open with the master key; it is not used", row.provider)
                continue
            credentials[row.provider] = Credential(adapter.auth_headers(secret), True)

        def apply() -> None:
            self._credentials = credentials

        return apply
