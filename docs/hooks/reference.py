"""MkDocs hook: the reference pages' tables, generated from the code at build time.

A page asks for a table with a marker on a line of its own, e.g. ``<!-- generate: config -->``; this hook replaces
it with Markdown built from the objects the gateway itself uses:

- ``config``: every key of the configuration file, walked from the msgspec Structs in ``router.config`` (types and
  defaults from the Structs, descriptions from the comments beside each field);
- ``cli``: every ``router`` subcommand and option, walked from ``router.cli.build_parser()``;
- ``management-api``: every operation of the OpenAPI document the gateway serves at ``/v1/manage/openapi.json``;
- ``metrics``: every metric family the workers record (``router.metrics.FAMILIES``).

So these tables cannot drift from the code: a renamed key or a new option changes the page on the next build.
An unknown marker, or a description below for a config key that no longer exists, is a warning, which fails
``mkdocs build --strict``.
"""

from __future__ import annotations

import argparse
import inspect
import io
import json
import logging
import re
import sys
import textwrap
import tokenize
import types
import typing
from pathlib import Path
from typing import Any

import msgspec

ROOT = Path(__file__).resolve().parents[2]
SOURCE = str(ROOT / "python")

log = logging.getLogger("mkdocs.hooks.reference")

MARKER = re.compile(r"^<!-- generate: ([a-z-]+) -->$", re.MULTILINE)

