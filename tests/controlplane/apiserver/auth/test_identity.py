"""Who a request comes from: node identities and client-certificate subjects."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.apiserver.auth.identity import (
    ANONYMOUS,
    UserInfo,
    authenticated,
    node_user,
    user_from_peercert,
)


@pytest.mark.parametrize(
    ("user", "node_name", "admin", "anonymous"),
    [
        (node_user("pi-2"), "pi-2", False, False),
        (UserInfo("system:node:pi-2", ("system:nodes",)), "pi-2", False, False),
        (UserInfo("system:node:pi-2", ()), None, False, False),  # no group: not a node
        (UserInfo("pi-2", ("system:nodes",)), None, False, False),  # no prefix: not a node
        (UserInfo("system:node:", ("system:nodes",)), None, False, False),  # no name
        (UserInfo("system:node:a:b", ("system:nodes",)), "a:b", False, False),
        (UserInfo("admin", ("system:masters",)), None, True, False),
        (UserInfo("bramble:apiserver"), None, True, False),
        (ANONYMOUS, None, False, True),
        (UserInfo("x", ("system:unauthenticated",)), None, False, True),
    ],
)
def test_derived_helpers(
    user: UserInfo, node_name: str | None, admin: bool, anonymous: bool
) -> None:
    assert user.node_name == node_name
    assert user.is_node is (node_name is not None)
    assert user.is_admin is admin
    assert user.is_anonymous is anonymous


def test_authenticated_adds_the_group_once() -> None:
    assert authenticated("u", ["a", "system:authenticated", "a"]) == UserInfo(
        "u", ("a", "system:authenticated")
    )
    assert node_user("pi-1") == UserInfo(
        "system:node:pi-1", ("system:nodes", "system:authenticated")
    )


def _peercert(*rdns: tuple[str, str]) -> dict[str, Any]:
    return {
        "subject": tuple(((k, v),) for k, v in rdns),
        "issuer": ((("commonName", "bramble-ca"),),),
        "version": 3,
    }


@pytest.mark.parametrize(
    ("peercert", "user"),
    [
        (None, None),
        ({}, None),
        (_peercert(("organizationName", "system:masters")), None),  # no CN
        (_peercert(("commonName", "")), None),
        (_peercert(("commonName", "alice")), UserInfo("alice", ("system:authenticated",))),
        (
            _peercert(("organizationName", "system:nodes"), ("commonName", "system:node:pi-2")),
            node_user("pi-2"),
        ),
        (
            _peercert(
                ("organizationName", "a"),
                ("organizationName", "b"),
                ("commonName", "carol"),
                ("commonName", "ignored-second-cn"),
            ),
            UserInfo("carol", ("a", "b", "system:authenticated")),
        ),
        ({"subject": "junk"}, None),
        ({"subject": (("junk",), ((1, 2),), (("commonName", 5),))}, None),
    ],
)
def test_user_from_peercert(peercert: dict[str, Any] | None, user: UserInfo | None) -> None:
    assert user_from_peercert(peercert) == user
