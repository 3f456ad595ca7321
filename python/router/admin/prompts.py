"""The prompt library routes of the management API: prompts and their versions, diffs, rollbacks and
duplicates, and their attachment to keys and groups."""

from __future__ import annotations

from typing import Any

from ..errors import InvalidRequest
from ..guardrails.stored import group_scope, key_scope
from ..prompts.library import Attach, Duplicate, PromptEdit, PromptSpec, PromptUpdate, Rollback, prompt_view
from .routing import Call, paged, route


def _number(call: Call, name: str) -> int:
    raw = call.params.get(name) or call.query.get(name)
    if raw is None or not raw.isdigit():
        raise InvalidRequest(f"'{name}' must be a version number.", param=name, code="invalid_value")
    return int(raw)


@route("GET", "/prompts", "List the prompt library (tag=… filters by tag)")
def list_prompts(call: Call) -> tuple[int, Any]:
    tag = call.query.get("tag")
    return paged(call, lambda n, o: call.prompts.list(call.actor, n, o, tag), prompt_view)


@route("POST", "/prompts", "Create a prompt (kind system or vibe); its text becomes version 1", PromptSpec)
def create_prompt(call: Call) -> tuple[int, Any]:
    return 201, call.prompts.create(call.actor, call.body)


@route("GET", "/prompts/{name}", "A prompt with its latest version's text")
def get_prompt(call: Call) -> tuple[int, Any]:
    return 200, call.prompts.get(call.actor, call.params["name"])


@route("PATCH", "/prompts/{name}", "Rename a prompt, or change its description or tags (not versioned)", PromptUpdate)
def update_prompt(call: Call) -> tuple[int, Any]:
    return 200, call.prompts.update(call.actor, call.params["name"], call.body)


@route("DELETE", "/prompts/{name}", "Delete a prompt and its versions (refused while attached)")
def delete_prompt(call: Call) -> tuple[int, Any]:
    return 200, call.prompts.delete(call.actor, call.params["name"])


@route("GET", "/prompts/{name}/versions", "Every version of a prompt, oldest first (without the texts)")
def list_versions(call: Call) -> tuple[int, Any]:
    return 200, {"object": "list", "data": call.prompts.versions(call.actor, call.params["name"])}


@route("POST", "/prompts/{name}/versions", "Edit a prompt: a new immutable version with this text", PromptEdit)
def add_version(call: Call) -> tuple[int, Any]:
    return 201, call.prompts.edit(call.actor, call.params["name"], call.body)


@route("GET", "/prompts/{name}/versions/{version}", "One version of a prompt, with its text")
def get_version(call: Call) -> tuple[int, Any]:
    return 200, call.prompts.version(call.actor, call.params["name"], _number(call, "version"))


@route("GET", "/prompts/{name}/diff", "A unified diff between two versions (?from=1&to=2)")
def diff_versions(call: Call) -> tuple[int, Any]:
    return 200, call.prompts.diff(call.actor, call.params["name"], _number(call, "from"), _number(call, "to"))


@route("POST", "/prompts/{name}/rollback", "Roll back: a new version equal to an older one", Rollback)
def rollback_prompt(call: Call) -> tuple[int, Any]:
    return 201, call.prompts.rollback(call.actor, call.params["name"], call.body.version)


@route("POST", "/prompts/{name}/duplicate", "Copy a prompt's latest text and tags under a new name", Duplicate)
def duplicate_prompt(call: Call) -> tuple[int, Any]:
    return 201, call.prompts.duplicate(call.actor, call.params["name"], call.body.name)


def _key_scope(call: Call) -> str:
    return key_scope(call.gov.get_key(call.actor, call.params["id"]).id)


def _group_scope(call: Call) -> str:
    return group_scope(call.gov.get_group(call.actor, call.params["id"]).id)


@route("GET", "/apikey/{id}/prompts", "The prompts attached to a key (its groups' apply where it has none)")
def key_prompts(call: Call) -> tuple[int, Any]:
    return 200, {"object": "list", "data": call.prompts.attachments(call.actor, _key_scope(call))}


@route(
    "POST",
    "/apikey/{id}/prompts",
    "Attach a prompt to a key: 'name' (latest) or 'name@3', mode prepend|append|replace",
    Attach,
)
def attach_key_prompt(call: Call) -> tuple[int, Any]:
    return 200, {"object": "list", "data": call.prompts.attach(call.actor, _key_scope(call), call.body)}


@route("DELETE", "/apikey/{id}/prompts/{kind}", "Detach a key's system or vibe prompt")
def detach_key_prompt(call: Call) -> tuple[int, Any]:
    scope = _key_scope(call)
    return 200, {"object": "list", "data": call.prompts.detach(call.actor, scope, call.params["kind"])}


@route("GET", "/group/{id}/prompts", "The prompts attached to a group")
def group_prompts(call: Call) -> tuple[int, Any]:
    return 200, {"object": "list", "data": call.prompts.attachments(call.actor, _group_scope(call))}


@route("POST", "/group/{id}/prompts", "Attach a prompt to a group's keys and its members' keys", Attach)
def attach_group_prompt(call: Call) -> tuple[int, Any]:
    return 200, {"object": "list", "data": call.prompts.attach(call.actor, _group_scope(call), call.body)}


@route("DELETE", "/group/{id}/prompts/{kind}", "Detach a group's system or vibe prompt")
def detach_group_prompt(call: Call) -> tuple[int, Any]:
    scope = _group_scope(call)
    return 200, {"object": "list", "data": call.prompts.detach(call.actor, scope, call.params["kind"])}
