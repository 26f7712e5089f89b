"""Thermal zones, psutil's hwmon sensors in all their shapes, and the CPU's reading."""

from __future__ import annotations

from collections import namedtuple
from pathlib import Path
from typing import Any

import psutil
import pytest

from agent.hardware.report import Temperature
from agent.hardware.thermal import cpu_temperature, hwmon_temperatures, thermal_zones

from .fakes import write

# psutil's shwtemp, with the None values psutil 8 may give.
shwtemp = namedtuple("shwtemp", "label current high critical")


def zone(root: Path, n: int, kind: str, temp: str, trips: dict[str, str] | None = None) -> None:
    path = root / "class" / "thermal" / f"thermal_zone{n}"
    write(path / "type", kind + "\n")
    write(path / "temp", temp + "\n")
    for i, (trip_type, trip_temp) in enumerate((trips or {}).items()):
        write(path / f"trip_point_{i}_type", trip_type + "\n")
        write(path / f"trip_point_{i}_temp", trip_temp + "\n")


def reading(sensor: str, celsius: float, *, label: str = "", source: str = "hwmon") -> Temperature:
    return Temperature(sensor, label, celsius, 80.0, 85.0, source)


def test_zones_in_numeric_order_with_their_limits(tmp_path: Path) -> None:
    zone(tmp_path, 10, "gpu-thermal", "40000")
    zone(tmp_path, 2, "x86_pkg_temp", "55500", {"passive": "95000", "critical": "105000"})
    zone(tmp_path, 1, "acpitz", "27800", {"hot": "90000", "passive": "85000"})
    found = thermal_zones(str(tmp_path))
    assert [(t.sensor, t.celsius, t.high_celsius, t.critical_celsius) for t in found] == [
        ("acpitz", 27.8, 85.0, 85.0),  # the lowest of passive/hot; default critical
        ("x86_pkg_temp", 55.5, 95.0, 105.0),
        ("gpu-thermal", 40.0, 80.0, 85.0),  # no trip points: the Pi defaults
    ]


@pytest.mark.parametrize(
    ("temp", "trips", "expected"),
    [
        pytest.param("N/A", {}, [], id="garbage-temp"),
        pytest.param("", {}, [], id="empty-temp"),
        pytest.param("50000", {"critical": "soon"}, [(50.0, 80.0, 85.0)], id="garbage-trip"),
        pytest.param("50000", {"critical": "0"}, [(50.0, 80.0, 85.0)], id="zero-trip"),
        pytest.param("50000", {"active": "45000"}, [(50.0, 80.0, 85.0)], id="fan-stage-only"),
        pytest.param("-5000", {}, [(-5.0, 80.0, 85.0)], id="below-zero"),
    ],
)
def test_odd_zones(
    tmp_path: Path, temp: str, trips: dict[str, str], expected: list[tuple[float, ...]]
) -> None:
    zone(tmp_path, 0, "cpu_thermal", temp, trips)
    found = thermal_zones(str(tmp_path))
    assert [(t.celsius, t.high_celsius, t.critical_celsius) for t in found] == expected


def test_no_thermal_class_at_all(tmp_path: Path) -> None:
    assert thermal_zones(str(tmp_path / "nothing")) == []


@pytest.mark.parametrize(
    ("sensors", "expected"),
    [
        pytest.param({}, [], id="empty-in-a-vm"),
        pytest.param(None, [], id="none"),
        pytest.param({"cpu_thermal": None}, [], id="a-chip-without-entries"),
        pytest.param(
            {"cpu_thermal": [shwtemp("", 48.3, None, None)]},
            [("cpu_thermal", "", 48.3, 80.0, 85.0)],
            id="pi-without-limits",
        ),
        pytest.param(
            {"coretemp": [shwtemp("Package id 0", 61.0, 84.0, 100.0)]},
            [("coretemp", "Package id 0", 61.0, 84.0, 100.0)],
            id="intel-with-limits",
        ),
        pytest.param(
            {"nvme": [shwtemp("Composite", None, 70.0, 80.0), shwtemp(None, 40.0, 0.0, -1.0)]},
            [("nvme", "", 40.0, 80.0, 85.0)],
            id="none-current-and-placeholder-limits",
        ),
    ],
)
def test_hwmon_shapes(
    monkeypatch: pytest.MonkeyPatch, sensors: Any, expected: list[tuple[Any, ...]]
) -> None:
    monkeypatch.setattr(psutil, "sensors_temperatures", lambda: sensors, raising=False)
    found = hwmon_temperatures()
    assert [(t.sensor, t.label, t.celsius, t.high_celsius, t.critical_celsius) for t in found] == (
        expected
    )
    assert all(t.source == "hwmon" for t in found)


def test_hwmon_failing_or_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> None:
        raise OSError("EIO")

    monkeypatch.setattr(psutil, "sensors_temperatures", broken)
    assert hwmon_temperatures() == []
    monkeypatch.delattr(psutil, "sensors_temperatures")  # macOS has none
    assert hwmon_temperatures() == []


@pytest.mark.parametrize(
    ("temperatures", "chosen"),
    [
        pytest.param([], None, id="nothing"),
        pytest.param([reading("acpitz", 30), reading("nvme", 40)], None, id="no-cpu-sensor"),
        pytest.param([reading("gpu-thermal", 50), reading("cpu-thermal", 60)], 1, id="pi-hyphen"),
        pytest.param([reading("cpu_thermal", 60)], 0, id="pi-underscore"),
        pytest.param(
            [reading("coretemp", 70, label="Core 0"), reading("x86_pkg_temp", 65)],
            1,
            id="package-zone-over-coretemp",
        ),
        pytest.param(
            [
                reading("coretemp", 70, label="Core 0"),
                reading("coretemp", 66, label="Package id 0"),
            ],
            1,
            id="coretemp-package-label",
        ),
        pytest.param(
            [reading("coretemp", 70, label="Core 0"), reading("coretemp", 75, label="Core 1")],
            1,
            id="coretemp-hottest-core",
        ),
        pytest.param(
            [reading("k10temp", 80, label="Tctl"), reading("k10temp", 70, label="Tdie")],
            1,
            id="amd-die-over-control",
        ),
        pytest.param(
            [reading("cpu_thermal", 60.1), reading("cpu_thermal", 60, source="thermal_zone")],
            1,
            id="zone-over-hwmon-for-its-trip-points",
        ),
        pytest.param([reading("cpu0-thermal", 45)], 0, id="other-arm-board"),
    ],
)
def test_cpu_temperature_choice(temperatures: list[Temperature], chosen: int | None) -> None:
    expected = temperatures[chosen] if chosen is not None else None
    assert cpu_temperature(temperatures) is expected
