"""Crash-safe writes of files that hold secrets.

``write_private(path, data)`` writes a temporary file in the same directory, created
with its final mode so it is never readable by others even for a moment, fsyncs it,
renames it over ``path`` and fsyncs the directory: after a crash ``path`` holds either
the old content or the new, never half of either.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def write_private(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Atomically replace ``path`` with ``data``, with permission bits ``mode``."""
    tmp = path.with_name(f".{path.name}.tmp-{secrets.token_hex(4)}")
    # O_EXCL: never follow a planted symlink or reuse someone else's file.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), mode)  # the umask may have narrowed os.open's mode
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new entry in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_private_dir(directory: Path) -> None:
    """Create ``directory`` (and its parents) if missing, and make it 0700."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if directory.stat().st_mode & 0o777 != 0o700:
        directory.chmod(0o700)
