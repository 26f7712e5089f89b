"""Identity facts read from files under the roots: architecture (from /proc/cpuinfo, so
a fake Pi tree is an ARM machine), OS image, kernel, hostname, boot and machine ids,
load and process counts.
"""

from __future__ import annotations

import os
import platform
import re
import shlex
import socket
import struct
from typing import Final

from agent.hardware.files import read_int, read_text

# platform.machine() (uname -m) to Kubernetes' GOARCH names.
_GOARCH: Final = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "i386": "386",
    "i686": "386",
    "x86": "386",
    "riscv64": "riscv64",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
}
_ARM_NAME = re.compile(r"ARMv(\d)|\(v(\d)l\)")


def arm_version(cpuinfo: str | None) -> int | None:
    """The ARM architecture version from /proc/cpuinfo, None for other CPUs.

    The "model name" (or older "Processor") line comes first: an ARM1176 (Pi 1, Zero)
    says "ARMv6-compatible processor rev 7 (v6l)" but "CPU architecture: 7". A 64-bit
    kernel prints no model name, only "CPU architecture: 8"."""
    architecture: int | None = None
    for line in (cpuinfo or "").splitlines():
        key, _, value = (part.strip() for part in line.partition(":"))
        if key in ("model name", "Processor"):
            match = _ARM_NAME.search(value)
            if match:
                return int(match.group(1) or match.group(2))
        elif key == "CPU architecture" and architecture is None:
            digits = re.match(r"\d+", value)
            architecture = int(digits.group()) if digits else None
    return architecture


def architecture(
    cpuinfo: str | None, *, machine: str | None = None, pointer_bits: int | None = None
) -> tuple[str, str | None]:
    """(GOARCH, variant) as Kubernetes and OCI image indexes name them: ("amd64", None),
    ("arm64", None), ("arm", "v7"), ("arm", "v6").

    What matters is the userland that runs the agent (and so the images that will run
    next to it), not the kernel: 32-bit Raspberry Pi OS boots a 64-bit kernel on a Pi 4
    (uname says aarch64), so an ARMv8 CPU under a 32-bit Python is arm/v7."""
    bits = pointer_bits if pointer_bits is not None else struct.calcsize("P") * 8
    version = arm_version(cpuinfo)
    if version is not None:
        if version >= 8 and bits == 64:
            return "arm64", None
        return "arm", f"v{min(version, 7)}"
    name = (machine if machine is not None else platform.machine()).lower()
    if name.startswith("armv"):  # armv7l, armv6l, armv8l (a 32-bit userland on ARMv8)
        digit = name[4:5]
        return "arm", f"v{min(int(digit), 7)}" if digit.isdigit() else None
    goarch = _GOARCH.get(name, name or "unknown")
    if goarch == "arm64" and bits == 32:
        return "arm", "v7"
    return goarch, None


def os_image(etc_root: str) -> str | None:
    """PRETTY_NAME from ``<etc>/os-release``, else from ``<etc>/../usr/lib/os-release``
    (os-release(5): the first is often a symlink to the second)."""
    for path in (
        os.path.join(etc_root, "os-release"),
        os.path.join(etc_root, os.pardir, "usr", "lib", "os-release"),
    ):
        text = read_text(path)
        if text is None:
            continue
        for line in text.splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "PRETTY_NAME":
                try:
                    words = shlex.split(value)  # shell quoting, as os-release(5) says
                except ValueError:
                    return None
                return " ".join(words) or None
        return None
    return None


def hostname(proc_root: str) -> str:
    return read_text(os.path.join(proc_root, "sys", "kernel", "hostname")) or (socket.gethostname())


def kernel_version(proc_root: str) -> str | None:
    return read_text(os.path.join(proc_root, "sys", "kernel", "osrelease")) or (
        platform.release() or None
    )


def boot_id(proc_root: str) -> str | None:
    return read_text(os.path.join(proc_root, "sys", "kernel", "random", "boot_id"))


def machine_id(etc_root: str) -> str | None:
    return read_text(os.path.join(etc_root, "machine-id"))


def load_and_processes(
    proc_root: str,
) -> tuple[tuple[float, float, float] | None, int | None]:
    """Load averages and the number of scheduling entities (threads, each holding a PID)
    from /proc/loadavg: "0.52 0.58 0.59 2/345 12345". Load falls back to getloadavg()."""
    fields = (read_text(os.path.join(proc_root, "loadavg")) or "").split()
    load: tuple[float, float, float] | None = None
    processes: int | None = None
    try:
        load = (float(fields[0]), float(fields[1]), float(fields[2]))
    except (IndexError, ValueError):
        try:
            load = os.getloadavg()
        except (OSError, AttributeError):  # AttributeError: no getloadavg on Windows
            load = None
    if len(fields) >= 4 and fields[3].partition("/")[2].isdigit():
        processes = int(fields[3].partition("/")[2])
    return load, processes


def pid_limit(proc_root: str) -> int | None:
    """How many PIDs can exist: min(kernel.pid_max, kernel.threads-max), as the kubelet's
    PID eviction signal computes it."""
    limits = [
        value
        for name in ("pid_max", "threads-max")
        if (value := read_int(os.path.join(proc_root, "sys", "kernel", name))) is not None
        and value > 0
    ]
    return min(limits) if limits else None
