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

import contextlib
import hashlib
import hmac
import os
import secrets
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from controlplane.apiserver.auth import identity
from controlplane.apiserver.auth.kubeconfig import socket_kubeconfig, write_kubeconfig

SOCKET_NAME = "apiserver.sock"
# sun_path holds 108 bytes with its terminating NUL; deep data directories (a test's
# temporary directory) get a socket named by a hash in a private directory instead.
_MAX_SOCKET_PATH = 100


class LocalSocketError(Exception):
    """The local socket has no safe place; the message says what to do."""


def socket_path(data_dir: Path) -> Path:
    """Where the apiserver of ``data_dir`` listens for its own components (may create
    the private directory of ``private_dir``: call it off the event loop)."""
    path = data_dir.absolute() / SOCKET_NAME
    if len(str(path).encode()) <= _MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:16]
    return private_dir() / f"{digest}.sock"


def private_dir() -> Path:
    """``<tmp>/bramble-<uid>``: a directory only this user may enter, made 0700 if it is
    not there. One that another user owns, or that others may enter, or that is a
    symlink, is refused: a socket there could be somebody else's, listening for the
    components' tokens (as tmux and ssh-agent check their directories in /tmp)."""
    uid = os.getuid()
    path = Path(tempfile.gettempdir()) / f"bramble-{uid}"
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    found = path.lstat()
    fix = f"remove {path} (or set TMPDIR to a directory of your own) and start again"
    if not stat.S_ISDIR(found.st_mode):
        raise LocalSocketError(f"{path} is not a directory; {fix}")
    if found.st_uid != uid:
        raise LocalSocketError(f"{path} belongs to user {found.st_uid}, not to you; {fix}")
    if found.st_mode & 0o077:
        mode = stat.S_IMODE(found.st_mode)
        raise LocalSocketError(f"{path} may be entered by others (mode {mode:o}); {fix}")
    return path


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
