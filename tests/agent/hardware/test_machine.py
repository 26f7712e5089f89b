"""Architecture naming and os-release parsing, as tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.hardware.machine import architecture, os_image, pid_limit

from .fakes import ARMV7_CPUINFO, write

X86_CPUINFO = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R)\n"
ARMV6_CPUINFO = (
    "processor\t: 0\nmodel name\t: ARMv6-compatible processor rev 7 (v6l)\n"
    "CPU architecture: 7\nHardware\t: BCM2835\n"
)
OLD_ARMV6_CPUINFO = "Processor\t: ARMv6-compatible processor rev 7 (v6l)\nCPU architecture: 7\n"
ARMV8_CPUINFO = "processor\t: 0\nBogoMIPS\t: 108.00\nCPU implementer\t: 0x41\nCPU architecture: 8\n"


@pytest.mark.parametrize(
    ("cpuinfo", "machine", "bits", "expected"),
    [
        pytest.param(X86_CPUINFO, "x86_64", 64, ("amd64", None), id="pc"),
        pytest.param(X86_CPUINFO, "i686", 32, ("386", None), id="old-pc"),
        pytest.param(ARMV8_CPUINFO, "aarch64", 64, ("arm64", None), id="pi4-64-bit-os"),
        # 32-bit Raspberry Pi OS boots a 64-bit kernel on a Pi 4: the userland decides.
        pytest.param(ARMV8_CPUINFO, "aarch64", 32, ("arm", "v7"), id="pi4-32-bit-userland"),
        pytest.param(ARMV7_CPUINFO, "armv7l", 32, ("arm", "v7"), id="pi4-32-bit-kernel"),
        # An ARM1176 says "CPU architecture: 7"; its model name tells the truth.
        pytest.param(ARMV6_CPUINFO, "armv6l", 32, ("arm", "v6"), id="pi-zero"),
        pytest.param(OLD_ARMV6_CPUINFO, "armv6l", 32, ("arm", "v6"), id="pi1-old-kernel"),
        pytest.param(None, "armv7l", 32, ("arm", "v7"), id="no-cpuinfo-armv7l"),
        pytest.param(None, "armv8l", 32, ("arm", "v7"), id="no-cpuinfo-armv8l"),
        pytest.param(None, "aarch64", 64, ("arm64", None), id="no-cpuinfo-aarch64"),
        pytest.param(None, "aarch64", 32, ("arm", "v7"), id="no-cpuinfo-aarch64-32-bit"),
        pytest.param("garbage\n:::\n", "riscv64", 64, ("riscv64", None), id="riscv"),
        pytest.param("CPU architecture: ?\n", "x86_64", 64, ("amd64", None), id="bad-number"),
        pytest.param(None, "", 64, ("unknown", None), id="nothing-known"),
    ],
)
def test_architecture(
    cpuinfo: str | None, machine: str, bits: int, expected: tuple[str, str | None]
) -> None:
    assert architecture(cpuinfo, machine=machine, pointer_bits=bits) == expected


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(
            'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n', "Debian GNU/Linux 12 (bookworm)"
        ),
        pytest.param("NAME=Alpine\nPRETTY_NAME='Alpine Linux v3.21'\n", "Alpine Linux v3.21"),
        pytest.param("PRETTY_NAME=Ubuntu\\ 24.04\n", "Ubuntu 24.04", id="escaped"),
        pytest.param('PRETTY_NAME="unterminated\n', None, id="bad-quoting"),
        pytest.param('PRETTY_NAME=""\n', None, id="empty"),
        pytest.param("NAME=NixOS\n", None, id="no-pretty-name"),
        pytest.param(b"\xff\xfe\x00garbage", None, id="binary"),
    ],
)
def test_os_image(tmp_path: Path, content: str | bytes, expected: str | None) -> None:
    write(tmp_path / "etc" / "os-release", content)
    assert os_image(str(tmp_path / "etc")) == expected


def test_os_image_falls_back_to_usr_lib(tmp_path: Path) -> None:
    write(tmp_path / "usr" / "lib" / "os-release", 'PRETTY_NAME="Fedora Linux 43"\n')
    (tmp_path / "etc").mkdir()
    assert os_image(str(tmp_path / "etc")) == "Fedora Linux 43"


@pytest.mark.parametrize(
    ("pid_max", "threads_max", "expected"),
    [
        ("4194304", "61234", 61234),
        ("32768", "192730", 32768),
        ("32768", None, 32768),
        ("lots", "0", None),
    ],
)
def test_pid_limit(
    tmp_path: Path, pid_max: str, threads_max: str | None, expected: int | None
) -> None:
    write(tmp_path / "sys" / "kernel" / "pid_max", pid_max)
    if threads_max is not None:
        write(tmp_path / "sys" / "kernel" / "threads-max", threads_max)
    assert pid_limit(str(tmp_path)) == expected
