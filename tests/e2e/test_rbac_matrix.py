"""Every management endpoint by every role by own/other resource, with the exact status each must get.

Roles: `admin` (a user with the admin role), `write` and `read` (management keys), `analyst`, `member`
(a standard user in group G1), `group_admin` (a standard user who administers G1), `outsider` (a standard
user in no group) and `none` (a service account's key). Each case builds a fresh target as the bootstrap
admin, so destructive cases do not disturb each other.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from servers import Server, gateway_env, start_gateway

ROLES = ("admin", "write", "read", "analyst", "member", "group_admin", "outsider", "none")
_n = itertools.count()


@dataclass
class World:
    base: str
    bootstrap: str
    keys: dict[str, str]  # role → secret
    users: dict[str, str]  # role → user id (the mgmt keys belong to the admin user)
    key_ids: dict[str, str]

    def call(self, key: str, method: str, path: str, body: dict | None = None) -> httpx.Response:
        return httpx.request(
            method, f"{self.base}/v1/manage{path}", json=body, headers={"authorization": f"Bearer {key}"}, timeout=20
        )

    def admin(self, method: str, path: str, body: dict | None = None) -> dict:
        r = self.call(self.bootstrap, method, path, body)
        assert r.status_code in (200, 201), r.text
        return r.json()

    def user(self, role: str = "standard") -> dict:
        return self.admin("POST", "/user", {"email": f"u{next(_n)}@corp.test", "role": role})

    def key_of(self, owner_role: str) -> str:
        """A fresh key owned by the user (or, for `none`, the service account) behind `owner_role`."""
        kind = "service_account" if owner_role == "none" else "user"
        owner = {"type": kind, "id": self.users[owner_role]}
        return self.admin("POST", "/apikey", {"name": f"k{next(_n)}", "owner": owner})["id"]


@pytest.fixture(scope="module")
def world(mock_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("rbac")
    server = start_gateway(gateway_env(root / "router.db", mock_server.base))
    w = World(server.base, server.env["ROUTER_ADMIN_KEY"], {}, {}, {})
    role_of = {
        "admin": "admin",
        "analyst": "analyst",
        "member": "standard",
        "group_admin": "standard",
        "outsider": "standard",
    }
    for name, role in role_of.items():
        w.users[name] = w.user(role)["id"]
    w.users["write"] = w.users["read"] = w.users["admin"]
    w.admin("POST", "/access-list", {"name": "L1", "models": ["mock/gpt-4o"]})
    g1 = w.admin("POST", "/group", {"name": "G1", "access_list": "L1"})["id"]
    w.admin("POST", f"/group/{g1}/members", {"user_id": w.users["member"], "role": "member"})
    w.admin("POST", f"/group/{g1}/members", {"user_id": w.users["group_admin"], "role": "admin"})
    sa = w.users["none"] = w.admin("POST", "/service-account", {"name": "bot"})["id"]
    specs = {name: {"owner": {"type": "user", "id": w.users[name]}} for name in role_of}
    specs["write"] = {"owner": {"type": "user", "id": w.users["admin"]}, "permission": "write"}
    specs["read"] = {"owner": {"type": "user", "id": w.users["admin"]}, "permission": "read"}
    specs["none"] = {"owner": {"type": "service_account", "id": sa}}
    for name, spec in specs.items():
        created = w.admin("POST", "/apikey", {"name": f"{name}-key", **spec})
        w.keys[name], w.key_ids[name] = created["key"], created["id"]
    yield w
    server.stop()


def expect(admin: int, reader: int, member: int, group_admin: int, outsider: int) -> dict[str, int]:
    return {
        "admin": admin, "write": admin, "read": reader, "analyst": reader,
        "member": member, "group_admin": group_admin, "outsider": outsider, "none": 403,
    }  # fmt: skip


Target = Callable[[World, str], tuple[str, str, dict | None]]


def other_owner(role: str) -> str:
    """Someone else's key: the outsider's for everyone but the outsider, the member's for the outsider."""
    return "member" if role == "outsider" else "outsider"


