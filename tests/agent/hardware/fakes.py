"""Test doubles for the hardware package: a Raspberry Pi's /proc, /sys and /etc built in a
directory, a fake vcgencmd, and a hand-made HardwareReport to vary field by field."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.hardware.probe import MachineProbe
from agent.hardware.report import (
    CpuReport,
    DiskUsage,
    HardwareReport,
    MemoryReport,
    MiB,
    StorageKind,
    Temperature,
    Throttled,
)

GiB = 1024 * MiB

PI4_MODEL = "Raspberry Pi 4 Model B Rev 1.4"
# A 32-bit Raspberry Pi OS on a Pi 4, as /proc/cpuinfo shows it (one core of four).
ARMV7_CPUINFO = """\
processor	: 0
model name	: ARMv7 Processor rev 3 (v7l)
BogoMIPS	: 108.00
Features	: half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva idivt vfpd32 lpae
CPU implementer	: 0x41
CPU architecture: 7
CPU variant	: 0x0
CPU part	: 0xd08
CPU revision	: 3

Hardware	: BCM2711
Revision	: c03114
Serial		: 100000002a5bd4e1
Model		: Raspberry Pi 4 Model B Rev 1.4
"""
RASPBIAN_OS_RELEASE = """\
PRETTY_NAME="Raspbian GNU/Linux 12 (bookworm)"
NAME="Raspbian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=raspbian
ID_LIKE=debian
"""
# cgroup v1 table of a Pi booted with Raspberry Pi OS's default cgroup_disable=memory.
CGROUPS_WITHOUT_MEMORY = """\
#subsys_name	hierarchy	num_cgroups	enabled
cpuset	0	60	1
cpu	0	60	1
cpuacct	0	60	1
blkio	0	60	1
memory	0	60	0
devices	0	60	1
pids	0	60	1
"""
MOUNTINFO = """\
22 28 0:20 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
25 1 179:2 / / rw,noatime shared:1 - ext4 /dev/root rw
30 25 179:1 / /boot/firmware rw,relatime shared:2 - vfat /dev/mmcblk0p1 rw
"""
SECTORS_WRITTEN = 2_097_152  # 1 GiB


@dataclass(frozen=True)
class PiTree:
    proc: Path
    sys: Path
    etc: Path

    def probe(self, *, vcgencmd: str | Path | None = None, **kwargs: Any) -> MachineProbe:
        """A probe of this tree; vcgencmd defaults to one that does not exist."""
        command = vcgencmd if vcgencmd is not None else self.proc.parent / "no-vcgencmd"
        return MachineProbe(
            str(self.proc),
            str(self.sys),
            etc_root=str(self.etc),
            vcgencmd=str(command),
            **kwargs,
        )


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def build_pi(root: Path) -> PiTree:
    """A Raspberry Pi 4 at 81.2 C, under-voltage and throttled (0x50005), memory cgroup
    disabled, booted from an SD card that has had 1 GiB written to it."""
    proc, sys, etc = root / "proc", root / "sys", root / "etc"
    write(proc / "device-tree" / "model", PI4_MODEL.encode() + b"\0")
    write(proc / "cpuinfo", ARMV7_CPUINFO)
    write(proc / "cgroups", CGROUPS_WITHOUT_MEMORY)
    write(proc / "loadavg", "0.52 0.58 0.59 2/345 12345\n")
    write(proc / "self" / "mountinfo", MOUNTINFO)
    write(proc / "sys" / "kernel" / "hostname", "Pi-3\n")
    write(proc / "sys" / "kernel" / "osrelease", "6.6.51+rpt-rpi-v7l\n")
    write(proc / "sys" / "kernel" / "pid_max", "32768\n")
    write(proc / "sys" / "kernel" / "threads-max", "14000\n")
    write(proc / "sys" / "kernel" / "random" / "boot_id", "0f6bd7d5-8d22-4e7b-9c3e-5b0c8a1f2e11\n")
    # diskstats disagrees with sysfs on purpose: sysfs is read first.
    write(proc / "diskstats", " 179 0 mmcblk0 1 0 2 0 3 0 999 0 0 0 0 0 0 0 0 0 0\n")
    zone = sys / "class" / "thermal" / "thermal_zone0"
    write(zone / "type", "cpu-thermal\n")
    write(zone / "temp", "81234\n")
    write(zone / "trip_point_0_type", "critical\n")
    write(zone / "trip_point_0_temp", "90000\n")
    # A fan stage, as a Pi 5 has: not a limit.
    write(zone / "trip_point_1_type", "active\n")
    write(zone / "trip_point_1_temp", "50000\n")
    write(sys / "devices" / "platform" / "soc" / "soc:firmware" / "get_throttled", "50005\n")
    write(sys / "fs" / "cgroup" / "cgroup.controllers", "cpuset cpu io pids\n")
    write(
        sys / "block" / "mmcblk0" / "stat",
        f"   12345   678  987654  4321  5678  910 {SECTORS_WRITTEN}  8765  0  3456 13086\n",
    )
    write(sys / "block" / "mmcblk0" / "device" / "type", "SD\n")
    write(sys / "dev" / "block" / "179:2" / "uevent", "MAJOR=179\nMINOR=2\nDEVNAME=mmcblk0p2\n")
    write(etc / "os-release", RASPBIAN_OS_RELEASE)
    write(etc / "machine-id", "5b0c8a1f2e114e7b9c3e0f6bd7d58d22\n")
    return PiTree(proc=proc, sys=sys, etc=etc)


def fake_vcgencmd(directory: Path, *, output: str = "throttled=0x50000", rc: int = 0) -> Path:
    """An executable that answers ``get_throttled`` as the firmware would."""
    script = write(
        directory / "vcgencmd",
        f'#!/bin/sh\n[ "$1" = get_throttled ] || exit 2\necho "{output}"\nexit {rc}\n',
    )
    script.chmod(0o755)
    return script


def report(**changes: Any) -> HardwareReport:
    """A healthy Pi 4, to vary one field at a time."""
    base = HardwareReport(
        sampled_at=100.0,
        hostname="pi-3",
        operating_system="linux",
        architecture="arm64",
        architecture_variant=None,
        os_image="Debian GNU/Linux 12 (bookworm)",
        kernel_version="6.6.51+rpt-rpi-v8",
        boot_id="boot",
        machine_id="machine",
        boot_time=1_700_000_000.0,
        cpu=CpuReport(
            count=4,
            current_mhz=1800.0,
            max_mhz=1800.0,
            load_1m=0.5,
            load_5m=0.4,
            load_15m=0.3,
            usage_percent=12.5,
        ),
        memory=MemoryReport(
            total_bytes=4 * GiB,
            available_bytes=3 * GiB,
            used_bytes=1 * GiB,
            used_percent=25.0,
            swap_total_bytes=0,
            swap_used_bytes=0,
        ),
        root_disk=DiskUsage(path="/", total_bytes=64 * GiB, free_bytes=32 * GiB, used_percent=50),
        data_disk=DiskUsage(
            path="/var/lib/bramble", total_bytes=64 * GiB, free_bytes=32 * GiB, used_percent=50
        ),
        disk_io=(),
        interfaces=(),
        temperatures=(),
        cpu_temperature=temperature(52.0),
        process_count=300,
        pid_max=32768,
        board_model=PI4_MODEL,
        throttled=Throttled(raw=0, source="vcgencmd"),
        memory_cgroup_enabled=True,
        clock_synchronized=True,
        root_device="mmcblk0",
        root_storage=StorageKind.SDCARD,
        flash_writes=(),
    )
    return dataclasses.replace(base, **changes)


def temperature(celsius: float, *, high: float = 80.0, critical: float = 85.0) -> Temperature:
    return Temperature(
        sensor="cpu_thermal",
        label="",
        celsius=celsius,
        high_celsius=high,
        critical_celsius=critical,
        source="thermal_zone",
    )
