"""The hardware snapshot: ``HardwareReport`` and the values it is made of, and the
``HardwareProbe`` seam that produces one.

Every field that a machine may not offer is ``None`` when unknown: an old PC has no
under-voltage bits, a container may hide the thermal zones, a Pi Zero has no
``get_throttled`` in sysfs. Consumers (conditions, labels, the TUI) must treat ``None`` as
"cannot tell", never as zero or False.

Units: bytes, MHz, degrees Celsius, seconds; percentages are 0-100.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Final, Protocol

MiB: Final = 1024 * 1024

# Kernel names of whole physical disks (not partitions, loop, zram, dm or md devices),
# used to sum disk I/O without counting a partition and its disk twice.
_PHYSICAL_DISK = re.compile(r"(?:sd|vd|hd|xvd)[a-z]+|nvme\d+n\d+|mmcblk\d+")
# Interfaces that carry no traffic of their own: loopback, container veths and bridges,
# traffic shapers. Their bytes are already counted on the physical interface.
_VIRTUAL_INTERFACE_PREFIXES: Final = (
    "lo",
    "veth",
    "podman",
    "cni",
    "docker",
    "br-",
    "virbr",
    "ifb",
)


def is_physical_disk(name: str) -> bool:
    """Whether a kernel block device name is a whole physical disk ("sda", "mmcblk0")."""
    return _PHYSICAL_DISK.fullmatch(name) is not None


def is_physical_interface(name: str) -> bool:
    """Whether a network interface carries traffic of its own (not lo, veth*, podman*...)."""
    return not name.startswith(_VIRTUAL_INTERFACE_PREFIXES)


class StorageKind(enum.StrEnum):
    """What a block device physically is, as the ``bramble.io/storage`` label spells it."""

    SDCARD = "sdcard"
    EMMC = "emmc"
    SSD = "ssd"
    HDD = "hdd"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class CpuReport:
    count: int | None  # logical CPUs
    current_mhz: float | None
    max_mhz: float | None  # None when the kernel does not say (VMs report 0)
    load_1m: float | None
    load_5m: float | None
    load_15m: float | None
    # Busy share of all CPUs since the previous report from the same probe; None on the
    # first report, as there is no interval yet.
    usage_percent: float | None


@dataclass(frozen=True, slots=True)
class MemoryReport:
    total_bytes: int
    available_bytes: int
    used_bytes: int
    used_percent: float  # of total, counting reclaimable cache as available (as free -h)
    swap_total_bytes: int
    swap_used_bytes: int


@dataclass(frozen=True, slots=True)
class DiskUsage:
    path: str  # the path asked about (the data dir may not exist yet: its nearest parent)
    total_bytes: int
    free_bytes: int  # available to unprivileged users, as kubelet's nodefs.available
    used_percent: float

    @property
    def free_fraction(self) -> float:
        return self.free_bytes / self.total_bytes if self.total_bytes else 0.0


@dataclass(frozen=True, slots=True)
class DiskIO:
    device: str  # kernel name: "sda", "mmcblk0", "mmcblk0p2", "loop3"
    read_bytes: int
    write_bytes: int
    read_count: int
    write_count: int


@dataclass(frozen=True, slots=True)
class Address:
    family: str  # "ipv4", "ipv6" or "mac"
    address: str
    netmask: str | None


@dataclass(frozen=True, slots=True)
class NetInterface:
    name: str
    addresses: tuple[Address, ...]
    is_up: bool | None
    speed_mbps: int | None  # None when the driver does not say (Wi-Fi, virtual)
    mtu: int | None
    bytes_sent: int | None
    bytes_recv: int | None
    packets_sent: int | None
    packets_recv: int | None
    errors_in: int | None
    errors_out: int | None


@dataclass(frozen=True, slots=True)
class Temperature:
    sensor: str  # thermal zone type ("cpu-thermal") or hwmon chip name ("coretemp")
    label: str  # "" for a thermal zone; hwmon's label ("Package id 0", "Tctl")
    celsius: float
    high_celsius: float  # kernel's passive/hot trip point, else bramble's default (80)
    critical_celsius: float  # kernel's critical trip point, else bramble's default (85)
    source: str  # "thermal_zone" (sysfs) or "hwmon" (psutil)


class ThrottledBit(enum.IntEnum):
    """The Raspberry Pi firmware's ``get_throttled`` bits (low: now; +16: since boot)."""

    UNDER_VOLTAGE = 0
    ARM_FREQUENCY_CAPPED = 1
    THROTTLED = 2
    SOFT_TEMPERATURE_LIMIT = 3


