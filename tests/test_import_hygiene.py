"""Each program loads only what it uses (DESIGN.md section 1: memory on a Pi is scarce).
Checked in fresh interpreters, as the import-linter contracts cannot see lazy imports."""

from __future__ import annotations

import subprocess
import sys

import pytest


def modules_after(code: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys; print('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(result.stdout.split())


def test_the_cli_entry_point_loads_no_component() -> None:
    loaded = modules_after("import bramble.cli")
    assert not {m for m in loaded if m.split(".")[0] in {"controlplane", "agent", "tui"}}
    assert "aiohttp" not in loaded


def test_the_sqlite_store_does_not_load_the_etcd_client() -> None:
    loaded = modules_after(
        "import controlplane.store, controlplane.store.url\n"
        "from controlplane.store.sqlite.store import SqliteStore"
    )
    assert "aiohttp" not in loaded
    assert "controlplane.store.etcd.client" not in loaded


@pytest.mark.parametrize("toolkit", ["textual", "paramiko"])
def test_the_control_plane_never_loads_the_tui_toolkit(toolkit: str) -> None:
    loaded = modules_after(
        "import bramble.server, controlplane.store.etcd.store, controlplane.store.sqlite.store"
    )
    assert toolkit not in loaded