# Descriptions of config fields for users, where the source has no comment or one written for developers (these win
# over the comment). Keyed by the field's path in the file, or by
# `StructName.field` for a Struct used at several paths; an entry that names no field any more is a warning (fails
# the strict build).
FIELD_NOTES: dict[str, str] = {
    "providers": "Upstream providers by name; a model id `name/model` is served by provider `name`.",
    "models": "The model catalog: every model a key can be granted.",
    "server": "Request handling limits.",
    "governance": "Model approval, and what requests get while the database is unreachable.",
    "spend": "Costs, budgets and request metadata.",
    "alerts": "Budget, error-rate and latency alerts and their webhooks.",
    "timeouts": "Default upstream timeouts for every provider (a provider's own `timeouts` wins).",
    "usage_log": "The background writer of the usage log.",
    "database": "The database of keys, governance, usage and spend: a SQLite file, or a `postgresql://` URL. "
    "`ROUTER_DB` wins over it.",
    "policies": "Routing policies, each callable as the model `policy/<name>`.",
    "routing": "Retries, backoff, circuit breaking and exploration of routing policies.",
    "guardrails": "The organisation's initial guardrail settings (the management API can replace them at run time).",
    "caching": "Prompt-caching defaults for Anthropic upstreams.",
    "providers.<name>.base_url": "The provider's API root, e.g. `https://api.openai.com/v1`.",
    "providers.<name>.api_key": "The provider's key (use `env:VAR`). Sent upstream; the caller's gateway key never is.",
    "providers.<name>.headers": "Extra headers sent upstream on every request.",
    "providers.<name>.timeouts": "Per-provider timeouts, replacing the top-level `timeouts`.",
    "providers.<name>.max_connections": "Requests in flight to this provider per worker; `null` (default): no cap.",
    "providers.<name>.pool_wait": "Seconds a request waits for a slot of a capped provider before a 503.",
    "models[].id": "`provider/model`; the provider must be defined in `providers`.",
    "models[].upstream_model": "The model name sent upstream (default: the part of `id` after the slash).",
    "models[].region": "Where the model runs (`us`, `eu-central-1`, `global`, …); used by the region presets.",
    "models[].zdr": "Zero data retention; used by the `zdr-only`/`eu-zdr` presets.",
    "models[].context_window": "Tokens; a routing target whose window is smaller than the request is skipped.",
    "models[].max_output_tokens": "The model's output limit; bounds a request's budget reservation.",
    "models[].capabilities": "What the model can do; routing skips targets that lack what a request needs.",
    "models[].description": "Free text shown in `GET /v1/models`.",
    "models[].prices.input": "USD per million input tokens.",
    "models[].prices.output": "USD per million output tokens (reasoning tokens included).",
    "models[].prices.cached_input": "USD per million cached input tokens (cache reads).",
    "models[].prices.cache_write": "USD per million tokens written to the prompt cache.",
    "models[].prices.per_request": "USD charged per request.",
    "alerts.webhooks[].url": "Where alert notifications are POSTed.",
    "alerts.error_rate.threshold": "Fraction of requests answered with a status of 400 or more that fires the alert.",
    "alerts.latency_p95_ms.threshold": "p95 latency in milliseconds that fires the alert.",
    "alerts.error_rate.window_minutes": "The sliding window the rate is computed over.",
    "alerts.latency_p95_ms.window_minutes": "The sliding window the p95 is computed over.",
    "alerts.check_interval": "Seconds between alert checks.",
    "alerts.retries": "Delivery attempts after the first one fails.",
    "policies[].targets[].weight": "`load_balance`: the target's share (any positive numbers, normalised).",
    "policies[].targets[].retries": "Retries on the same target after a retryable failure (0 to 10).",
    "guardrails.enabled": "Scan requests and answers at all.",
    "guardrails.custom[].name": "The placeholder type (upper-cased), e.g. `employee_id` → `[EMPLOYEE_ID_1]`.",
    "guardrails.custom[].pattern": "A regular expression (Rust `regex` syntax).",
    "guardrails.custom[].action": "`mask` or `block`; default: `default_action`.",
    "guardrails.scan_requests": "Scan what callers send.",
    "guardrails.scan_responses": "Scan what models answer, whole and streamed.",
    "server.max_body_bytes": "Requests with a larger body get 413.",
    "Timeouts.connect": "Seconds to open a connection to the upstream.",
    "Timeouts.idle_read": "Seconds of silence allowed between streamed chunks.",
    "Timeouts.total": "Seconds for the whole upstream exchange.",
    "usage_log.batch_size": "Rows written per transaction at most.",
    "policies[].name": "Callable as the model `policy/<name>`; unique across the file and the management API.",
    "policies[].targets": "Models or other policies, in order (fallback) or weighted (load_balance).",
    "policies[].type": "`fallback` tries targets in order, `load_balance` by weight, `latency` fastest first.",
    "alerts.error_rate.min_requests": "Fewer requests than this in the window never fire.",
    "alerts.webhooks": "Where alerts are delivered, signed with HMAC-SHA256.",
    "alerts.error_rate": "Fire when the share of requests answered with a status of 400 or more exceeds `threshold`.",
    "alerts.latency_p95_ms": "Fire when the p95 latency in the window exceeds `threshold` milliseconds.",
    "models[].prices": "Prices for cost and budgets; default: the shipped price list's entry for `upstream_model`.",
    "usage_log.flush_interval": "Seconds between writes of buffered usage rows.",
    "guardrails.categories": "Per category (`pii`, `pci`, `banking`, `secrets`, `financial`, `names`): "
    "`mask`, `block` or `off`.",
    "guardrails.custom": "Your own named regular expressions (category `custom`), each with an optional action.",
    "policies[].targets[].model": "A model id, or `policy/<name>` for another policy.",
    "policies[].targets[].policy": "Another policy's name (the same as `model: policy/<name>`).",
    "policies[].targets[].key_strategy": "Whose provider key pays: `router` (the configured `api_key`), `own` (the "
    "organisation's stored key), or one then the other on 401, 403 or 429.",
    "routing.backoff_factor": "Each retry waits this many times longer than the one before.",
    "routing.backoff_max": "The longest backoff, in seconds.",
    "routing.jitter": "Random spread of each backoff, as a fraction (0.1: ±10%).",
    "routing.breaker_cooldown": "Seconds an open circuit skips its target (or the upstream's retry-after, if longer).",
    "routing.backoff_initial": "The first retry's delay in seconds (0.5 → 1 → 2 → 4 with the defaults).",
    "alerts.latency_p95_ms.min_requests": "Fewer requests than this in the window never fire.",
}


def _text(text: str) -> str:
    """Free text for a table cell: pipes escaped, and `<...>` outside code spans shown instead of read as HTML."""
    parts = text.replace("|", "\\|").split("`")
    for i in range(0, len(parts), 2):  # even parts are outside code spans
        parts[i] = parts[i].replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts)