CASES: list[tuple[str, Target, dict[str, int]]] = [
    ("list keys", lambda w, r: ("GET", "/apikey", None), expect(200, 200, 200, 200, 200)),
    ("get own key", lambda w, r: ("GET", f"/apikey/{w.key_ids[r]}", None), expect(200, 200, 200, 200, 200)),
    (
        "get other's key",
        lambda w, r: ("GET", f"/apikey/{w.key_of(other_owner(r))}", None),
        expect(200, 200, 404, 404, 404),
    ),
    (
        "label own key",
        lambda w, r: ("POST", f"/apikey/{w.key_of(r)}/labels", {"labels": {"a": "b"}}),
        expect(200, 403, 200, 200, 200),
    ),
    (
        "label other's key",
        lambda w, r: ("POST", f"/apikey/{w.key_of(other_owner(r))}/labels", {"labels": {"a": "b"}}),
        expect(200, 403, 404, 404, 404),
    ),
    (
        "limit other's key",
        lambda w, r: ("POST", f"/apikey/{w.key_of(other_owner(r))}/limit", {"monthly_limit": 5}),
        expect(200, 403, 404, 404, 404),
    ),
    (
        "expiry own key",
        lambda w, r: ("POST", f"/apikey/{w.key_of(r)}/expiry", {"expires_at": "30d"}),
        expect(200, 403, 200, 200, 200),
    ),
    # Tighten only: a limit or expiry an admin set on a user's key may be lowered by its owner, never lifted.
    (
        "lift admin's limit on own key",
        lambda w, r: (
            "POST",
            f"/apikey/{_admin_set(w, r, 'limit', {'monthly_limit': 5})}/limit",
            {"monthly_limit": None},
        ),
        expect(200, 403, 403, 403, 403),
    ),
    (
        "raise admin's limit on own key",
        lambda w, r: (
            "POST",
            f"/apikey/{_admin_set(w, r, 'limit', {'monthly_limit': 5})}/limit",
            {"monthly_limit": 50},
        ),
        expect(200, 403, 403, 403, 403),
    ),
    (
        "lower admin's limit on own key",
        lambda w, r: ("POST", f"/apikey/{_admin_set(w, r, 'limit', {'monthly_limit': 5})}/limit", {"monthly_limit": 2}),
        expect(200, 403, 200, 200, 200),
    ),
    (
        "lift admin's expiry on own key",
        lambda w, r: (
            "POST",
            f"/apikey/{_admin_set(w, r, 'expiry', {'expires_at': '30d'})}/expiry",
            {"expires_at": None},
        ),
        expect(200, 403, 403, 403, 403),
    ),
    (
        "extend admin's expiry on own key",
        lambda w, r: (
            "POST",
            f"/apikey/{_admin_set(w, r, 'expiry', {'expires_at': '30d'})}/expiry",
            {"expires_at": "60d"},
        ),
        expect(200, 403, 403, 403, 403),
    ),
    (
        "shorten admin's expiry on own key",
        lambda w, r: (
            "POST",
            f"/apikey/{_admin_set(w, r, 'expiry', {'expires_at': '30d'})}/expiry",
            {"expires_at": "7d"},
        ),
        expect(200, 403, 200, 200, 200),
    ),
    ("delete own key", lambda w, r: ("DELETE", f"/apikey/{w.key_of(r)}", None), expect(200, 403, 200, 200, 200)),
    (
        "delete other's key",
        lambda w, r: ("DELETE", f"/apikey/{w.key_of(other_owner(r))}", None),
        expect(200, 403, 404, 404, 404),
    ),
    (
        "revoke other's key",
        lambda w, r: ("POST", f"/apikey/{w.key_of(other_owner(r))}/revoke", None),
        expect(200, 403, 404, 404, 404),
    ),
    ("create own key", lambda w, r: ("POST", "/apikey", {"name": "mine"}), expect(201, 403, 201, 201, 201)),
    (
        "create key for someone else",
        lambda w, r: ("POST", "/apikey", {"name": "x", "owner": {"type": "user", "id": w.users[other_owner(r)]}}),
        expect(201, 403, 403, 403, 403),
    ),
    (
        "create management key",
        lambda w, r: ("POST", "/apikey", {"name": "x", "permission": "write"}),
        expect(201, 403, 403, 403, 403),
    ),
    (
        "attach list to a key",
        lambda w, r: ("POST", f"/apikey/{w.key_of(r)}/access-list", {"access_list": "L1"}),
        expect(200, 403, 403, 403, 403),
    ),
    ("list groups", lambda w, r: ("GET", "/group", None), expect(200, 200, 200, 200, 200)),
    ("get own group", lambda w, r: ("GET", "/group/G1", None), expect(200, 200, 200, 200, 404)),
    ("create group", lambda w, r: ("POST", "/group", {"name": f"g{next(_n)}"}), expect(201, 403, 403, 403, 403)),
    (
        "delete a group",
        lambda w, r: ("DELETE", f"/group/{w.admin('POST', '/group', {'name': f'g{next(_n)}'})['id']}", None),
        expect(200, 403, 404, 404, 404),
    ),
    (
        "add member to G1",
        lambda w, r: ("POST", "/group/G1/members", {"user_id": w.user()["id"]}),
        expect(201, 403, 403, 201, 404),
    ),
    (
        "change a G1 member's role",
        lambda w, r: _with_member(w, "PATCH", {"role": "admin"}),
        expect(200, 403, 403, 200, 404),
    ),
    ("remove a G1 member", lambda w, r: _with_member(w, "DELETE", None), expect(200, 403, 403, 200, 404)),
    ("get org", lambda w, r: ("GET", "/org", None), expect(200, 200, 200, 200, 200)),
    ("list approved models", lambda w, r: ("GET", "/models/approved", None), expect(200, 200, 200, 200, 200)),
    (
        "approve a model",
        lambda w, r: ("POST", "/models/approved", {"models": ["mock/gpt-4o", "mock/o3-mini", "mock/gpt-4o-mini"]}),
        expect(200, 403, 403, 403, 403),
    ),
    (
        "apply a preset",
        lambda w, r: ("POST", "/models/presets/zdr-only", {"mode": "add"}),
        expect(200, 403, 403, 403, 403),
    ),
    ("list access lists", lambda w, r: ("GET", "/access-list", None), expect(200, 200, 200, 200, 200)),
    (
        "create access list",
        lambda w, r: ("POST", "/access-list", {"name": f"l{next(_n)}", "models": ["mock/gpt-4o"]}),
        expect(201, 403, 403, 403, 403),
    ),
    (
        "replace access list",
        lambda w, r: ("PUT", "/access-list/L1", {"name": "L1", "models": ["mock/gpt-4o"]}),
        expect(200, 403, 403, 403, 403),
    ),
    ("list users", lambda w, r: ("GET", "/user", None), expect(200, 200, 403, 403, 403)),
    ("get myself", lambda w, r: ("GET", "/user/me", None), expect(200, 200, 200, 200, 200)),
    ("get another user", lambda w, r: ("GET", f"/user/{w.user()['id']}", None), expect(200, 200, 404, 404, 404)),
    (
        "raise my own role",
        lambda w, r: ("PATCH", f"/user/{w.users[r]}", {"role": "admin"}),
        expect(200, 403, 403, 403, 403),
    ),
    (
        "create user",
        lambda w, r: ("POST", "/user", {"email": f"n{next(_n)}@corp.test"}),
        expect(201, 403, 403, 403, 403),
    ),
    ("list service accounts", lambda w, r: ("GET", "/service-account", None), expect(200, 200, 403, 403, 403)),
    (
        "create service account",
        lambda w, r: ("POST", "/service-account", {"name": f"s{next(_n)}"}),
        expect(201, 403, 403, 403, 403),
    ),
    ("read the audit log", lambda w, r: ("GET", "/audit", None), expect(200, 200, 403, 403, 403)),
    ("read guardrail settings", lambda w, r: ("GET", "/guardrails", None), expect(200, 200, 403, 403, 403)),
    ("replace guardrail settings", lambda w, r: ("PUT", "/guardrails", {}), expect(200, 403, 403, 403, 403)),
    (
        "read own key's guardrails",
        lambda w, r: ("GET", f"/apikey/{w.key_ids[r]}/guardrails", None),
        expect(200, 200, 200, 200, 200),
    ),
    (
        "read other's key's guardrails",
        lambda w, r: ("GET", f"/apikey/{w.key_of(other_owner(r))}/guardrails", None),
        expect(200, 200, 404, 404, 404),
    ),
    (
        "tighten own key's guardrails",
        lambda w, r: ("PUT", f"/apikey/{w.key_of(r)}/guardrails", {"categories": {"pii": "block"}}),
        expect(200, 403, 403, 403, 403),
    ),
    ("read G1's guardrails", lambda w, r: ("GET", "/group/G1/guardrails", None), expect(200, 200, 200, 200, 404)),
    (
        "test a text on the organisation's guardrails",
        lambda w, r: ("POST", "/guardrails/test", {"text": "mail a@b.io"}),
        expect(200, 200, 403, 403, 403),
    ),
    (
        "test a text on own key's guardrails",
        lambda w, r: ("POST", "/guardrails/test", {"text": "mail a@b.io", "key_id": w.key_ids[r]}),
        expect(200, 200, 200, 200, 200),
    ),
    (
        "test a text on other's key's guardrails",
        lambda w, r: ("POST", "/guardrails/test", {"text": "mail a@b.io", "key_id": w.key_of(other_owner(r))}),
        expect(200, 200, 404, 404, 404),
    ),
    (
        "test a text on G1's guardrails",
        lambda w, r: ("POST", "/guardrails/test", {"text": "mail a@b.io", "group_id": "G1"}),
        expect(200, 200, 200, 200, 404),
    ),
    (
        "tighten G1's guardrails",
        lambda w, r: ("PUT", "/group/G1/guardrails", {"categories": {"names": "mask"}}),
        expect(200, 403, 403, 403, 404),
    ),
]


