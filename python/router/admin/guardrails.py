"""The guardrail routes of the management API: the organisation's settings, and per-key and per-group
stricter overrides."""

from __future__ import annotations

from typing import Any

from ..guardrails.admin import GuardrailTest
from ..guardrails.overrides import GuardrailOverride
from ..guardrails.settings import GuardrailSettings
from .routing import Call, route


@route("GET", "/guardrails", "The organisation's guardrail settings in effect (admins and analysts)")
def get_guardrails(call: Call) -> tuple[int, Any]:
    return 200, call.guardrails.get(call.actor)


@route(
    "PUT",
    "/guardrails",
    "Replace the organisation's guardrail settings (every worker uses them from its next request)",
    GuardrailSettings,
)
def put_guardrails(call: Call) -> tuple[int, Any]:
    return 200, call.guardrails.put(call.actor, call.body)


@route("DELETE", "/guardrails", "Drop the stored guardrail settings: the config file's apply again")
def reset_guardrails(call: Call) -> tuple[int, Any]:
    return 200, call.guardrails.reset(call.actor)


@route("GET", "/apikey/{id}/guardrails", "A key's guardrail override and the settings its requests get")
def get_key_guardrails(call: Call) -> tuple[int, Any]:
    return 200, call.guardrails.get_key(call.actor, call.params["id"])


@route(
    "PUT",
    "/apikey/{id}/guardrails",
    "Set a key's guardrail override: stricter only (more categories, mask to block, custom patterns)",
    GuardrailOverride,
)
def put_key_guardrails(call: Call) -> tuple[int, Any]:
    return 200, call.guardrails.put_key(call.actor, call.params["id"], call.body)


@route("DELETE", "/apikey/{id}/guardrails", "Remove a key's guardrail override")
def delete_key_guardrails(call: Call) -> tuple[int, Any]:
    return 200, call.guardrails.delete_key(call.actor, call.params["id"])


@route("GET", "/group/{id}/guardrails", "A group's guardrail override and the settings its keys get from it")
def get_group_guardrails(call: Call) -> tuple[int, Any]:
    return 200, call.guardrails.get_group(call.actor, call.params["id"])


@route(
    "PUT",
    "/group/{id}/guardrails",
    "Set a group's guardrail override (applies to the group's keys and its members' keys): stricter only",
    GuardrailOverride,
)
def put_group_guardrails(call: Call) -> tuple[int, Any]:
    return 200, call.guardrails.put_group(call.actor, call.params["id"], call.body)


@route("DELETE", "/group/{id}/guardrails", "Remove a group's guardrail override")
def delete_group_guardrails(call: Call) -> tuple[int, Any]:
    return 200, call.guardrails.delete_group(call.actor, call.params["id"])


@route(
    "POST",
    "/guardrails/test",
    "What a request carrying a text would get (allow, mask or block), under the organisation's settings or a "
    "key's or group's effective ones: the masked text and the type, category and offsets of each finding",
    GuardrailTest,
)
def test_guardrails(call: Call) -> tuple[int, Any]:
    return 200, call.guardrails.test(call.actor, call.body)
