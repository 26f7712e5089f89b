"""The Raspberry Pi facts that psutil does not give (ecosystem.md section 3): board model,
the firmware's throttling word, whether the memory cgroup is enabled, and whether the
clock is synchronised. Each reader takes its roots so a test can present a Pi's files,
and answers None when the machine cannot tell.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import re
from typing import Final

from agent.hardware.files import read_bytes, read_text, run_command
from agent.hardware.report import Throttled

logger = logging.getLogger(__name__)

# vcgencmd talks to the firmware through /dev/vcio and answers in milliseconds; the
# timeout only guards against a wedged firmware mailbox.
VCGENCMD_TIMEOUT_S: Final = 2.0
_THROTTLED = re.compile(r"throttled=(0x[0-9a-fA-F]+|[0-9]+)")
_SYSFS_THROTTLED = "devices/platform/soc/soc:firmware/get_throttled"


def board_model(*, proc_root: str, sys_root: str, cpuinfo: str | None) -> str | None:
    """ "Raspberry Pi 4 Model B Rev 1.4": the device tree's model string (NUL-terminated),
    else the "Model" line Raspberry Pi kernels add to /proc/cpuinfo. None on a PC."""
    for path in (
        os.path.join(proc_root, "device-tree", "model"),
        os.path.join(sys_root, "firmware", "devicetree", "base", "model"),
    ):
        model = read_text(path)
        if model:
            return model
    for line in (cpuinfo or "").splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Model" and value.strip():
            return value.strip()
    return None


def parse_vcgencmd_throttled(output: str) -> int | None:
    """The word from ``vcgencmd get_throttled`` output ("throttled=0x50005")."""
    match = _THROTTLED.search(output)
    return int(match.group(1), 0) if match else None


def parse_sysfs_throttled(text: str) -> int | None:
    """The word from the firmware's sysfs attribute, which prints hex without "0x"."""
    try:
        return int(text.strip(), 16)
    except ValueError:
        return None


def throttled(*, vcgencmd: str, sys_root: str) -> Throttled | None:
    """The throttling word from ``vcgencmd get_throttled``, else from sysfs.

    vcgencmd comes first: the sysfs attribute reads 0 on some kernels
    (raspberrypi/linux#2367), and is missing on boards without detection (Pi Zero,
    Compute Modules). vcgencmd needs the video group; when it fails the sysfs file is
    still tried."""
    output = run_command([vcgencmd, "get_throttled"], timeout=VCGENCMD_TIMEOUT_S)
    if output is not None:
        raw = parse_vcgencmd_throttled(output)
        if raw is not None:
            return Throttled(raw=raw, source="vcgencmd")
        logger.debug("unexpected vcgencmd output=%r", output[:80])
    text = read_text(os.path.join(sys_root, _SYSFS_THROTTLED))
    raw = parse_sysfs_throttled(text) if text is not None else None
    return Throttled(raw=raw, source="sysfs") if raw is not None else None


def memory_cgroup_enabled(*, proc_root: str, sys_root: str) -> bool | None:
    """Whether the memory controller is usable, without which k3s refuses to start and
    Podman cannot apply memory limits.

    cgroup v2 (``<sys>/fs/cgroup/cgroup.controllers`` exists): "memory" is listed.
    cgroup v1: the "memory" row of /proc/cgroups has enabled = 1. Raspberry Pi OS boots
    with ``cgroup_disable=memory`` unless cmdline.txt says ``cgroup_enable=memory``."""
    # read_bytes, not read_text: an empty controller list is an answer (none enabled).
    controllers = read_bytes(os.path.join(sys_root, "fs", "cgroup", "cgroup.controllers"))
    if controllers is not None:
        return b"memory" in controllers.split()
    table = read_text(os.path.join(proc_root, "cgroups"))
    if table is None:
        return None
    for line in table.splitlines():
        fields = line.split()
        # subsys_name hierarchy num_cgroups enabled
        if len(fields) >= 4 and fields[0] == "memory":
            return fields[3] == "1"
    # A v1 table without a memory row: the kernel was built without the controller.
    return False if "#subsys_name" in table else None


# --- clock synchronisation ---------------------------------------------------------------

# systemd-timedated's NTPSynchronized is "adjtimex() reports a maximum error below 16 s",
# ignoring STA_UNSYNC (chrony may set it to keep the kernel off the RTC). The kernel keeps
# maxerror at 16 s (NTP_PHASE_LIMIT) until an NTP daemon disciplines the clock.
_MAX_ERROR_SYNCHRONIZED_US: Final = 16_000_000
TIMEDATECTL_TIMEOUT_S: Final = 2.0


class _Timex(ctypes.Structure):
    # The leading fields of struct timex; the rest of the ~200-byte struct is padding
    # that the kernel fills in. modes = 0 makes the call read-only (no privilege needed).
    _fields_ = (
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("_rest", ctypes.c_byte * 512),
    )


@functools.cache
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except (OSError, TypeError):  # TypeError: Windows cannot load "the program itself"
        return None


def _adjtimex_synchronized() -> bool | None:
    libc = _libc()
    adjtimex = getattr(libc, "adjtimex", None)  # only Linux libcs (glibc, musl) have it
    if adjtimex is None:
        return None
    timex = _Timex()
    if adjtimex(ctypes.byref(timex)) < 0:
        logger.debug("adjtimex failed errno=%d", ctypes.get_errno())
        return None
    return int(timex.maxerror) < _MAX_ERROR_SYNCHRONIZED_US


def _timedatectl_synchronized() -> bool | None:
    output = run_command(
        ["timedatectl", "show", "-p", "NTPSynchronized"], timeout=TIMEDATECTL_TIMEOUT_S
    )
    if output is None:
        return None
    value = output.strip().partition("=")[2]
    return {"yes": True, "no": False}.get(value)


def clock_synchronized() -> bool | None:
    """Whether an NTP client has synchronised the clock. A Pi has no RTC (before the Pi 5
    with a battery), so until it is, TLS certificates look "not yet valid".

    adjtimex(2) answers in microseconds with no process spawned and no D-Bus, and is
    exactly what ``timedatectl``'s NTPSynchronized reports; ``timedatectl`` (bounded by a
    2 s timeout) is the fallback only where libc has no adjtimex."""
    synchronized = _adjtimex_synchronized()
    return synchronized if synchronized is not None else _timedatectl_synchronized()