_SINCE_BOOT_SHIFT: Final = 16


@dataclass(frozen=True, slots=True)
class Throttled:
    """The firmware's throttling word, e.g. 0x50005 (under-voltage and throttled now,
    and both have occurred since boot)."""

    raw: int
    source: str  # "vcgencmd" or "sysfs"

    def now(self, bit: ThrottledBit) -> bool:
        return bool(self.raw >> bit & 1)

    def since_boot(self, bit: ThrottledBit) -> bool:
        return bool(self.raw >> (bit + _SINCE_BOOT_SHIFT) & 1)

    @property
    def under_voltage_now(self) -> bool:
        return self.now(ThrottledBit.UNDER_VOLTAGE)

    @property
    def under_voltage_since_boot(self) -> bool:
        return self.since_boot(ThrottledBit.UNDER_VOLTAGE)

    @property
    def frequency_capped_now(self) -> bool:
        return self.now(ThrottledBit.ARM_FREQUENCY_CAPPED)

    @property
    def throttled_now(self) -> bool:
        return self.now(ThrottledBit.THROTTLED)

    @property
    def throttled_since_boot(self) -> bool:
        return self.since_boot(ThrottledBit.THROTTLED)

    @property
    def soft_temperature_limit_now(self) -> bool:
        return self.now(ThrottledBit.SOFT_TEMPERATURE_LIMIT)

    @property
    def soft_temperature_limit_since_boot(self) -> bool:
        return self.since_boot(ThrottledBit.SOFT_TEMPERATURE_LIMIT)

    def __str__(self) -> str:
        return f"throttled={self.raw:#x}"


@dataclass(frozen=True, slots=True)
class FlashWrites:
    """Bytes written to an SD card or eMMC since boot: the only wear signal an SD card
    gives (it has no SMART)."""

    device: str  # "mmcblk0"
    kind: StorageKind  # SDCARD, EMMC, or UNKNOWN when the kernel does not say
    written_bytes: int


@dataclass(frozen=True, slots=True)
class HardwareReport:
    """One snapshot of the machine, taken by ``HardwareProbe.report()``."""

    sampled_at: float  # the probe's monotonic clock, seconds: for rates between reports
    hostname: str
    operating_system: str  # "linux", as kubernetes.io/os
    architecture: str  # Kubernetes/GOARCH naming: "amd64", "arm64", "arm", "386"...
    architecture_variant: str | None  # "v6"/"v7" for arm, else None
    os_image: str | None  # PRETTY_NAME from os-release
    kernel_version: str | None
    boot_id: str | None  # changes at every boot
    machine_id: str | None
    boot_time: float | None  # seconds since the epoch
    cpu: CpuReport
    memory: MemoryReport | None
    root_disk: DiskUsage | None
    data_disk: DiskUsage | None
    disk_io: tuple[DiskIO, ...]
    interfaces: tuple[NetInterface, ...]
    temperatures: tuple[Temperature, ...]
    cpu_temperature: Temperature | None  # the one chosen to represent the SoC/CPU
    process_count: int | None  # kernel scheduling entities: every thread takes a PID
    pid_max: int | None  # min(kernel.pid_max, kernel.threads-max)
    # The Raspberry Pi facts (ecosystem.md section 3); None on machines without them.
    board_model: str | None
    throttled: Throttled | None
    memory_cgroup_enabled: bool | None
    clock_synchronized: bool | None
    root_device: str | None  # the whole disk holding "/": "mmcblk0", "sda", "nvme0n1"
    root_storage: StorageKind | None
    flash_writes: tuple[FlashWrites, ...]

    @property
    def root_on_sdcard(self) -> bool | None:
        """Whether "/" is on an SD card, the storage most likely to wear out first."""
        if self.root_storage in (None, StorageKind.UNKNOWN):
            return None
        return self.root_storage is StorageKind.SDCARD


class HardwareProbe(Protocol):
    """Produces a ``HardwareReport``. Blocking: the agent calls it through
    ``asyncio.to_thread``. Never raises for a fact it cannot read: that fact is None."""

    def report(self) -> HardwareReport: ...
