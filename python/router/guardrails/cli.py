"""`router guardrails test "text"`: what the configured guardrails would do to a text (for admins checking
settings and custom patterns). Prints the masked text, then one line per finding."""

from __future__ import annotations

import argparse
import json
import sys

from ..config import load_config
from .policy import Policy


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", help='the text to check ("-" reads standard input)')
    parser.add_argument("--config", help="config file (default: $ROUTER_CONFIG, else the bundled demo config)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def test_command(args: argparse.Namespace) -> int:
    text = sys.stdin.read() if args.text == "-" else args.text
    policy = Policy(load_config(args.config).guardrails)
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
