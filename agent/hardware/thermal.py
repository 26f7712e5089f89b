"""Temperatures: the kernel's thermal zones (read from sysfs, so a fake tree works) and
hwmon sensors (through psutil), and the choice of the one that stands for the CPU.

Limits come from the kernel when it has them: a zone's lowest "passive" or "hot" trip
point is the high limit, its lowest "critical" trip point the critical one. "active"
trip points are fan stages (a Pi 5 has them at 50-75 C) and are not limits. Without
them bramble uses the Raspberry Pi's: throttling from 80 C, hard limit 85 C (hwmon on a
Pi reports neither, bpytop#45).
"""

from __future__ import annotations

import glob
import os
import re
from typing import Final

import psutil

from agent.hardware.files import attempt, read_int, read_text
from agent.hardware.report import Temperature

DEFAULT_HIGH_C: Final = 80.0
DEFAULT_CRITICAL_C: Final = 85.0
# In order of preference. A Pi's zone is "cpu_thermal" or "cpu-thermal" depending on the
# kernel and distribution; Intel's package sensor and AMD's k10temp on PCs.
CPU_SENSORS: Final = ("cpu_thermal", "cpu-thermal", "x86_pkg_temp", "coretemp", "k10temp")
# Within a multi-sensor chip: the package (Intel), die, then control (AMD) temperature.
_CPU_LABELS: Final = ("Package id 0", "Tdie", "Tctl")
_ZONE_NUMBER = re.compile(r"thermal_zone(\d+)$")


def thermal_zones(sys_root: str) -> list[Temperature]:
    """``<sys>/class/thermal/thermal_zone*``: ``type``, ``temp`` in millidegrees, and
    ``trip_point_N_type``/``trip_point_N_temp``. A zone that cannot be read is skipped
    (some answer EINVAL while their sensor sleeps)."""
    zones = glob.glob(os.path.join(glob.escape(sys_root), "class", "thermal", "thermal_zone*"))
    temperatures = []
    for zone in sorted(zones, key=_zone_number):
        sensor = read_text(os.path.join(zone, "type"))
        millidegrees = read_int(os.path.join(zone, "temp"))
        if sensor is None or millidegrees is None:
            continue
        high, critical = _trip_points(zone)
        temperatures.append(
            Temperature(
                sensor=sensor,
                label="",
                celsius=millidegrees / 1000,
                high_celsius=high if high is not None else DEFAULT_HIGH_C,
                critical_celsius=critical if critical is not None else DEFAULT_CRITICAL_C,
                source="thermal_zone",
            )
        )
    return temperatures


def _zone_number(path: str) -> int:
    match = _ZONE_NUMBER.search(path)
    return int(match.group(1)) if match else -1


def _trip_points(zone: str) -> tuple[float | None, float | None]:
    high: float | None = None
    critical: float | None = None
    for type_path in glob.glob(os.path.join(glob.escape(zone), "trip_point_*_type")):
        kind = read_text(type_path)
        millidegrees = read_int(type_path.removesuffix("_type") + "_temp")
        if millidegrees is None or millidegrees <= 0:
            continue
        celsius = millidegrees / 1000
        if kind in ("passive", "hot"):
            high = celsius if high is None else min(high, celsius)
        elif kind == "critical":
            critical = celsius if critical is None else min(critical, celsius)
    return high, critical


def hwmon_temperatures() -> list[Temperature]:
    """psutil's hwmon sensors. The call may be missing (macOS), return an empty dict
    (a VM), or leave ``current``, ``high`` and ``critical`` None: each case is handled.
    A limit of 0 or less is a driver placeholder, not a limit."""
    sensors = getattr(psutil, "sensors_temperatures", None)
    found = attempt("sensors_temperatures", sensors) if sensors is not None else None
    temperatures = []
    for chip, entries in (found or {}).items():
        for entry in entries or ():
            current = getattr(entry, "current", None)
            if current is None:
                continue
            high = getattr(entry, "high", None)
            critical = getattr(entry, "critical", None)
            temperatures.append(
                Temperature(
                    sensor=chip,
                    label=getattr(entry, "label", None) or "",
                    celsius=float(current),
                    high_celsius=float(high) if high and high > 0 else DEFAULT_HIGH_C,
                    critical_celsius=(
                        float(critical) if critical and critical > 0 else DEFAULT_CRITICAL_C
                    ),
                    source="hwmon",
                )
            )
    return temperatures


def cpu_temperature(temperatures: list[Temperature]) -> Temperature | None:
    """The reading that stands for the CPU: the first known sensor name in CPU_SENSORS
    order, else any sensor whose name mentions "cpu" (other ARM boards: "cpu0-thermal").
    Within a sensor: a thermal zone (it has the kernel's trip points) over hwmon, then the
    package/die label, then the hottest core."""
    for name in CPU_SENSORS:
        found = [t for t in temperatures if t.sensor == name]
        if found:
            return _pick(found)
    found = [t for t in temperatures if "cpu" in t.sensor.lower()]
    return _pick(found) if found else None


def _pick(candidates: list[Temperature]) -> Temperature:
    zones = [t for t in candidates if t.source == "thermal_zone"]
    if zones:
        return zones[0]
    for label in _CPU_LABELS:
        for t in candidates:
            if t.label == label:
                return t
    return max(candidates, key=lambda t: t.celsius)
