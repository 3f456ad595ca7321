"""The OpenAPI 3.1 document of the management API, generated from its route table and body Structs."""

from __future__ import annotations

from typing import Any

import msgspec

from .routing import ROUTES

_ERROR = {"$ref": "#/components/schemas/Error"}
_STATUS = {
    "400": "Invalid request: the body or a parameter is wrong (`error.param` names it)",
    "401": "Missing, invalid, revoked or expired API key",
    "403": "Your role may see this resource but not do this",
    "404": "No such resource, or not visible to you",
    "409": "Conflicts with the current state (duplicate name, resource in use, expired key)",
    "413": "The request body, or a text in it, is over its size limit",
}


def build() -> dict[str, Any]:
    bodies = sorted({r.body for r in ROUTES if r.body is not None}, key=lambda t: t.__name__)
    _, components = msgspec.json.schema_components(bodies, ref_template="#/components/schemas/{name}")
    components["Error"] = {
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                    "param": {"type": ["string", "null"]},
                    "code": {"type": ["string", "null"]},
                },
                "required": ["message", "type"],
            }
        },
    }
    paths: dict[str, dict[str, Any]] = {}
    for r in ROUTES:
        op: dict[str, Any] = {
            "summary": r.summary,
            "tags": [r.tag],
            "operationId": r.handler.__name__,
            "parameters": [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in r.pattern.groupindex
            ],
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}},
                **{
                    code: {"description": text, "content": {"application/json": {"schema": _ERROR}}}
                    for code, text in _STATUS.items()
                },
            },
        }
        if r.method == "GET" and r.template.rsplit("/", 1)[-1] in (
            "apikey",
            "group",
            "access-list",
            "user",
            "service-account",
            "audit",
        ):
            op["parameters"] += [
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
                {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
            ]
        if r.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{r.body.__name__}"}}},
            }
        paths.setdefault(r.template, {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "router management API", "version": "1"},
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }


def document() -> bytes:
    return msgspec.json.encode(build())
