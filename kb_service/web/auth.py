"""Who may call what: API keys with roles, and the refusal to expose an open service.

Roles are agent, editor and analyst; a route declares the role it needs with
`Depends(require_role(...))` (see `deps.py` for the ready-made aliases).
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from fastapi import HTTPException, Request

from kb_service.settings import Settings
from kb_service.web.guards import UNAUTHORIZED_MESSAGE

Role = Literal["agent", "editor", "analyst"]
# Which key roles may use a route of a given role: editors and analysts are staff and may also
# search and read like an agent; nobody else crosses over.
ROUTE_ACCESS: dict[str, frozenset[str]] = {
    "agent": frozenset({"agent", "editor", "analyst"}),
    "editor": frozenset({"editor"}),
    "analyst": frozenset({"analyst"}),
}
LOOPBACK_NAMES = frozenset({"localhost"})


@dataclass(frozen=True)
class AccessPolicy:
    """API keys and their roles. No keys at all means an open, localhost-only service."""

    keys: tuple[tuple[str, frozenset[str]], ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> AccessPolicy:
        roles: dict[str, set[str]] = {}
        for role, raw in (
            ("agent", settings.agent_keys),
            ("editor", settings.editor_keys),
            ("analyst", settings.analyst_keys),
        ):
            for key in (k.strip() for k in raw.split(",")):
                if key:
                    roles.setdefault(key, set()).add(role)
        return cls(tuple((key, frozenset(r)) for key, r in roles.items()))

    @property
    def enabled(self) -> bool:
        return bool(self.keys)

    def roles_for(self, presented: str) -> frozenset[str] | None:
        """Roles of a presented key; constant-time comparison so keys cannot be guessed by timing."""
        found: frozenset[str] | None = None
        for key, roles in self.keys:
            if secrets.compare_digest(key.encode(), presented.encode()):
                found = roles
        return found


def require_role(role: Role) -> Callable[[Request], str | None]:
    """Dependency for a route of `role`: 401 without/with an unknown key, 403 with the wrong role.

    Returns the caller's role (None when no keys are configured). Report routes use
    `dependencies=[Depends(require_role("analyst"))]`.
    """
    allowed = ROUTE_ACCESS[role]

    def check(request: Request) -> str | None:
        policy: AccessPolicy = request.app.state.access
        if not policy.enabled:
            return None
        scheme, _, presented = (request.headers.get("authorization") or "").partition(" ")
        roles = (
            policy.roles_for(presented.strip()) if scheme.lower() == "bearer" and presented.strip() else None
        )
        if roles is None:
            raise HTTPException(401, UNAUTHORIZED_MESSAGE, headers={"WWW-Authenticate": "Bearer"})
        granted = roles & allowed
        if not granted:
            raise HTTPException(403, f"此密钥（{'/'.join(sorted(roles))}）无权使用该功能，需要 {role} 角色")
        return sorted(granted)[0]

    check.__name__ = f"require_{role}"
    return check


class UnsafeBindError(RuntimeError):
    """Refusal to expose an unauthenticated service beyond this machine."""


def check_bind_allowed(settings: Settings, host: str) -> None:
    """Without API keys anyone who can reach the port could read the log and reload the index,
    so an open service may only listen on the loopback interface."""
    if AccessPolicy.from_settings(settings).enabled:
        return
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return
    try:
        if ipaddress.ip_address(name).is_loopback:
            return
    except ValueError:
        pass
    raise UnsafeBindError(
        f"refusing to listen on {host!r} without API keys: anyone on the network could use the service. "
        "Either bind 127.0.0.1, or configure keys (KB_AGENT_KEYS, KB_EDITOR_KEYS, KB_ANALYST_KEYS)."
    )