# -- configuration ---------------------------------------------------------------------------------

# An introduction per section, where it helps; a path that is not a section any more is a warning too.
SECTION_NOTES: dict[str, str] = {
    "providers.<name>": "One entry per upstream; the name is the first part of its models' ids.",
    "models[].prices": "USD per million tokens (and per request, where a model charges one).",
    "timeouts": "Upstream timeouts in seconds, for every provider without its own `timeouts`.",
    "providers.<name>.timeouts": "The same keys as the top-level `timeouts`, for this provider only.",
    "policies[]": "A routing policy, called as the model `policy/<name>`. See [Routing](../routing.md).",
    "policies[].targets[]": "A model (`model: provider/model`) or another policy (`policy: name` or "
    "`model: policy/name`).",
    "routing": "How policies retry, back off, cool down failing targets and explore for latency routing.",
    "guardrails": "See [Guardrails](../guardrails.md) for the categories and what each action does.",
    "alerts": "See [Alerts](../spend.md#alerts).",
}


def _comments(cls: type) -> dict[str, str]:
    """Each field's comment in the class source: the comment lines just above it, or the one at its line's end."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    out: dict[str, str] = {}
    pending: list[str] = []
    line_start = True
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    for i, tok in enumerate(tokens):
        if tok.type == tokenize.COMMENT:
            text = tok.string.lstrip("#").strip()
            if line_start:
                pending.append(text)
            else:
                # A comment at the end of `name: type = value  # ...`.
                field = _field_on_line(tokens, tok.start[0])
                if field and field not in out:
                    out[field] = text
            continue
        if tok.type in (tokenize.NL, tokenize.NEWLINE):
            line_start = True
            if tok.type == tokenize.NL and tokens[i - 1].type == tokenize.NL:
                pending = []  # a blank line ends a comment block
            continue
        if tok.type in (tokenize.INDENT, tokenize.DEDENT):
            continue
        if line_start and tok.type == tokenize.NAME:
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            if nxt is not None and nxt.string == ":" and pending:
                out[tok.string] = " ".join(pending)
            pending = []
        line_start = False
    return out


def _field_on_line(tokens: list[tokenize.TokenInfo], line: int) -> str | None:
    names = [t for t in tokens if t.start[0] == line and t.type == tokenize.NAME]
    return names[0].string if names else None


def _is_struct(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, msgspec.Struct)


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        inner = " \\| ".join(_type_name(a) for a in rest)
        return f"{inner} or null" if len(rest) < len(args) else inner
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"map of {_type_name(args[0])} to {_type_name(args[1])}"
    if _is_struct(tp):
        return "mapping"
    return {str: "string", int: "integer", float: "number", bool: "boolean"}.get(tp, getattr(tp, "__name__", str(tp)))


def _default(field: msgspec.structs.FieldInfo) -> str:
    if field.required:
        return "required"
    value = field.default_factory() if field.default is msgspec.NODEFAULT else field.default
    if _is_struct(type(value)):
        return "see below"
    if value is None:
        return "none"
    return f"`{json.dumps(msgspec.to_builtins(value))}`"


def _nested(tp: Any) -> tuple[type, str] | None:
    """The Struct a field holds, and the suffix its children's paths get (`[]`, `.<name>` or nothing)."""
    if _is_struct(tp):
        return tp, ""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        for a in args:
            found = _nested(a)
            if found:
                return found
    if origin is list and args and _is_struct(args[0]):
        return args[0], "[]"
    if origin is dict and len(args) == 2 and _is_struct(args[1]):
        return args[1], ".<name>"
    return None


def config_reference(seen_paths: set[str]) -> str:
    from router.config import Config

    sections: list[str] = []

    def walk(cls: type, path: str) -> None:
        seen_paths.add(path)
        comments = _comments(cls)
        rows, children = [], []
        for field in msgspec.structs.fields(cls):
            key = f"{path}.{field.name}" if path else field.name
            by_class = f"{cls.__name__}.{field.name}"
            seen_paths.update((key, by_class))
            note = FIELD_NOTES.get(key) or FIELD_NOTES.get(by_class) or comments.get(field.name, "")
            rows.append(f"| `{field.name}` | {_type_name(field.type)} | {_default(field)} | {_text(note)} |")
            nested = _nested(field.type)
            if nested:
                children.append((nested[0], key + nested[1]))
        title = f"`{path}`" if path else "Top level"
        intro = f"{_text(SECTION_NOTES[path])}\n\n" if path in SECTION_NOTES else ""
        table = "| key | type | default | description |\n|---|---|---|---|\n" + "\n".join(rows)
        sections.append(f"### {title}\n\n{intro}{table}\n")
        for child, child_path in children:
            walk(child, child_path)

    walk(Config, "")
    return "\n".join(sections)


