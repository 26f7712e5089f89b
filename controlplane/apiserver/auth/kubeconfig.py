"""Kubeconfig files for bramble clusters, as kubectl and the Kubernetes clients read them.

One cluster, one user and one context, all embedded (``certificate-authority-data``,
``client-certificate-data``/``client-key-data`` or ``token``), so the file works when
copied to another machine. The cluster and context are named "bramble"; current-context
is set. The file holds a key or a token, so ``write_kubeconfig`` writes it 0600,
atomically.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

from controlplane.apiserver.auth.atomic import write_private

CONTEXT = "bramble"


def admin_kubeconfig(
    server_url: str,
    ca_pem: bytes,
    *,
    user: str,
    client_cert_pem: bytes,
    client_key_pem: bytes,
    context: str = CONTEXT,
) -> str:
    """A kubeconfig that authenticates as ``user`` with a client certificate."""
    credentials = {
        "client-certificate-data": _b64(client_cert_pem),
        "client-key-data": _b64(client_key_pem),
    }
    return _kubeconfig(server_url, ca_pem, user, credentials, context)


def token_kubeconfig(
    server_url: str, ca_pem: bytes, *, user: str, token: str, context: str = CONTEXT
) -> str:
    """A kubeconfig that authenticates as ``user`` with a bearer token."""
    return _kubeconfig(server_url, ca_pem, user, {"token": token}, context)


def write_kubeconfig(path: Path, content: str) -> None:
    """Write a kubeconfig 0600, atomically, creating its directory if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, content.encode(), mode=0o600)


def socket_kubeconfig(socket: Path, *, user: str, token: str, context: str = CONTEXT) -> str:
    """A kubeconfig for the apiserver's local socket (auth/local.py): ``server:
    unix://...`` and a token. Only bramble's own ApiClient reads such a server."""
    return _document({"server": f"unix://{socket}"}, user, {"token": token}, context)


def _kubeconfig(
    server_url: str, ca_pem: bytes, user: str, credentials: dict[str, str], context: str
) -> str:
    if not server_url.startswith("https://"):
        raise ValueError(f"the apiserver speaks HTTPS only; got {server_url!r}")
    cluster = {"server": server_url, "certificate-authority-data": _b64(ca_pem)}
    return _document(cluster, user, credentials, context)


def _document(cluster: dict[str, str], user: str, credentials: dict[str, str], context: str) -> str:
    config: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": cluster}],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": user}}],
        "current-context": context,
        "preferences": {},
    }
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
