"""The local socket: how the server's own components reach its apiserver.

The scheduler and the controller manager are child processes of ``bramble server`` on
the same machine. Over HTTPS each of their requests costs TLS at both ends, about 30 µs
of the apiserver's CPU for a small request (measured, docs/benchmarks.md), and the
scheduler makes two requests per pod. So the apiserver also listens on a Unix socket:
``apiserver.sock`` in the server's data directory (0600, in a 0700 directory: only the
server's own user can connect). There, and only there, each component authenticates with
a bearer token made for it at every start and written only into its kubeconfig (0600).
Over the network those tokens are unknown (401), and the socket accepts nothing else.

The kubeconfig names the socket as ``server: unix:///path/apiserver.sock``, which
bramble's ApiClient understands; kubectl and the Kubernetes clients do not, and use
admin.kubeconfig over HTTPS as before.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from controlplane.apiserver.auth import identity
from controlplane.apiserver.auth.kubeconfig import socket_kubeconfig, write_kubeconfig

SOCKET_NAME = "apiserver.sock"
# sun_path holds 108 bytes with its terminating NUL; deep data directories (a test's
# temporary directory) get a socket in the temporary directory named by a hash instead.
_MAX_SOCKET_PATH = 100


def socket_path(data_dir: Path) -> Path:
    """Where the apiserver of ``data_dir`` listens for its own components."""
    path = data_dir.absolute() / SOCKET_NAME
    if len(str(path).encode()) <= _MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"bramble-{digest}.sock"


@dataclass(frozen=True, slots=True)
class LocalUsers:
    """The components allowed on the local socket, by token."""

    tokens: Mapping[str, identity.UserInfo]

    @classmethod
    def make(cls, users: Mapping[str, identity.UserInfo]) -> tuple[LocalUsers, dict[str, str]]:
        """Fresh tokens for ``users`` (keyed by a component's name): the users, and
        each component's token."""
        tokens = {name: secrets.token_urlsafe(32) for name in users}
        return cls({tokens[name]: user for name, user in users.items()}), tokens

    def user(self, token: str) -> identity.UserInfo | None:
        found = None
        for known, user in self.tokens.items():  # every one compared: no timing hint
            if hmac.compare_digest(known.encode(), token.encode()):
                found = user
        return found


def write_local_kubeconfig(path: Path, socket: Path, *, user: str, token: str) -> None:
    """A component's kubeconfig for the local socket (blocking: writes 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_kubeconfig(path, socket_kubeconfig(socket, user=user, token=token))