# -- command line ----------------------------------------------------------------------------------


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            out += [(name, helps.get(name, ""), sub) for name, sub in action.choices.items()]
    return out


def _option_row(parser: argparse.ArgumentParser, action: argparse.Action) -> str | None:
    if isinstance(action, argparse._HelpAction | argparse._SubParsersAction) or action.help == argparse.SUPPRESS:
        return None
    if action.option_strings:
        value = f" {action.metavar or action.dest.upper()}" if action.nargs != 0 else ""
        name = ", ".join(f"`{s}{value}`" for s in action.option_strings)
    else:
        name = f"`{action.metavar or action.dest}`"
    details = []
    if action.choices:
        details.append("one of " + ", ".join(f"`{c}`" for c in action.choices))
    if isinstance(action, argparse._AppendAction) and "repeatable" not in (action.help or ""):
        details.append("repeatable")
    if action.required and action.option_strings:
        details.append("required")
    if action.default not in (None, False, argparse.SUPPRESS, []) and "default" not in (action.help or ""):
        details.append(f"default `{action.default}`")
    # The help as `--help` prints it (`%(default)s` expanded).
    text = _text(parser._get_formatter()._expand_help(action)) if action.help else ""
    extra = f" ({'; '.join(details)})" if details else ""
    return f"| {name} | {text}{extra} |"


def cli_reference() -> str:
    from router.cli import build_parser

    parser = build_parser()
    parts: list[str] = []

    def walk(p: argparse.ArgumentParser, words: list[str], summary: str) -> None:
        subs = _subcommands(p)
        if len(words) > 1:
            level = "#" * min(len(words) + 1, 5)
            usage = p.format_usage().removeprefix("usage: ").strip()
            usage = re.sub(r"\s+", " ", usage)
            body = [f"{level} `{' '.join(words)}`\n", _text(summary) + "\n" if summary else ""]
            if p.description and p.description != summary:
                body.append(_text(p.description.strip()) + "\n")
            body.append(f"```\n{usage}\n```\n")
            rows = [r for r in (_option_row(p, a) for a in p._actions) if r]
            if rows and not subs:
                body.append("| argument | meaning |\n|---|---|\n" + "\n".join(rows) + "\n")
            parts.append("\n".join(b for b in body if b))
        for name, help_text, sub in subs:
            walk(sub, [*words, name], help_text)

    walk(parser, ["router"], "")
    # The top-level commands first as a summary table, then each in detail.
    summary = "| command | what it does |\n|---|---|\n" + "\n".join(
        f"| [`router {name}`](#router-{name}) | {_text(text)} |" for name, text, _ in _subcommands(parser)
    )
    return summary + "\n\n" + "\n".join(parts)


# -- management API --------------------------------------------------------------------------------


