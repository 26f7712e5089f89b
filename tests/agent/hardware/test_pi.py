"""The Raspberry Pi readers on their own: board model sources, the memory cgroup in both
cgroup versions, and the clock's two sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.hardware import pi

from .fakes import CGROUPS_WITHOUT_MEMORY, PI4_MODEL, write


def model(root: Path, cpuinfo: str | None = None) -> str | None:
    return pi.board_model(proc_root=str(root / "proc"), sys_root=str(root / "sys"), cpuinfo=cpuinfo)


def test_board_model_sources_in_order(tmp_path: Path) -> None:
    assert model(tmp_path) is None  # a PC
    assert model(tmp_path, "Hardware\t: BCM2835\nModel\t\t: Raspberry Pi 3 Model B\n") == (
        "Raspberry Pi 3 Model B"
    )
    write(tmp_path / "sys/firmware/devicetree/base/model", b"Raspberry Pi 5 Model B Rev 1.0\0")
    assert model(tmp_path, "Model : other") == "Raspberry Pi 5 Model B Rev 1.0"
    write(tmp_path / "proc/device-tree/model", PI4_MODEL.encode() + b"\0")
    assert model(tmp_path) == PI4_MODEL
    write(tmp_path / "proc/device-tree/model", b"\0")  # empty: the next source
    assert model(tmp_path) == "Raspberry Pi 5 Model B Rev 1.0"


CGROUPS_V1_ENABLED = CGROUPS_WITHOUT_MEMORY.replace("memory\t0\t60\t0", "memory\t4\t60\t1")


@pytest.mark.parametrize(
    ("controllers", "cgroups", "enabled"),
    [
        pytest.param("cpuset cpu io memory pids\n", None, True, id="v2-with-memory"),
        pytest.param("cpuset cpu io pids\n", CGROUPS_V1_ENABLED, False, id="v2-decides"),
        pytest.param("", None, False, id="v2-no-controllers"),
        pytest.param(None, CGROUPS_V1_ENABLED, True, id="v1-enabled"),
        pytest.param(None, CGROUPS_WITHOUT_MEMORY, False, id="v1-disabled-by-cmdline"),
        pytest.param(
            None, "#subsys_name\thierarchy\tnum_cgroups\tenabled\n", False, id="v1-no-row"
        ),
        pytest.param(None, "garbage\n", None, id="v1-garbage"),
        pytest.param(None, None, None, id="neither"),
    ],
)
def test_memory_cgroup(
    tmp_path: Path, controllers: str | None, cgroups: str | None, enabled: bool | None
) -> None:
    if controllers is not None:
        write(tmp_path / "sys/fs/cgroup/cgroup.controllers", controllers)
    if cgroups is not None:
        write(tmp_path / "proc/cgroups", cgroups)
    found = pi.memory_cgroup_enabled(
        proc_root=str(tmp_path / "proc"), sys_root=str(tmp_path / "sys")
    )
    assert found is enabled


def test_adjtimex_answers_on_linux() -> None:
    assert pi._adjtimex_synchronized() in (True, False)


@pytest.mark.parametrize(
    ("output", "synchronized"),
    [
        pytest.param("NTPSynchronized=yes", True, id="yes"),
        pytest.param("NTPSynchronized=no", False, id="no"),
        pytest.param("Failed to connect to bus", None, id="garbage"),
        pytest.param(None, None, id="no-timedatectl"),
    ],
)
def test_timedatectl_where_libc_has_no_adjtimex(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, output: str | None, synchronized: bool | None
) -> None:
    monkeypatch.setattr(pi, "_adjtimex_synchronized", lambda: None)
    monkeypatch.setenv("PATH", str(tmp_path))
    if output is not None:
        script = write(tmp_path / "timedatectl", f"#!/bin/sh\necho '{output}'\n")
        script.chmod(0o755)
    assert pi.clock_synchronized() is synchronized
