"""`router guardrails test "text"`: what the guardrails in effect would do to a text (for admins checking
settings and custom patterns), the organisation's or, with `--key`, one key's. Prints the masked text, then
one line per finding."""

from __future__ import annotations

import argparse
import json
import sys

from ..config import Config, load_config
from ..store import database_url, open_store, sqlite_path
from .admin import GuardrailAdmin
from .policy import Policy
from .settings import GuardrailSettings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", help='the text to check ("-" reads standard input)')
    parser.add_argument("--config", help="config file (default: $ROUTER_CONFIG, else the bundled demo config)")
    parser.add_argument("--key", help="an API key id: use its settings (with its groups' and its own overrides)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _settings(config: Config, key_id: str | None, config_file: str | None = None) -> GuardrailSettings:
    """The settings in effect: stored through the management API if the database holds some, else the config
    file's; with a key id, that key's (its groups' and its own overrides applied)."""
    url = database_url(config.database, config_file)
    path = sqlite_path(url)  # None for a PostgreSQL server (or an in-memory database): nothing to look for
    if path is not None and not path.exists():
        if key_id is not None:
            raise SystemExit(f"router guardrails test: no database at {url}, so no key '{key_id}'")
        return config.guardrails
    store = open_store(url)
    try:
        admin = GuardrailAdmin(store, config.guardrails)
        if key_id is None:
            return admin.org()
        record = store.get_key(key_id)
        if record is None:
            raise SystemExit(f"router guardrails test: no API key with id '{key_id}'")
        return admin.effective_of(record)
    finally:
        store.close()


def test_command(args: argparse.Namespace) -> int:
    text = sys.stdin.read() if args.text == "-" else args.text
    policy = Policy(_settings(load_config(args.config), args.key, args.config))
    findings = policy.engine.scan(text, policy.categories)
    masked = policy.engine.mask(text, policy.categories)
    rows = [
        {
            "category": f.category,
            "type": f.type,
            "start": f.start,
            "end": f.end,
            "action": policy.action(f.category, f.type),
        }
        for f in findings
    ]
    if args.json:
        print(json.dumps({"masked": masked, "findings": rows, "categories": policy.categories}))
        return 0
    if not policy.categories:
        print("guardrails are disabled in this configuration")
        return 0
    print(masked)
    for r in rows:
        print(f"  {r['action']:<5} {r['category']:<9} {r['type']:<22} chars {r['start']}-{r['end']}")
    if not rows:
        print("  (nothing found)")
    return 0
