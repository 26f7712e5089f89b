"""Access to real components: skip with a reason on a laptop without them (in CI the
suite's conftest turns that skip into a failure)."""

from __future__ import annotations

import shutil

import pytest


def require_binary(name: str, *, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (Debian package {package}; run scripts/setup)")
    return path
