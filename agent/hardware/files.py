"""Reading kernel files and running tiny commands without ever raising.

The probe runs on every kind of machine: a file may be missing (no device tree on a PC),
unreadable (a container without /sys), or hold something unexpected (a sysfs attribute
that answers EINVAL, a driver that prints "N/A"). Each helper returns None for all of
those, and logs at debug level so that ``--log-level debug`` shows why a fact is unknown.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Callable
from typing import TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Sysfs and procfs files are small; the cap keeps a wrong path (a device node, a huge
# file given as a root in a test) from reading unbounded data.
_MAX_BYTES = 1 << 20


_CHUNK = 64 * 1024


def read_bytes(path: str) -> bytes | None:
    try:
        with open(path, "rb", buffering=0) as f:
            # Chunked: read(_MAX_BYTES) would allocate the whole megabyte for every small
            # kernel file, which made up most of a report's cost.
            chunks: list[bytes] = []
            size = 0
            while size < _MAX_BYTES and (chunk := f.read(_CHUNK)):
                chunks.append(chunk)
                size += len(chunk)
            return b"".join(chunks)[:_MAX_BYTES]
    except (OSError, ValueError) as e:
        logger.debug("unreadable path=%s error=%s", path, e)
        return None


def read_text(path: str) -> str | None:
    """The file's text, stripped of whitespace and trailing NULs (device-tree strings
    end in one); None when missing, unreadable, not UTF-8, or empty."""
    data = read_bytes(path)
    if data is None:
        return None
    try:
        text = data.decode("utf-8").replace("\0", " ").strip()
    except UnicodeDecodeError:
        logger.debug("not utf-8 path=%s", path)
        return None
    return text or None


def read_int(path: str, *, base: int = 10) -> int | None:
    text = read_text(path)
    if text is None:
        return None
    try:
        return int(text, base)
    except ValueError:
        logger.debug("not an integer path=%s text=%r", path, text[:40])
        return None


def attempt(what: str, fn: Callable[[], T]) -> T | None:
    """``fn()``, or None when it fails in any way. For psutil calls, whose failures differ
    by platform (OSError, NotImplementedError, RuntimeError, AttributeError on a platform
    without the function), and none of which may stop the rest of the report."""
    try:
        return fn()
    except Exception as e:  # the boundary where "unknown" replaces every failure
        logger.debug("hardware fact unavailable what=%s error=%r", what, e)
        return None


def run_command(argv: list[str], *, timeout: float) -> str | None:
    """The command's stdout when it exists and exits 0 within ``timeout`` seconds."""
    executable = shutil.which(argv[0])
    if executable is None:
        return None
    try:
        result = subprocess.run(
            [executable, *argv[1:]],
            capture_output=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
            # A fixed, minimal environment: the output is parsed, so no translated text.
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"},
        )
    except (OSError, subprocess.SubprocessError) as e:
        logger.debug("command failed argv=%s error=%r", argv, e)
        return None
    if result.returncode != 0:
        logger.debug("command failed argv=%s rc=%d", argv, result.returncode)
        return None
    return result.stdout.decode("utf-8", errors="replace")
