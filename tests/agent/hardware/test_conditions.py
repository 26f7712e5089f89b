"""node_conditions as a table: (report changes, thresholds) -> one condition."""

from __future__ import annotations

import re
from typing import Any

import pytest

from agent.hardware import node_conditions
from agent.hardware.conditions import power_supply, size
from agent.hardware.report import DiskUsage, MemoryReport, Throttled

from .fakes import GiB, report, temperature

MiB = 1024**2


def vc(raw: int) -> Throttled:
    return Throttled(raw=raw, source="vcgencmd")


def memory(available: int) -> MemoryReport:
    return MemoryReport(
        total_bytes=GiB,
        available_bytes=available,
        used_bytes=GiB - available,
        used_percent=100 * (GiB - available) / GiB,
        swap_total_bytes=0,
        swap_used_bytes=0,
    )


def disk(path: str, free: int, total: int = 100 * GiB) -> DiskUsage:
    return DiskUsage(path=path, total_bytes=total, free_bytes=free, used_percent=0)


CASES = [
    # --- MemoryPressure
    pytest.param(
        {"memory": memory(84 * MiB)},
        {},
        ("MemoryPressure", "True", "KubeletHasInsufficientMemory"),
        "Only 84 MiB of memory is available (the limit is 100 MiB): the kernel may kill "
        "containers to free memory. Stop or move a workload, or lower the memory limits of "
        "its pods.",
        id="memory-low",
    ),
    pytest.param(
        {"memory": memory(100 * MiB)},
        {},
        ("MemoryPressure", "False", "KubeletHasSufficientMemory"),
        "100 MiB of 1.0 GiB of memory is available.",
        id="memory-at-the-threshold",
    ),
    pytest.param(
        {"memory": memory(300 * MiB)},
        {"memory_pressure_available_bytes": 512 * MiB},
        ("MemoryPressure", "True", "KubeletHasInsufficientMemory"),
        None,
        id="memory-custom-threshold",
    ),
    pytest.param(
        {"memory": None},
        {},
        ("MemoryPressure", "Unknown", "MemoryUnknown"),
        "bramble could not read memory use.",
        id="memory-unknown",
    ),
    # --- DiskPressure
    pytest.param(
        {"data_disk": disk("/var/lib/bramble", 5 * GiB), "root_disk": disk("/", 50 * GiB)},
        {},
        ("DiskPressure", "True", "KubeletHasDiskPressure"),
        "Only 5.0 GiB (5%) of the filesystem holding /var/lib/bramble is free (the limit is "
        "10%): images and logs will soon not fit. Remove unused images (podman image prune "
        "-a) and old logs, or use a bigger disk.",
        id="data-disk-full",
    ),
    pytest.param(
        {"data_disk": disk("/srv", 50 * GiB), "root_disk": disk("/", 2 * GiB)},
        {},
        ("DiskPressure", "True", "KubeletHasDiskPressure"),
        None,
        id="root-disk-full",
    ),
    pytest.param(
        {"data_disk": disk("/srv", 15 * GiB)},
        {"disk_pressure_free_fraction": 0.2},
        ("DiskPressure", "True", "KubeletHasDiskPressure"),
        None,
        id="disk-custom-threshold",
    ),
    pytest.param(
        {"data_disk": disk("/srv", 30 * GiB)},
        {},
        ("DiskPressure", "False", "KubeletHasNoDiskPressure"),
        "30.0 GiB (30%) of the filesystem holding /srv is free.",
        id="disk-fine",
    ),
    pytest.param(
        {"data_disk": None, "root_disk": None},
        {},
        ("DiskPressure", "Unknown", "DiskUnknown"),
        "bramble could not read disk usage.",
        id="disk-unknown",
    ),
    # --- PIDPressure
    pytest.param(
        {"process_count": 29_500, "pid_max": 32_768},
        {},
        ("PIDPressure", "True", "KubeletHasInsufficientPID"),
        "29500 of 32768 process IDs are in use (the limit is 90%): new processes and "
        "containers will fail to start. Look for a workload that keeps creating processes "
        "or threads.",
        id="pids-exhausted",
    ),
    pytest.param(
        {"process_count": 600, "pid_max": 1000},
        {"pid_pressure_fraction": 0.5},
        ("PIDPressure", "True", "KubeletHasInsufficientPID"),
        None,
        id="pids-custom-threshold",
    ),
    pytest.param(
        {"pid_max": None},
        {},
        ("PIDPressure", "Unknown", "PIDUnknown"),
        "bramble could not count processes.",
        id="pids-unknown",
    ),
    # --- ThermalThrottling
    pytest.param(
        {"throttled": vc(0x4), "cpu_temperature": temperature(83.04)},
        {},
        ("ThermalThrottling", "True", "ThrottledNow"),
        "The board is throttling its CPU right now (throttled=0x4, 83.0 °C): pods run slower. "
        "Give the board a heatsink or a fan and some room to breathe.",
        id="throttled-now",
    ),
    pytest.param(
        {"throttled": vc(0x8), "cpu_temperature": temperature(61.0)},
        {},
        ("ThermalThrottling", "True", "SoftTemperatureLimit"),
        "The board has reached its soft temperature limit and slows its CPU (throttled=0x8, "
        "61.0 °C): pods run slower. Give the board a heatsink or a fan and some room to "
        "breathe.",
        id="soft-limit-now",
    ),
    pytest.param(
        {"throttled": vc(0x5), "cpu_temperature": None},
        {},
        ("ThermalThrottling", "True", "ThrottledNow"),
        "The board is throttling its CPU right now (throttled=0x5): pods run slower. The "
        "supply's under-voltage is the likely cause (see UnderVoltage).",
        id="throttled-by-under-voltage",
    ),
    pytest.param(
        {"throttled": vc(0x5), "cpu_temperature": temperature(55.0)},
        {},
        ("ThermalThrottling", "True", "ThrottledNow"),
        "The board is throttling its CPU right now (throttled=0x5, 55.0 °C): pods run "
        "slower. The supply's under-voltage is the likely cause (see UnderVoltage).",
        id="throttled-by-under-voltage-while-cool",
    ),
    pytest.param(
        {"throttled": None, "cpu_temperature": temperature(81.2)},
        {},
        ("ThermalThrottling", "True", "TemperatureAboveLimit"),
        "The CPU is at 81.2 °C, above its 80 °C throttling limit (hard limit 85 °C): it slows "
        "down to cool off, and pods run slower. Give the board a heatsink or a fan and some "
        "room to breathe.",
        id="hot-pc-without-throttle-bits",
    ),
    pytest.param(
        {"cpu_temperature": temperature(72.5, high=70.0, critical=95.0)},
        {},
        ("ThermalThrottling", "True", "TemperatureAboveLimit"),
        None,
        id="kernel-high-limit",
    ),
    pytest.param(
        {"throttled": vc(0x40000)},
        {},
        ("ThermalThrottling", "False", "ThrottledSinceBoot"),
        "The CPU is at 52.0 °C, below its 80 °C throttling limit. It throttled earlier since "
        "boot (throttled=0x40000). Give the board a heatsink or a fan and some room to "
        "breathe.",
        id="throttled-earlier",
    ),
    pytest.param(
        {"throttled": vc(0x10000)},
        {},
        ("ThermalThrottling", "False", "TemperatureNormal"),
        "The CPU is at 52.0 °C, below its 80 °C throttling limit.",
        id="cool",
    ),
    pytest.param(
        {"cpu_temperature": None},
        {},
        ("ThermalThrottling", "False", "TemperatureNormal"),
        "The board is not throttling its CPU.",
        id="pi-without-temperature",
    ),
    pytest.param(
        {"throttled": None, "cpu_temperature": None},
        {},
        ("ThermalThrottling", "Unknown", "NoThermalData"),
        "This machine reports neither a CPU temperature nor a throttling state.",
        id="vm",
    ),
    # --- UnderVoltage
    pytest.param(
        {"throttled": vc(0x50000)},
        {},
        ("UnderVoltage", "True", "UnderVoltageSinceBoot"),
        "The power supply cannot keep up: the board has been under-voltage since boot "
        "(throttled=0x50000), which can corrupt the SD card. Use the official 15 W USB-C "
        "supply (5.1 V / 3 A) and a short, thick cable; disks and HATs powered from the "
        "board add to the load. This clears at the next reboot.",
        id="under-voltage-since-boot",
    ),
    pytest.param(
        {"throttled": vc(0x1), "board_model": "Raspberry Pi 5 Model B Rev 1.0"},
        {},
        ("UnderVoltage", "True", "UnderVoltageNow"),
        "The power supply cannot keep up: the board is under-voltage right now "
        "(throttled=0x1), which slows it down and can corrupt the SD card. Use the official "
        "27 W USB-C supply (5.1 V / 5 A) and a short, thick cable; disks and HATs powered "
        "from the board add to the load.",
        id="under-voltage-now-pi5",
    ),
    pytest.param(
        {"throttled": vc(0xE0000)},
        {},
        ("UnderVoltage", "False", "VoltageNormal"),
        "The power supply has kept up since boot (throttled=0xe0000).",
        id="voltage-fine",
    ),
    pytest.param(
        {"throttled": None},
        {},
        ("UnderVoltage", "Unknown", "NoVoltageSensor"),
        "This machine does not report under-voltage (only Raspberry Pi firmware does).",
        id="no-voltage-sensor",
    ),
    # --- MemoryCgroupDisabled
    pytest.param(
        {"memory_cgroup_enabled": False},
        {},
        ("MemoryCgroupDisabled", "True", "MemoryControllerMissing"),
        "The kernel's memory cgroup is disabled, so pod memory limits cannot be enforced and "
        "one pod can starve the others. On a Raspberry Pi, add 'cgroup_memory=1 "
        "cgroup_enable=memory' to the single line in /boot/firmware/cmdline.txt "
        "(/boot/cmdline.txt before Bookworm) and reboot.",
        id="memory-cgroup-disabled",
    ),
    pytest.param(
        {},
        {},
        ("MemoryCgroupDisabled", "False", "MemoryControllerEnabled"),
        None,
        id="memory-cgroup-enabled",
    ),
    pytest.param(
        {"memory_cgroup_enabled": None},
        {},
        ("MemoryCgroupDisabled", "Unknown", "CgroupsUnreadable"),
        None,
        id="memory-cgroup-unknown",
    ),
    # --- ClockUnsynchronized
    pytest.param(
        {"clock_synchronized": False},
        {},
        ("ClockUnsynchronized", "True", "ClockNotSynchronized"),
        "The clock is not synchronised with a time server. A Raspberry Pi has no "
        "battery-backed clock, so its time may be wrong and the cluster's certificates look "
        "'not yet valid'. Check the network and the time service (timedatectl "
        "timesync-status).",
        id="clock-unsynchronized",
    ),
    pytest.param(
        {},
        {},
        ("ClockUnsynchronized", "False", "ClockSynchronized"),
        "The clock is synchronised with a time server.",
        id="clock-synchronized",
    ),
    pytest.param(
        {"clock_synchronized": None},
        {},
        ("ClockUnsynchronized", "Unknown", "ClockStateUnknown"),
        None,
        id="clock-unknown",
    ),
]