def _admin_set(w: World, role: str, what: str, body: dict) -> str:
    """A fresh key of `role`'s owner with a limit or expiry set by the bootstrap admin; its id."""
    key_id = w.key_of(role)
    w.admin("POST", f"/apikey/{key_id}/{what}", body)
    return key_id


def _with_member(w: World, method: str, body: dict | None) -> tuple[str, str, dict | None]:
    user = w.user()["id"]
    w.admin("POST", "/group/G1/members", {"user_id": user})
    return method, f"/group/G1/members/{user}", body


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("name", "target", "expected"), CASES, ids=[c[0] for c in CASES])
def test_matrix(world: World, role: str, name: str, target: Target, expected: dict[str, int]) -> None:
    method, path, body = target(world, role)
    response = world.call(world.keys[role], method, path, body)
    assert response.status_code == expected[role], f"{role} {method} {path}: {response.text}"
    if response.status_code >= 400:
        error = response.json()["error"]
        assert error["message"] and error["type"]


def test_standard_users_see_only_their_own_keys(world: World) -> None:
    listed = world.call(world.keys["member"], "GET", "/apikey?limit=500").json()["data"]
    assert listed and {k["owner"]["id"] for k in listed} == {world.users["member"]}
    everyone = world.call(world.keys["analyst"], "GET", "/apikey?limit=500").json()["data"]
    assert len({k["owner"]["id"] for k in everyone if k["owner"]}) > 2


