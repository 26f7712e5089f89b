"""Who a request comes from: ``UserInfo`` and the well-known users and groups.

Kubernetes conventions: a client certificate's CN is the user name and each O a group;
a node is user ``system:node:<name>`` in group ``system:nodes`` (both are needed, as in
Kubernetes' node authorizer); every authenticated user is also in
``system:authenticated``; a request with no credentials is ``system:anonymous`` in
``system:unauthenticated``. A token's role is expressed as a group (``ROLE_GROUPS``), so
authorization looks only at names and groups.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

GROUP_MASTERS: Final = "system:masters"
GROUP_VIEWERS: Final = "bramble:viewers"
GROUP_NODES: Final = "system:nodes"
GROUP_BOOTSTRAPPERS: Final = "system:bootstrappers"
GROUP_AUTHENTICATED: Final = "system:authenticated"
GROUP_UNAUTHENTICATED: Final = "system:unauthenticated"
USER_ANONYMOUS: Final = "system:anonymous"
# The apiserver's own identity: its client certificate towards agents and its loopback
# clients (scheduler, controllers in the same `bramble server`), like Kubernetes'
# system:apiserver. It may do everything.
USER_APISERVER: Final = "bramble:apiserver"
NODE_USER_PREFIX: Final = "system:node:"
BOOTSTRAP_USER_PREFIX: Final = "system:bootstrap:"

Role = Literal["admin", "viewer", "node", "join"]
ROLES: Final[tuple[Role, ...]] = ("admin", "viewer", "node", "join")
ROLE_GROUPS: Final[Mapping[Role, str]] = {
    "admin": GROUP_MASTERS,
    "viewer": GROUP_VIEWERS,
    "node": GROUP_NODES,
    "join": GROUP_BOOTSTRAPPERS,
}


@dataclass(frozen=True, slots=True)
class UserInfo:
    """An authenticated (or anonymous) user: a name and the groups it belongs to."""

    name: str
    groups: tuple[str, ...] = ()

    @property
    def is_node(self) -> bool:
        """A node's agent: ``system:node:<name>`` (non-empty) in ``system:nodes``."""
        return self.node_name is not None

    @property
    def node_name(self) -> str | None:
        """The node this user acts for, or None when it is not a node."""
        if GROUP_NODES not in self.groups or not self.name.startswith(NODE_USER_PREFIX):
            return None
        return self.name[len(NODE_USER_PREFIX) :] or None

    @property
    def is_admin(self) -> bool:
        return GROUP_MASTERS in self.groups or self.name == USER_APISERVER

    @property
    def is_anonymous(self) -> bool:
        return self.name == USER_ANONYMOUS or GROUP_UNAUTHENTICATED in self.groups


ANONYMOUS: Final = UserInfo(USER_ANONYMOUS, (GROUP_UNAUTHENTICATED,))


def authenticated(name: str, groups: list[str] | tuple[str, ...] = ()) -> UserInfo:
    """The user ``name`` in ``groups`` plus ``system:authenticated``, without duplicates."""
    return UserInfo(name, tuple(dict.fromkeys([*groups, GROUP_AUTHENTICATED])))


def node_user(node_name: str) -> UserInfo:
    """The identity of the agent of node ``node_name``."""
    return authenticated(NODE_USER_PREFIX + node_name, [GROUP_NODES])


def user_from_peercert(peercert: Mapping[str, Any] | None) -> UserInfo | None:
    """The user a *verified* client certificate names (``ssl.SSLObject.getpeercert()``,
    or aiohttp's ``request.transport.get_extra_info("peercert")``): CN is the name, each
    O a group. None when no certificate was sent or it has no CN, which the server
    treats as "no client certificate". With ``CERT_OPTIONAL`` the TLS layer has already
    checked the chain to the cluster CA, so this only reads the subject."""
    if not peercert:
        return None
    common_name: str | None = None
    organizations: list[str] = []
    subject = peercert.get("subject", ())
    for rdn in subject if isinstance(subject, tuple) else ():
        for pair in rdn if isinstance(rdn, tuple) else ():
            if not (isinstance(pair, tuple) and len(pair) == 2):
                continue
            key, value = pair
            if not isinstance(value, str):
                continue
            if key == "commonName" and common_name is None:
                common_name = value
            elif key == "organizationName":
                organizations.append(value)
    if not common_name:
        return None
    return authenticated(common_name, organizations)