@pytest.mark.parametrize(("changes", "thresholds", "expected", "message"), CASES)
def test_condition(
    changes: dict[str, Any],
    thresholds: dict[str, Any],
    expected: tuple[str, str, str],
    message: str | None,
) -> None:
    conditions = {c.type: c for c in node_conditions(report(**changes), **thresholds)}
    condition = conditions[expected[0]]
    assert (condition.type, condition.status, condition.reason) == expected
    if message is not None:
        assert condition.message == message


def test_a_healthy_pi_has_no_condition_set() -> None:
    conditions = node_conditions(report())
    assert [(c.type, c.status) for c in conditions] == [
        ("MemoryPressure", "False"),
        ("DiskPressure", "False"),
        ("PIDPressure", "False"),
        ("ThermalThrottling", "False"),
        ("UnderVoltage", "False"),
        ("MemoryCgroupDisabled", "False"),
        ("ClockUnsynchronized", "False"),
    ]


@pytest.mark.parametrize(("changes", "thresholds", "expected", "message"), CASES)
def test_reasons_are_camel_case_and_messages_sentences(
    changes: dict[str, Any], thresholds: dict[str, Any], expected: Any, message: Any
) -> None:
    for condition in node_conditions(report(**changes), **thresholds):
        assert re.fullmatch(r"[A-Z][A-Za-z]+", condition.reason), condition.reason
        assert not condition.message[0].islower() or condition.message.startswith("bramble")
        assert condition.message.endswith("."), condition.message


@pytest.mark.parametrize(
    ("model", "supply"),
    [
        pytest.param("Raspberry Pi 5 Model B Rev 1.0", "5.1 V / 5 A", id="pi5"),
        pytest.param("Raspberry Pi 4 Model B Rev 1.4", "5.1 V / 3 A", id="pi4"),
        pytest.param("Raspberry Pi 400 Rev 1.0", "5.1 V / 3 A", id="pi400"),
        pytest.param("Raspberry Pi 3 Model B Plus Rev 1.3", "5.1 V / 2.5 A", id="pi3"),
        pytest.param("Raspberry Pi Zero 2 W Rev 1.0", "5.1 V / 2.5 A", id="zero2"),
        pytest.param(None, "the official power supply for the board", id="unknown"),
    ],
)
def test_power_supply_advice(model: str | None, supply: str) -> None:
    assert supply in power_supply(model)


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0 B"), (1023, "1023 B"), (2048, "2 KiB"), (84 * MiB, "84 MiB"), (3 * GiB, "3.0 GiB")],
)
def test_size(n: int, text: str) -> None:
    assert size(n) == text
