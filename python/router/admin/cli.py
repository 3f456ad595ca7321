"""Governance on the command line: `router keys|models|access-lists|groups|users|service-accounts|prompts|byok|
audit`.

The same operations as the management API, run against the database as the `cli` actor (an admin):
whoever can open the database file already holds every key to it. Output is JSON with `--json`,
otherwise one readable line per record.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

import msgspec

from ..config import load_config
from ..errors import GatewayError
from ..governance import specs
from ..governance.byok import ByokAdmin
from ..governance.rbac import CLI_ACTOR
from ..governance.service import Governance
from ..governance.views import access_list_view, group_view, key_view, service_account_view, user_view
from ..guardrails.stored import group_scope, key_scope
from ..prompts import library as prompts
from ..providers.byok import MASTER_KEY_ENV, PREVIOUS_MASTER_KEY_ENV, MasterKey
from ..routing import Catalog
from ..shared import redis_settings
from ..shared.signal import RedisSignal
from ..store import database_url, open_store

_json = msgspec.json.Encoder()

Command = Callable[[Governance, argparse.Namespace], Any]


def _governance(args: argparse.Namespace) -> Governance:
    config = load_config(getattr(args, "config", None))
    catalog = Catalog(config, created=0)
    url = database_url(config.database, getattr(args, "config", None))
    # With Redis, a change made here reaches every replica's workers as one made through the API does.
    settings = redis_settings(config)
    signal = RedisSignal(settings) if settings is not None else None
    return Governance(open_store(url, announce=True, signal=signal), catalog.provider_of, catalog.metadata)


def _run(command: Command) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        gov = _governance(args)
        try:
            result = command(gov, args)
        except GatewayError as exc:
            where = f" ({exc.param})" if exc.param else ""
            print(f"router: error: {exc.message}{where}", file=sys.stderr)
            return 1
        finally:
            gov.store.close()
        if result is not None:
            if args.json:
                print(_json.encode(result).decode())
            else:
                _print(result)
        return 0

    return run


def _print(result: Any) -> None:
    rows = result if isinstance(result, list) else [result]
    for row in rows:
        if isinstance(row, dict):
            print("  ".join(f"{k}={_short(v)}" for k, v in row.items() if v not in (None, [], {}, "")))
        else:
            print(row)


def _short(value: Any) -> str:
    return value if isinstance(value, str) else _json.encode(value).decode()


def _labels(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise GatewayError(f"--label expects name=value, got '{pair}'.", status=400)
        out[name] = value
    return out


def _owner(value: str | None) -> specs.Owner | None:
    if value is None:
        return None
    kind, sep, ident = value.partition(":")
    kind = {"sa": "service_account", "service-account": "service_account"}.get(kind, kind)
    if not sep or kind not in ("user", "service_account"):
        raise GatewayError("--owner expects user:<id or email> or service_account:<id or name>.", status=400)
    return specs.Owner(kind, ident)


# -- keys ------------------------------------------------------------------------------------------------------


def keys_create(gov: Governance, a: argparse.Namespace) -> Any:
    spec = specs.KeySpec(
        name=a.name,
        owner=_owner(a.owner),
        groups=a.group,
        access_list=a.access_list,
        labels=_labels(a.label),
        monthly_limit=a.limit,
        expires_at=a.expires,
        permission=a.permission,
    )
    record, secret = gov.create_key(CLI_ACTOR, spec)
    if a.json:
        return {**key_view(record, gov.clock()), "key": secret}
    print(f"created key {record.id} ({record.name})")
    print(f"key: {secret}")
    print("Store it now: it is shown only once.")
    return None


def keys_list(gov: Governance, a: argparse.Namespace) -> Any:
    now = gov.clock()
    records = gov.list_keys(CLI_ACTOR, -1, 0)
    if a.json:
        return [{**key_view(r, now), "active": r.status(now) == "active"} for r in records]
    print(f"{'ID':<22} {'NAME':<24} {'PREFIX':<14} {'STATUS':<8} {'EXPIRES':<20} CREATED")
    for r in records:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r.created_at))
        expires = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r.expires_at)) if r.expires_at else "-"
        print(f"{r.id:<22} {r.name[:24]:<24} {r.prefix + '…':<14} {r.status(now):<8} {expires:<20} {created}")
    return None


def keys_revoke(gov: Governance, a: argparse.Namespace) -> Any:
    record = gov.revoke_key(CLI_ACTOR, a.id)
    print(f"revoked key {record.id} ({record.name})")
    return None


def keys_delete(gov: Governance, a: argparse.Namespace) -> Any:
    record = gov.delete_key(CLI_ACTOR, a.id)
    print(f"deleted key {record.id} ({record.name})")
    return None


def keys_expiry(gov: Governance, a: argparse.Namespace) -> Any:
    return key_view(gov.set_key_expiry(CLI_ACTOR, a.id, None if a.expires == "never" else a.expires), gov.clock())


# -- models ----------------------------------------------------------------------------------------------------


def models_list(gov: Governance, a: argparse.Namespace) -> Any:
    configured, approved = gov.approved(CLI_ACTOR)
    ids = set(approved)
    return [
        {"id": m, "provider": p, "region": gov.metadata[m][0], "zdr": gov.metadata[m][1],
         "approved": (m in ids) if configured else "approval not configured"}
        for m, p in sorted(gov.catalog.items())
    ]  # fmt: skip


def models_approve(gov: Governance, a: argparse.Namespace) -> Any:
    return {"approved": gov.approve(CLI_ACTOR, a.models)}


def models_remove(gov: Governance, a: argparse.Namespace) -> Any:
    return {"approved": gov.unapprove(CLI_ACTOR, a.models)}


def models_approval(gov: Governance, a: argparse.Namespace) -> Any:
    configured, approved = gov.set_approval(CLI_ACTOR, a.state == "on")
    return {"approval_configured": configured, "approved": approved}


def models_preset(gov: Governance, a: argparse.Namespace) -> Any:
    return {"approved": gov.apply_preset(CLI_ACTOR, a.preset, replace=a.replace)}


# -- access lists ----------------------------------------------------------------------------------------------


def _list_spec(a: argparse.Namespace) -> specs.AccessListSpec:
    return specs.AccessListSpec(
        name=a.name,
        description=a.description,
        models=a.model,
        providers=a.provider,
        patterns=a.pattern,
        deny=a.deny,
        mcp=a.mcp,
    )


def lists_create(gov: Governance, a: argparse.Namespace) -> Any:
    return access_list_view(gov.create_access_list(CLI_ACTOR, _list_spec(a)))


def lists_update(gov: Governance, a: argparse.Namespace) -> Any:
    return access_list_view(gov.update_access_list(CLI_ACTOR, a.id, _list_spec(a)))


def lists_list(gov: Governance, a: argparse.Namespace) -> Any:
    return [access_list_view(r) for r in gov.list_access_lists(CLI_ACTOR, -1, 0)]


def lists_show(gov: Governance, a: argparse.Namespace) -> Any:
    return access_list_view(gov.get_access_list(CLI_ACTOR, a.id))


def lists_delete(gov: Governance, a: argparse.Namespace) -> Any:
    return {"deleted": gov.delete_access_list(CLI_ACTOR, a.id).id}


def lists_attach(gov: Governance, a: argparse.Namespace) -> Any:
    targets = specs.Attachment(key_ids=a.key, group_ids=a.group)
    return {"detached" if a.detach else "attached": gov.attach(CLI_ACTOR, a.id, targets, detach=a.detach)}


# -- groups ----------------------------------------------------------------------------------------------------


def groups_create(gov: Governance, a: argparse.Namespace) -> Any:
    spec = specs.GroupSpec(a.name, a.description, a.access_list, a.budget)
    return group_view(gov.create_group(CLI_ACTOR, spec))


def groups_list(gov: Governance, a: argparse.Namespace) -> Any:
    return [group_view(g) for g in gov.list_groups(CLI_ACTOR, -1, 0)]


def groups_show(gov: Governance, a: argparse.Namespace) -> Any:
    return group_view(gov.get_group(CLI_ACTOR, a.id))


def groups_delete(gov: Governance, a: argparse.Namespace) -> Any:
    return {"deleted": gov.delete_group(CLI_ACTOR, a.id).id}


def groups_set_list(gov: Governance, a: argparse.Namespace) -> Any:
    access_list = None if a.access_list == "none" else a.access_list
    return group_view(gov.update_group(CLI_ACTOR, a.id, specs.GroupUpdate(access_list=access_list)))


def groups_add_member(gov: Governance, a: argparse.Namespace) -> Any:
    spec = specs.MemberSpec(a.user, a.role)
    return group_view(gov.set_member(CLI_ACTOR, a.id, spec, must_exist=False))


def groups_remove_member(gov: Governance, a: argparse.Namespace) -> Any:
    return group_view(gov.remove_member(CLI_ACTOR, a.id, a.user))


# -- users, service accounts, audit ----------------------------------------------------------------------------


def users_create(gov: Governance, a: argparse.Namespace) -> Any:
    return user_view(gov.create_user(CLI_ACTOR, specs.UserSpec(a.email, a.name, a.role, a.limit)))


def users_list(gov: Governance, a: argparse.Namespace) -> Any:
    return [user_view(u) for u in gov.list_users(CLI_ACTOR, -1, 0)]


def users_update(gov: Governance, a: argparse.Namespace) -> Any:
    return user_view(gov.update_user(CLI_ACTOR, a.id, specs.UserUpdate(role=a.role, status=a.status)))


def accounts_create(gov: Governance, a: argparse.Namespace) -> Any:
    return service_account_view(gov.create_service_account(CLI_ACTOR, specs.ServiceAccountSpec(a.name, a.description)))


def accounts_list(gov: Governance, a: argparse.Namespace) -> Any:
    return [service_account_view(s) for s in gov.list_service_accounts(CLI_ACTOR, -1, 0)]


def accounts_delete(gov: Governance, a: argparse.Namespace) -> Any:
    return {"deleted": gov.delete_service_account(CLI_ACTOR, a.id).id}


def audit(gov: Governance, a: argparse.Namespace) -> Any:
    events = gov.audit_log(CLI_ACTOR, actor=a.actor, target=a.target, action=a.action, limit=a.limit)
    return [
        {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(e.ts)), **msgspec.structs.asdict(e)} for e in events
    ]


# -- parser ------------------------------------------------------------------------------------------------------


# -- prompts -----------------------------------------------------------------------------------------------------


def _prompts(gov: Governance) -> prompts.PromptAdmin:
    return prompts.PromptAdmin(gov.store, gov.clock)


def _text(a: argparse.Namespace) -> str:
    """--text, or --file (`-` reads standard input)."""
    if a.file == "-":
        return sys.stdin.read()
    if a.file is not None:
        with open(a.file, encoding="utf-8") as f:
            return f.read()
    if a.text is None:
        raise GatewayError("Give the prompt's text with --text or --file.", status=400)
    return a.text


def prompts_create(gov: Governance, a: argparse.Namespace) -> Any:
    spec = prompts.PromptSpec(a.name, _text(a), a.kind, a.description, a.tag)
    return _prompts(gov).create(CLI_ACTOR, spec)


def prompts_list(gov: Governance, a: argparse.Namespace) -> Any:
    return [prompts.prompt_view(p) for p in _prompts(gov).list(CLI_ACTOR, -1, 0, a.tag)]


def prompts_show(gov: Governance, a: argparse.Namespace) -> Any:
    lib = _prompts(gov)
    return lib.version(CLI_ACTOR, a.name, a.version) if a.version else lib.get(CLI_ACTOR, a.name)


def prompts_edit(gov: Governance, a: argparse.Namespace) -> Any:
    return _prompts(gov).edit(CLI_ACTOR, a.name, prompts.PromptEdit(_text(a), a.note))


def prompts_versions(gov: Governance, a: argparse.Namespace) -> Any:
    return _prompts(gov).versions(CLI_ACTOR, a.name)


def prompts_diff(gov: Governance, a: argparse.Namespace) -> Any:
    result = _prompts(gov).diff(CLI_ACTOR, a.name, a.older, a.newer)
    if a.json:
        return result
    sys.stdout.write(result["diff"])
    return None


def prompts_rollback(gov: Governance, a: argparse.Namespace) -> Any:
    return _prompts(gov).rollback(CLI_ACTOR, a.name, a.version)


def prompts_duplicate(gov: Governance, a: argparse.Namespace) -> Any:
    return _prompts(gov).duplicate(CLI_ACTOR, a.name, a.new_name)


def prompts_delete(gov: Governance, a: argparse.Namespace) -> Any:
    return _prompts(gov).delete(CLI_ACTOR, a.name)


def _prompt_scope(gov: Governance, a: argparse.Namespace) -> str:
    if (a.key is None) == (a.group is None):
        raise GatewayError("Give exactly one of --key or --group.", status=400)
    if a.key is not None:
        return key_scope(gov.get_key(CLI_ACTOR, a.key).id)
    return group_scope(gov.get_group(CLI_ACTOR, a.group).id)


def prompts_attach(gov: Governance, a: argparse.Namespace) -> Any:
    return _prompts(gov).attach(CLI_ACTOR, _prompt_scope(gov, a), prompts.Attach(a.prompt, a.mode))


def prompts_detach(gov: Governance, a: argparse.Namespace) -> Any:
    return _prompts(gov).detach(CLI_ACTOR, _prompt_scope(gov, a), a.kind)


def byok_rotate(gov: Governance, args: argparse.Namespace) -> Any:
    """Re-seal every stored provider key under ROUTER_MASTER_KEY, opening old rows with ROUTER_MASTER_KEY_PREVIOUS."""
    current = MasterKey.from_env(name=MASTER_KEY_ENV)
    admin = ByokAdmin(gov.store, current, frozenset(gov.catalog.values()))
    return admin.rotate(CLI_ACTOR, MasterKey.from_env(name=PREVIOUS_MASTER_KEY_ENV))


def _command(sub: Any, name: str, help: str, command: Command) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help)
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--config", help="config file, for the catalog (default: $ROUTER_CONFIG or the demo config)")
    parser.set_defaults(func=_run(command))
    return parser


def _group(sub: Any, name: str, help: str) -> Any:
    return sub.add_parser(name, help=help).add_subparsers(dest="action", required=True)


def add_commands(sub: Any) -> None:
    keys = _group(sub, "keys", "create, list, revoke and delete API keys")
    p = _command(keys, "create", "mint a key (printed once)", keys_create)
    p.add_argument("--name", required=True)
    p.add_argument("--owner", help="user:<id or email> or service_account:<id or name>")
    p.add_argument("--group", action="append", default=[], help="a group the key belongs to (repeatable)")
    p.add_argument("--access-list", help="an access list (id or name) that overrides the groups' lists")
    p.add_argument("--expires", help="a duration (90d, 12h) or an ISO time")
    p.add_argument("--label", action="append", default=[], help="name=value (repeatable)")
    p.add_argument("--limit", type=float, help="monthly spend limit in USD")
    p.add_argument("--permission", choices=["read", "write"], help="make it a management key")
    _command(keys, "list", "list keys (never their secrets)", keys_list)
    _command(keys, "revoke", "revoke a key; every worker refuses it on the next request", keys_revoke).add_argument(
        "id"
    )
    _command(keys, "delete", "delete a key", keys_delete).add_argument("id")
    p = _command(keys, "expiry", "set a key's expiry (duration, ISO time, or 'never')", keys_expiry)
    p.add_argument("id")
    p.add_argument("expires")

    models = _group(sub, "models", "the approved models: list, approve, remove, apply a preset, switch approval")
    _command(models, "list", "the catalog with each model's approval", models_list)
    _command(models, "approve", "approve models (switches approval on)", models_approve).add_argument(
        "models", nargs="+"
    )
    _command(models, "remove", "remove models from the approved list", models_remove).add_argument("models", nargs="+")
    p = _command(models, "preset", "approve a preset: eu-only, eu-zdr, us-only, zdr-only", models_preset)
    p.add_argument("preset")
    p.add_argument("--replace", action="store_true", help="replace the approved list instead of adding to it")
    p = _command(
        models, "approval", "switch approval on (only approved models) or off (the whole catalog)", models_approval
    )
    p.add_argument("state", choices=("on", "off"))

    lists = _group(sub, "access-lists", "named model access lists for groups and keys")
    for name, command, help in (
        ("create", lists_create, "create a list"),
        ("update", lists_update, "replace a list's rules"),
    ):
        p = _command(lists, name, help, command)
        if name == "update":
            p.add_argument("id")
            p.add_argument("--name", required=True)
        else:
            p.add_argument("name")
        p.add_argument("--description")
        p.add_argument("--model", action="append", default=[], help="a model id (repeatable)")
        p.add_argument("--provider", action="append", default=[], help="a whole provider (repeatable)")
        p.add_argument("--pattern", action="append", default=[], help="a pattern such as 'openai/*' (repeatable)")
        p.add_argument("--mcp", action="append", default=[], help="mcp:<server>, mcp:<server>/<tool> or mcp:*")
        p.add_argument("--deny", action="append", default=[], help="a model, provider or pattern to deny (repeatable)")
    _command(lists, "list", "list access lists", lists_list)
    _command(lists, "show", "show one list", lists_show).add_argument("id")
    _command(lists, "delete", "delete a list that is attached to nothing", lists_delete).add_argument("id")
    for name, detach in (("attach", False), ("detach", True)):
        p = _command(lists, name, f"{name} a list to many keys and groups at once", lists_attach)
        p.add_argument("id")
        p.add_argument("--key", action="append", default=[])
        p.add_argument("--group", action="append", default=[])
        p.set_defaults(detach=detach)

    groups = _group(sub, "groups", "groups of users, with an access list and a budget")
    p = _command(groups, "create", "create a group", groups_create)
    p.add_argument("name")
    p.add_argument("--description")
    p.add_argument("--access-list")
    p.add_argument("--budget", type=float, help="monthly budget in USD")
    _command(groups, "list", "list groups", groups_list)
    _command(groups, "show", "show a group and its members", groups_show).add_argument("id")
    _command(groups, "delete", "delete a group", groups_delete).add_argument("id")
    p = _command(groups, "set-access-list", "attach an access list to the group ('none' detaches)", groups_set_list)
    p.add_argument("id")
    p.add_argument("access_list")
    p = _command(groups, "add-member", "add a user to the group", groups_add_member)
    p.add_argument("id")
    p.add_argument("user", help="user id or email")
    p.add_argument("--role", default="member", choices=["member", "admin"])
    p = _command(groups, "remove-member", "remove a user from the group", groups_remove_member)
    p.add_argument("id")
    p.add_argument("user")

    users = _group(sub, "users", "organisation users")
    p = _command(users, "create", "create a user", users_create)
    p.add_argument("email")
    p.add_argument("--name")
    p.add_argument("--role", default="standard", choices=["admin", "standard", "analyst"])
    p.add_argument("--limit", type=float, help="monthly spend limit in USD")
    _command(users, "list", "list users", users_list)
    p = _command(users, "update", "change a user's role or status", users_update)
    p.add_argument("id")
    p.add_argument("--role", choices=["admin", "standard", "analyst"])
    p.add_argument("--status", choices=["active", "inactive"])

    accounts = _group(sub, "service-accounts", "non-human owners of keys")
    p = _command(accounts, "create", "create a service account", accounts_create)
    p.add_argument("name")
    p.add_argument("--description")
    _command(accounts, "list", "list service accounts", accounts_list)
    _command(accounts, "delete", "delete a service account with no active keys", accounts_delete).add_argument("id")

    lib = _group(sub, "prompts", "the prompt library: versioned system and vibe prompts for keys and groups")
    for name, command, help in (
        ("create", prompts_create, "create a prompt (its text is version 1)"),
        ("edit", prompts_edit, "a new version of a prompt's text"),
    ):
        p = _command(lib, name, help, command)
        p.add_argument("name")
        p.add_argument("--text", help="the prompt's text")
        p.add_argument("--file", help="read the text from a file ('-' for standard input)")
        if name == "create":
            p.add_argument("--kind", default="system", choices=["system", "vibe"])
            p.add_argument("--description")
            p.add_argument("--tag", action="append", default=[], help="a tag (repeatable)")
        else:
            p.add_argument("--note", help="what changed")
    _command(lib, "list", "list prompts", prompts_list).add_argument("--tag")
    p = _command(lib, "show", "a prompt's latest text, or one version's", prompts_show)
    p.add_argument("name")
    p.add_argument("--version", type=int)
    _command(lib, "versions", "a prompt's versions", prompts_versions).add_argument("name")
    p = _command(lib, "diff", "a unified diff between two versions", prompts_diff)
    p.add_argument("name")
    p.add_argument("older", type=int)
    p.add_argument("newer", type=int)
    p = _command(lib, "rollback", "a new version equal to an older one", prompts_rollback)
    p.add_argument("name")
    p.add_argument("version", type=int)
    p = _command(lib, "duplicate", "copy a prompt under a new name", prompts_duplicate)
    p.add_argument("name")
    p.add_argument("new_name")
    _command(lib, "delete", "delete a prompt that is attached to nothing", prompts_delete).add_argument("name")
    p = _command(lib, "attach", "attach a prompt ('name' or 'name@3') to a key or a group", prompts_attach)
    p.add_argument("prompt")
    p.add_argument("--key")
    p.add_argument("--group")
    p.add_argument("--mode", default="prepend", choices=["prepend", "append", "replace"])
    p = _command(lib, "detach", "detach a key's or group's system or vibe prompt", prompts_detach)
    p.add_argument("kind", choices=["system", "vibe"])
    p.add_argument("--key")
    p.add_argument("--group")

    byok = _group(sub, "byok", "the organisation's own provider keys (managed at /v1/manage/byok/{provider})")
    _command(
        byok,
        "rotate",
        f"re-seal every provider key under {MASTER_KEY_ENV} (the old master key in {PREVIOUS_MASTER_KEY_ENV})",
        byok_rotate,
    )

    p = _command(sub, "audit", "read the audit log", audit)
    p.add_argument("--actor")
    p.add_argument("--target")
    p.add_argument("--action", help="an action, or a family such as 'key.*'")
    p.add_argument("--limit", type=int, default=100)
