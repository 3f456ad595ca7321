"""Who may do what in the management API.

Roles come from the key's owner (a user's role) unless the key is a management key, whose `read` or
`write` permission stands in for a role, as in Requesty's management API:

    admin     everything (also: the bootstrap key from ROUTER_ADMIN_KEY, a `write` management key, the CLI)
    analyst   read everything, change nothing (also: a `read` management key)
    standard  own keys and own usage only; group admins also manage the members of their groups
    none      keys owned by a service account or by nobody: they call models, not the management API

Refusals follow one rule so that nothing leaks: a resource the actor may not even see is 404 (as if it did
not exist); a visible resource the actor may not change is 403.
"""

from __future__ import annotations

import msgspec

from ..errors import NotFound, PermissionDenied
from ..store import Store
from .keys import Principal

ADMIN, ANALYST, STANDARD, NONE = "admin", "analyst", "standard", "none"


class Actor(msgspec.Struct, frozen=True):
    id: str  # as written to the audit log: "admin", "cli", "key:<id>"
    role: str
    user_id: str | None = None
    # group id → the actor's role in it (member or admin)
    groups: dict[str, str] = {}

    @property
    def reads_all(self) -> bool:
        return self.role in (ADMIN, ANALYST)

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN


CLI_ACTOR = Actor(id="cli", role=ADMIN)


def actor_for(principal: Principal, store: Store) -> Actor:
    record = principal.record
    if record is None:
        return Actor(id="admin", role=ADMIN)
    actor_id = f"key:{record.id}"
    owner = record.owner_id if record.owner_type == "user" else None
    if record.permission == "write":
        return Actor(id=actor_id, role=ADMIN, user_id=owner)
    if record.permission == "read":
        return Actor(id=actor_id, role=ANALYST, user_id=owner)
    if record.owner_type == "user" and record.owner_id:
        user = store.get_user(record.owner_id)
        if user is not None:
            return Actor(id=actor_id, role=user.role, user_id=user.id, groups=store.memberships(user.id))
    return Actor(id=actor_id, role=NONE)


def require_admin(actor: Actor, what: str) -> None:
    if not actor.is_admin:
        raise PermissionDenied(f"Only an organisation admin may {what}.", code="insufficient_permissions")


def require_reader(actor: Actor, what: str) -> None:
    """Org-wide reads: admins and analysts."""
    if not actor.reads_all:
        raise PermissionDenied(f"Only an admin or analyst may {what}.", code="insufficient_permissions")


def require_user(actor: Actor) -> None:
    """Anything at all in the management API needs a role-bearing actor."""
    if actor.role == NONE:
        raise PermissionDenied(
            "This API key has no management role: it is not owned by a user and is not a management key.",
            code="insufficient_permissions",
        )


def not_found(kind: str, ident: str) -> NotFound:
    return NotFound(f"No {kind} with id '{ident}'.", code=f"{kind.lower().replace(' ', '_')}_not_found")
