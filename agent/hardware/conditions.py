"""Node conditions derived from a ``HardwareReport``: a pure function of the report and
the thresholds, so the whole table is unit-testable.

Every condition reads "True" when something is wrong, as Kubernetes' pressure conditions
do, and "Unknown" when the machine cannot tell. The kubelet's types and reasons are kept
as they are, since people and tools know them; bramble adds its own types:

=====================  ====================================================================
type                   reasons (True / False / Unknown)
=====================  ====================================================================
MemoryPressure         KubeletHasInsufficientMemory / KubeletHasSufficientMemory /
                       MemoryUnknown
DiskPressure           KubeletHasDiskPressure / KubeletHasNoDiskPressure / DiskUnknown
PIDPressure            KubeletHasInsufficientPID / KubeletHasSufficientPID / PIDUnknown
ThermalThrottling      ThrottledNow, SoftTemperatureLimit, TemperatureAboveLimit /
                       TemperatureNormal, ThrottledSinceBoot / NoThermalData
UnderVoltage           UnderVoltageNow, UnderVoltageSinceBoot / VoltageNormal /
                       NoVoltageSensor
MemoryCgroupDisabled   MemoryControllerMissing / MemoryControllerEnabled / CgroupsUnreadable
ClockUnsynchronized    ClockNotSynchronized / ClockSynchronized / ClockStateUnknown
=====================  ====================================================================

UnderVoltage is True while the firmware's "under-voltage has occurred since boot" bit is
set, not only during a dip: dips come with load spikes and are over before anyone looks,
yet each one risks the SD card, so the warning stays until the supply is fixed and the
board rebooted. Throttling only slows pods down, so ThermalThrottling is True only while
it happens; an earlier episode shows as reason ThrottledSinceBoot with status False.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from agent.hardware.report import DiskUsage, HardwareReport, MiB

ConditionStatus = Literal["True", "False", "Unknown"]

MEMORY_PRESSURE: Final = "MemoryPressure"
DISK_PRESSURE: Final = "DiskPressure"
PID_PRESSURE: Final = "PIDPressure"
THERMAL_THROTTLING: Final = "ThermalThrottling"
UNDER_VOLTAGE: Final = "UnderVoltage"
MEMORY_CGROUP_DISABLED: Final = "MemoryCgroupDisabled"
CLOCK_UNSYNCHRONIZED: Final = "ClockUnsynchronized"

# The kubelet's default hard eviction thresholds (memory.available<100Mi,
# nodefs.available<10%); PIDs have no default there, 90% leaves room to log in and fix it.
DEFAULT_MEMORY_AVAILABLE_BYTES: Final = 100 * MiB
DEFAULT_DISK_FREE_FRACTION: Final = 0.10
DEFAULT_PID_FRACTION: Final = 0.9


@dataclass(frozen=True, slots=True)
class Condition:
    """A Node condition without its timestamps (the status writer adds those)."""

    type: str
    status: ConditionStatus
    reason: str
    message: str


def node_conditions(
    report: HardwareReport,
    *,
    memory_pressure_available_bytes: int = DEFAULT_MEMORY_AVAILABLE_BYTES,
    disk_pressure_free_fraction: float = DEFAULT_DISK_FREE_FRACTION,
    pid_pressure_fraction: float = DEFAULT_PID_FRACTION,
) -> list[Condition]:
    """The hardware conditions of the node, in a fixed order (Ready is the agent's)."""
    return [
        _memory(report, memory_pressure_available_bytes),
        _disk(report, disk_pressure_free_fraction),
        _pids(report, pid_pressure_fraction),
        _thermal(report),
        _voltage(report),
        _memory_cgroup(report),
        _clock(report),
    ]


def _memory(report: HardwareReport, threshold: int) -> Condition:
    memory = report.memory
    if memory is None:
        return Condition(
            MEMORY_PRESSURE, "Unknown", "MemoryUnknown", "bramble could not read memory use."
        )
    if memory.available_bytes < threshold:
        return Condition(
            MEMORY_PRESSURE,
            "True",
            "KubeletHasInsufficientMemory",
            f"Only {size(memory.available_bytes)} of memory is available (the limit is "
            f"{size(threshold)}): the kernel may kill containers to free memory. Stop or "
            "move a workload, or lower the memory limits of its pods.",
        )
    return Condition(
        MEMORY_PRESSURE,
        "False",
        "KubeletHasSufficientMemory",
        f"{size(memory.available_bytes)} of {size(memory.total_bytes)} of memory is available.",
    )


def _disk(report: HardwareReport, threshold: float) -> Condition:
    disks: list[tuple[str, DiskUsage]] = []
    if report.data_disk is not None:
        disks.append((f"the filesystem holding {report.data_disk.path}", report.data_disk))
    if report.root_disk is not None and report.root_disk != report.data_disk:
        disks.append(("the root filesystem", report.root_disk))
    if not disks:
        return Condition(
            DISK_PRESSURE, "Unknown", "DiskUnknown", "bramble could not read disk usage."
        )
    full = [(name, d) for name, d in disks if d.free_fraction < threshold]
    if full:
        name, d = full[0]
        return Condition(
            DISK_PRESSURE,
            "True",
            "KubeletHasDiskPressure",
            f"Only {size(d.free_bytes)} ({d.free_fraction:.0%}) of {name} is free (the "
            f"limit is {threshold:.0%}): images and logs will soon not fit. Remove unused "
            "images (podman image prune -a) and old logs, or use a bigger disk.",
        )
    name, d = disks[0]
    return Condition(
        DISK_PRESSURE,
        "False",
        "KubeletHasNoDiskPressure",
        f"{size(d.free_bytes)} ({d.free_fraction:.0%}) of {name} is free.",
    )


def _pids(report: HardwareReport, threshold: float) -> Condition:
    used, limit = report.process_count, report.pid_max
    if used is None or limit is None:
        return Condition(
            PID_PRESSURE, "Unknown", "PIDUnknown", "bramble could not count processes."
        )
    if used >= threshold * limit:
        return Condition(
            PID_PRESSURE,
            "True",
            "KubeletHasInsufficientPID",
            f"{used} of {limit} process IDs are in use (the limit is {threshold:.0%}): new "
            "processes and containers will fail to start. Look for a workload that keeps "
            "creating processes or threads.",
        )
    return Condition(
        PID_PRESSURE,
        "False",
        "KubeletHasSufficientPID",
        f"{used} of {limit} process IDs are in use.",
    )


_COOLING: Final = "Give the board a heatsink or a fan and some room to breathe."


def _thermal(report: HardwareReport) -> Condition:
    t, temp = report.throttled, report.cpu_temperature
    reading = f"{temp.celsius:.1f} °C" if temp is not None else None
    if t is not None and (t.throttled_now or t.soft_temperature_limit_now):
        detail = f"{t}, {reading}" if reading else str(t)
        if t.throttled_now:
            reason, what = "ThrottledNow", f"The board is throttling its CPU right now ({detail})"
        else:
            reason = "SoftTemperatureLimit"
            what = f"The board has reached its soft temperature limit and slows its CPU ({detail})"
        hot = temp is not None and temp.celsius >= temp.high_celsius
        # The firmware throttles for heat and for low voltage alike: name what applies.
        if t.under_voltage_now and hot:
            cause = (
                f"Both the heat and the power supply (see UnderVoltage) are to blame. {_COOLING}"
            )
        elif t.under_voltage_now:
            cause = "The supply's under-voltage is the likely cause (see UnderVoltage)."
        else:
            cause = _COOLING
        return Condition(
            THERMAL_THROTTLING,
            "True",
            reason,
            f"{what}: pods run slower. {cause}",
        )
    if temp is not None and temp.celsius >= temp.high_celsius:
        return Condition(
            THERMAL_THROTTLING,
            "True",
            "TemperatureAboveLimit",
            f"The CPU is at {reading}, above its {temp.high_celsius:g} °C throttling limit "
            f"(hard limit {temp.critical_celsius:g} °C): it slows down to cool off, and "
            f"pods run slower. {_COOLING}",
        )
    if t is None and temp is None:
        return Condition(
            THERMAL_THROTTLING,
            "Unknown",
            "NoThermalData",
            "This machine reports neither a CPU temperature nor a throttling state.",
        )
    now = (
        f"The CPU is at {reading}, below its {temp.high_celsius:g} °C throttling limit."
        if temp is not None
        else "The board is not throttling its CPU."
    )
    if t is not None and (t.throttled_since_boot or t.soft_temperature_limit_since_boot):
        return Condition(
            THERMAL_THROTTLING,
            "False",
            "ThrottledSinceBoot",
            f"{now} It throttled earlier since boot ({t}). {_COOLING}",
        )
    return Condition(THERMAL_THROTTLING, "False", "TemperatureNormal", now)


def _voltage(report: HardwareReport) -> Condition:
    t = report.throttled
    if t is None:
        return Condition(
            UNDER_VOLTAGE,
            "Unknown",
            "NoVoltageSensor",
            "This machine does not report under-voltage (only Raspberry Pi firmware does).",
        )
    advice = (
        f"Use {power_supply(report.board_model)} and a short, thick cable; disks and HATs "
        "powered from the board add to the load."
    )
    if t.under_voltage_now:
        return Condition(
            UNDER_VOLTAGE,
            "True",
            "UnderVoltageNow",
            f"The power supply cannot keep up: the board is under-voltage right now ({t}), "
            f"which slows it down and can corrupt the SD card. {advice}",
        )
    if t.under_voltage_since_boot:
        return Condition(
            UNDER_VOLTAGE,
            "True",
            "UnderVoltageSinceBoot",
            f"The power supply cannot keep up: the board has been under-voltage since boot "
            f"({t}), which can corrupt the SD card. {advice} This clears at the next reboot.",
        )
    return Condition(
        UNDER_VOLTAGE,
        "False",
        "VoltageNormal",
        f"The power supply has kept up since boot ({t}).",
    )


def power_supply(board_model: str | None) -> str:
    """The supply Raspberry Pi Ltd recommends for the board, in words."""
    model = board_model or ""
    if model.startswith("Raspberry Pi 5"):
        return "the official 27 W USB-C supply (5.1 V / 5 A)"
    if model.startswith(("Raspberry Pi 4", "Raspberry Pi 400")):
        return "the official 15 W USB-C supply (5.1 V / 3 A)"
    if model.startswith(("Raspberry Pi 3", "Raspberry Pi Zero 2")):
        return "a 5.1 V / 2.5 A micro-USB supply"
    return "the official power supply for the board"


def _memory_cgroup(report: HardwareReport) -> Condition:
    enabled = report.memory_cgroup_enabled
    if enabled is None:
        return Condition(
            MEMORY_CGROUP_DISABLED,
            "Unknown",
            "CgroupsUnreadable",
            "bramble could not tell whether the kernel's memory cgroup is enabled.",
        )
    if enabled:
        return Condition(
            MEMORY_CGROUP_DISABLED,
            "False",
            "MemoryControllerEnabled",
            "The kernel's memory cgroup is enabled: pod memory limits are enforced.",
        )
    return Condition(
        MEMORY_CGROUP_DISABLED,
        "True",
        "MemoryControllerMissing",
        "The kernel's memory cgroup is disabled, so pod memory limits cannot be enforced "
        "and one pod can starve the others. On a Raspberry Pi, add "
        "'cgroup_memory=1 cgroup_enable=memory' to the single line in "
        "/boot/firmware/cmdline.txt (/boot/cmdline.txt before Bookworm) and reboot.",
    )


def _clock(report: HardwareReport) -> Condition:
    synchronized = report.clock_synchronized
    if synchronized is None:
        return Condition(
            CLOCK_UNSYNCHRONIZED,
            "Unknown",
            "ClockStateUnknown",
            "bramble could not tell whether the clock is synchronised.",
        )
    if synchronized:
        return Condition(
            CLOCK_UNSYNCHRONIZED,
            "False",
            "ClockSynchronized",
            "The clock is synchronised with a time server.",
        )
    return Condition(
        CLOCK_UNSYNCHRONIZED,
        "True",
        "ClockNotSynchronized",
        "The clock is not synchronised with a time server. A Raspberry Pi has no "
        "battery-backed clock, so its time may be wrong and the cluster's certificates "
        "look 'not yet valid'. Check the network and the time service "
        "(timedatectl timesync-status).",
    )


def size(n: int) -> str:
    """Bytes for a person: "84 MiB", "3.7 GiB"."""
    value = float(n)
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    exponent = 0
    while value >= 1024 and exponent < len(units) - 1:
        value /= 1024
        exponent += 1
    return f"{value:.1f} {units[exponent]}" if exponent >= 3 else f"{value:.0f} {units[exponent]}"
