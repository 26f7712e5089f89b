"""Non-resource paths: health and version for everyone, discovery for the authenticated,
monitoring for viewers, the rest for admins."""

from __future__ import annotations

import pytest

from controlplane.apiserver.auth.authz import authorize_path, forbidden_path
from controlplane.apiserver.auth.identity import ANONYMOUS, UserInfo, authenticated, node_user

ADMIN = authenticated("admin", ["system:masters"])
APISERVER = authenticated("bramble:apiserver")
VIEWER = authenticated("vera", ["bramble:viewers"])
NOBODY = authenticated("nobody")
NODE = node_user("pi-1")

CASES: list[tuple[UserInfo, str, str, bool]] = [
    (ANONYMOUS, "GET", "/healthz", True),
    (ANONYMOUS, "GET", "/livez", True),
    (ANONYMOUS, "GET", "/readyz", True),
    (ANONYMOUS, "GET", "/version", True),
    (ANONYMOUS, "GET", "/version/", True),
    (ANONYMOUS, "HEAD", "/healthz", True),
    (ANONYMOUS, "get", "/readyz", True),
    (ANONYMOUS, "POST", "/healthz", False),
    (ANONYMOUS, "GET", "/healthz/etcd", False),
    (ANONYMOUS, "GET", "/metrics", False),
    (ANONYMOUS, "GET", "/api", False),
    (ANONYMOUS, "GET", "/apis", False),
    (ANONYMOUS, "GET", "/openapi/v2", False),
    (ANONYMOUS, "GET", "/healthz/../metrics", False),
    (NOBODY, "GET", "/api", True),
    (NOBODY, "GET", "/api/v1", True),
    (NOBODY, "GET", "/apis", True),
    (NOBODY, "GET", "/apis/apps/v1", True),
    (NOBODY, "GET", "/openapi/v3", True),
    (NOBODY, "GET", "/version", True),
    (NOBODY, "POST", "/api", False),
    (NOBODY, "GET", "/apiserver-secrets", False),  # a prefix of "/api" but not under it
    (NOBODY, "GET", "/metrics", False),
    (NOBODY, "GET", "/api/../metrics", False),
    (NOBODY, "GET", "/api/./v1", False),
    (NOBODY, "GET", "//metrics", False),
    (NOBODY, "GET", "/debug/pprof", False),
    (NODE, "GET", "/api", True),
    (NODE, "GET", "/metrics", False),
    (VIEWER, "GET", "/metrics", True),
    (VIEWER, "GET", "/healthz/etcd", True),
    (VIEWER, "GET", "/readyz/informers", True),
    (VIEWER, "POST", "/metrics", False),
    (VIEWER, "GET", "/debug/pprof", False),
    (ADMIN, "GET", "/metrics", True),
    (ADMIN, "GET", "/debug/pprof/heap", True),
    (ADMIN, "POST", "/anything", True),
    (APISERVER, "DELETE", "/whatever", True),
]


@pytest.mark.parametrize(
    ("user", "verb", "path", "allowed"),
    CASES,
    ids=[f"{u.name}-{v}-{p}" for u, v, p, _ in CASES],
)
def test_authorize_path(user: UserInfo, verb: str, path: str, allowed: bool) -> None:
    assert authorize_path(user, path, verb).allowed is allowed


@pytest.mark.parametrize(
    ("user", "verb", "path", "message"),
    [
        (
            ANONYMOUS,
            "GET",
            "/metrics",
            'forbidden: User "system:anonymous" cannot get path "/metrics": anonymous '
            "requests may only read /healthz, /livez, /readyz and /version; authenticate with "
            "a client certificate or a bearer token",
        ),
        (NOBODY, "POST", "/api", 'forbidden: User "nobody" cannot post path "/api"'),
        (NOBODY, "HEAD", "/metrics", 'forbidden: User "nobody" cannot get path "/metrics"'),
    ],
)
def test_forbidden_path_reads_like_kubernetes(
    user: UserInfo, verb: str, path: str, message: str
) -> None:
    decision = authorize_path(user, path, verb)
    assert not decision.allowed

    error = forbidden_path(user, path, verb, decision)

    assert error.message == message
    assert error.status()["code"] == 403