def test_standard_user_key_lists_stay_inside_their_group_grant(world: World) -> None:
    world.admin("POST", "/models/approved", {"models": ["mock/gpt-4o", "mock/o3-mini", "mock/gpt-4o-mini"]})
    world.admin("POST", "/access-list", {"name": "wide", "models": ["mock/gpt-4o", "mock/o3-mini"]})
    world.admin("POST", "/access-list", {"name": "narrow", "models": ["mock/gpt-4o"]})
    refused = world.call(world.keys["member"], "POST", "/apikey", {"name": "x", "access_list": "wide"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "access_list_exceeds_grant"
    assert (
        world.call(world.keys["member"], "POST", "/apikey", {"name": "x", "access_list": "narrow"}).status_code == 201
    )
    # Not a member of a group: cannot put a key into it.
    world.admin("POST", "/group", {"name": "G9"})
    refused = world.call(world.keys["member"], "POST", "/apikey", {"name": "x", "groups": ["G9"]})
    assert refused.status_code == 403


def test_a_key_of_an_inactive_user_stops_working(world: World) -> None:
    user = world.user()["id"]
    secret = world.admin("POST", "/apikey", {"name": "soon-inactive", "owner": {"type": "user", "id": user}})["key"]
    assert world.call(secret, "GET", "/org").status_code == 200
    world.admin("PATCH", f"/user/{user}", {"status": "inactive"})
    denied = world.call(secret, "GET", "/org")
    assert denied.status_code == 401 and denied.json()["error"]["code"] == "inactive_owner"


def test_an_owner_may_loosen_only_what_they_set_themselves(world: World) -> None:
    member = world.keys["member"]
    own = world.call(member, "POST", "/apikey", {"name": "self-limited", "monthly_limit": 5, "expires_at": "7d"}).json()
    assert own["monthly_limit_set_by"] == own["expires_at_set_by"] == f"user:{world.users['member']}"
    # Their own ceilings: raise, extend, remove at will.
    for path, body in [("limit", {"monthly_limit": 50}), ("limit", {"monthly_limit": None}),
                       ("expiry", {"expires_at": "60d"}), ("expiry", {"expires_at": None})]:  # fmt: skip
        r = world.call(member, "POST", f"/apikey/{own['id']}/{path}", body)
        assert r.status_code == 200, r.text
    # An admin's limit, lowered by the owner, stays the admin's: it cannot be raised back to where it was.
    key_id = _admin_set(world, "member", "limit", {"monthly_limit": 10})
    lowered = world.call(member, "POST", f"/apikey/{key_id}/limit", {"monthly_limit": 4}).json()
    assert lowered["monthly_limit"] == 4 and lowered["monthly_limit_set_by"] == "admin"
    refused = world.call(member, "POST", f"/apikey/{key_id}/limit", {"monthly_limit": 10})
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["code"] == "limit_set_by_admin" and error["param"] == "monthly_limit"
    assert "only an admin may raise or remove it" in error["message"]
    assert world.admin("GET", f"/apikey/{key_id}")["monthly_limit"] == 4
    # The same ceiling is the owner's again once an admin clears it.
    world.admin("POST", f"/apikey/{key_id}/limit", {"monthly_limit": None})
    assert world.call(member, "POST", f"/apikey/{key_id}/limit", {"monthly_limit": 3}).status_code == 200
    assert world.call(member, "POST", f"/apikey/{key_id}/limit", {"monthly_limit": 30}).status_code == 200


def test_a_key_sees_only_the_access_lists_that_govern_it(world: World) -> None:
    world.admin("POST", "/access-list", {"name": "unrelated", "models": ["mock/gpt-4o"]})
    own_list = world.admin("POST", "/access-list", {"name": "keys-own", "models": ["mock/gpt-4o"]})
    outsider = {"type": "user", "id": world.users["outsider"]}
    attached = world.admin("POST", "/apikey", {"name": "listed", "owner": outsider, "access_list": own_list["id"]})[
        "key"
    ]

    def names(key: str) -> set[str]:
        r = world.call(key, "GET", "/access-list?limit=500")
        assert r.status_code == 200, r.text
        return {a["name"] for a in r.json()["data"]}

    # The member's key: its groups' list (G1 → L1). The outsider's: none; its other key: the key's own list.
    assert names(world.keys["member"]) == names(world.keys["group_admin"]) == {"L1"}
    assert names(world.keys["outsider"]) == set()
    assert names(attached) == {"keys-own"}
    assert {"L1", "unrelated", "keys-own"} <= names(world.keys["analyst"]) == names(world.keys["read"])
    assert world.call(world.keys["member"], "GET", "/access-list/L1").status_code == 200
    for key, ident in [(world.keys["member"], "unrelated"), (world.keys["outsider"], "L1"), (attached, "L1")]:
        hidden = world.call(key, "GET", f"/access-list/{ident}")
        assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "access_list_not_found"