def management_api_reference() -> str:
    import router.admin  # noqa: F401  (registers the routes)
    from router.admin.openapi import build

    document = build()
    by_tag: dict[str, list[str]] = {}
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
            ref = body.get("$ref", "").rsplit("/", 1)[-1]
            body_cell = f"[`{ref}`](#schema-{ref.lower()})" if ref else ""
            query = [p["name"] for p in op["parameters"] if p["in"] == "query"]
            if query:
                body_cell += (" " if body_cell else "") + "query: " + ", ".join(f"`{q}`" for q in query)
            summary = _text(op["summary"])
            row = f"| `{method.upper()}` | `{path}` | {summary} | {body_cell} |"
            by_tag.setdefault(op["tags"][0], []).append(row)
    out = [f"{len(document['paths'])} paths, {sum(len(v) for v in by_tag.values())} operations.\n"]
    header = "| method | path | what it does | body |\n|---|---|---|---|\n"
    out.extend(f"### {tag}\n\n{header}" + "\n".join(by_tag[tag]) for tag in sorted(by_tag))
    out.append("### Request bodies\n")
    for name, schema in sorted(document["components"]["schemas"].items()):
        fields = schema.get("properties", {})
        required = set(schema.get("required", []))
        rows = [
            f"| `{field}` | {_schema_type(spec)} | {'yes' if field in required else ''} |"
            for field, spec in fields.items()
        ]
        table = "| field | type | required |\n|---|---|---|\n" + "\n".join(rows) if rows else "(no fields)"
        out.append(f"#### {name} {{ #schema-{name.lower()} }}\n\n{table}\n")
    pretty = json.dumps(document, indent=2)
    out.append(
        '### The OpenAPI document\n\n??? note "`GET /v1/manage/openapi.json` (click to expand)"\n\n'
        + textwrap.indent(f"```json\n{pretty}\n```", "    ")
    )
    return "\n\n".join(out)


def _schema_type(spec: dict[str, Any]) -> str:
    if "$ref" in spec:
        name = spec["$ref"].rsplit("/", 1)[-1]
        return f"[`{name}`](#schema-{name.lower()})"
    if "anyOf" in spec:
        return " or ".join(_schema_type(s) for s in spec["anyOf"])
    if "enum" in spec:
        return " \\| ".join(f"`{v}`" for v in spec["enum"])
    kind = spec.get("type", "any")
    if kind == "array":
        return f"list of {_schema_type(spec.get('items', {}))}"
    if kind == "object" and "additionalProperties" in spec:
        return f"map to {_schema_type(spec['additionalProperties'])}"
    return "`" + (" or ".join(kind) if isinstance(kind, list) else kind) + "`"


# -- metrics ---------------------------------------------------------------------------------------


def metrics_reference() -> str:
    from router.metrics import FAMILIES, IN_FLIGHT, UPSTREAM_IN_FLIGHT, UPSTREAM_QUEUED

    rows = []
    for name, (raw_doc, labels, buckets) in FAMILIES.items():
        doc = _text(raw_doc)
        if buckets is None:
            exposed, kind = f"`{name}_total`", "counter"
        else:
            exposed = f"`{name}_bucket`, `{name}_sum`, `{name}_count`"
            kind = "histogram (buckets " + ", ".join(f"{b:g}" for b in buckets) + ")"
        rows.append(f"| {exposed} | {kind} | {', '.join(f'`{lb}`' for lb in labels)} | {doc} |")
    rows.append(f"| `{IN_FLIGHT}` | gauge | — | Requests being handled right now, across workers. |")
    rows.append(
        f"| `{UPSTREAM_IN_FLIGHT}` | gauge | `provider` | Requests in flight to each upstream provider, "
        "across workers. |"
    )
    rows.append(
        f"| `{UPSTREAM_QUEUED}` | gauge | `provider` | Requests waiting for a slot of a capped provider "
        "(`max_connections`). |"
    )
    return "| series | type | labels | meaning |\n|---|---|---|---|\n" + "\n".join(rows)


# -- the hook --------------------------------------------------------------------------------------

_config_paths: set[str] = set()

GENERATORS = {
    "config": lambda: config_reference(_config_paths),
    "cli": cli_reference,
    "management-api": management_api_reference,
    "metrics": metrics_reference,
}


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    # Import this checkout's package (MkDocs restores sys.path after loading a hook, so add it here).
    if SOURCE not in sys.path:
        sys.path.insert(0, SOURCE)
    generated: set[str] = set()

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        generated.add(name)
        generator = GENERATORS.get(name)
        if generator is None:
            log.warning("%s: unknown generated section %r (known: %s)", page.file.src_uri, name, ", ".join(GENERATORS))
            return match.group(0)
        return generator()

    out = MARKER.sub(replace, markdown)
    if "config" in generated:
        for stale in sorted((set(FIELD_NOTES) | set(SECTION_NOTES)) - _config_paths):
            log.warning("docs/hooks/reference.py: FIELD_NOTES describes %r, which is not a config key", stale)
    return out
