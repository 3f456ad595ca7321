"""The routing routes of the management API: policies (`policy/<name>`) and the organisation's provider keys."""

from __future__ import annotations

from typing import Any

from ..governance.byok import ProviderKeySpec
from ..governance.policies import PolicySpec
from .routing import Call, route


@route("GET", "/policy", "List routing policies: the config file's (read-only) and the API's (org-wide or per key)")
def list_policies(call: Call) -> tuple[int, Any]:
    return 200, {"object": "list", "data": call.policies.list(call.actor)}


@route("POST", "/policy", "Create a routing policy (key_id: usable only by that key)", PolicySpec)
def create_policy(call: Call) -> tuple[int, Any]:
    return 201, call.policies.create(call.actor, call.body)


@route("GET", "/policy/{name}", "A routing policy")
def get_policy(call: Call) -> tuple[int, Any]:
    return 200, call.policies.get(call.actor, call.params["name"])


@route("PUT", "/policy/{name}", "Replace a routing policy (config file policies are read-only)", PolicySpec)
def replace_policy(call: Call) -> tuple[int, Any]:
    return 200, call.policies.replace(call.actor, call.params["name"], call.body)


@route("DELETE", "/policy/{name}", "Delete a routing policy (refused while another policy targets it)")
def delete_policy(call: Call) -> tuple[int, Any]:
    return 200, call.policies.delete(call.actor, call.params["name"])


@route("GET", "/byok/{provider}", "The organisation's own key for a provider: its fingerprint, never the key")
def get_provider_key(call: Call) -> tuple[int, Any]:
    return 200, call.byok.get(call.actor, call.params["provider"])


@route("PUT", "/byok/{provider}", "Store (or replace) the organisation's own key for a provider", ProviderKeySpec)
def put_provider_key(call: Call) -> tuple[int, Any]:
    created, view = call.byok.put(call.actor, call.params["provider"], call.body)
    return 201 if created else 200, view


@route("DELETE", "/byok/{provider}", "Delete the organisation's own key for a provider")
def delete_provider_key(call: Call) -> tuple[int, Any]:
    return 200, call.byok.delete(call.actor, call.params["provider"])
