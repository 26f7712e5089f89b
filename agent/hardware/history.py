"""Bounded usage history: the last N samples of CPU, memory, temperature, disk I/O and
network rates, for the TUI's sparklines and the agent's metrics.

Rates come from counter deltas between consecutive samples, per device: a disk or
interface that appears, disappears or restarts its counters (a USB disk replugged, an
interface re-created) contributes nothing to that one interval instead of a spike or a
negative rate. A rate is None for the first sample, when the clock did not advance, or
when no device has a valid delta. Every series is a plain list aligned with
``timestamps``, None where the value is unknown.

Not thread-safe: the agent adds samples on its event loop, after the probe's thread
returns.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from agent.hardware.report import HardwareReport, is_physical_disk, is_physical_interface

DEFAULT_CAPACITY: Final = 120  # 20 minutes at the agent's 10 s status interval


@dataclass(frozen=True, slots=True)
class UsageSample:
    """Raw readings at one moment. Counters are cumulative bytes per device:
    ``disk`` maps a disk to (read, written), ``net`` an interface to (received, sent)."""

    at: float  # monotonic seconds
    cpu_percent: float | None
    memory_percent: float | None
    temperature_celsius: float | None
    disk: Mapping[str, tuple[int, int]]
    net: Mapping[str, tuple[int, int]]

    @classmethod
    def from_report(cls, report: HardwareReport) -> UsageSample:
        """Physical disks and interfaces only: a partition, a loop device, a veth or a
        bridge would count the same bytes twice."""
        return cls(
            at=report.sampled_at,
            cpu_percent=report.cpu.usage_percent,
            memory_percent=report.memory.used_percent if report.memory else None,
            temperature_celsius=(
                report.cpu_temperature.celsius if report.cpu_temperature else None
            ),
            disk={
                d.device: (d.read_bytes, d.write_bytes)
                for d in report.disk_io
                if is_physical_disk(d.device)
            },
            net={
                i.name: (i.bytes_recv, i.bytes_sent)
                for i in report.interfaces
                if is_physical_interface(i.name)
                and i.bytes_recv is not None
                and i.bytes_sent is not None
            },
        )


@dataclass(frozen=True, slots=True)
class UsagePoint:
    """One point of history. Rates are bytes per second over the interval ending here."""

    at: float
    cpu_percent: float | None
    memory_percent: float | None
    temperature_celsius: float | None
    disk_read_rate: float | None
    disk_write_rate: float | None
    net_recv_rate: float | None
    net_sent_rate: float | None


class UsageHistory:
    """The last ``capacity`` points; adding beyond that drops the oldest."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        self._points: deque[UsagePoint] = deque(maxlen=capacity)
        self._last: UsageSample | None = None

    def __len__(self) -> int:
        return len(self._points)

    def add(self, sample: UsageSample) -> UsagePoint:
        last, self._last = self._last, sample
        rates: tuple[float | None, ...] = (None, None, None, None)
        if last is not None and sample.at > last.at:
            elapsed = sample.at - last.at
            rates = (
                _rate(last.disk, sample.disk, 0, elapsed),
                _rate(last.disk, sample.disk, 1, elapsed),
                _rate(last.net, sample.net, 0, elapsed),
                _rate(last.net, sample.net, 1, elapsed),
            )
        point = UsagePoint(
            at=sample.at,
            cpu_percent=sample.cpu_percent,
            memory_percent=sample.memory_percent,
            temperature_celsius=sample.temperature_celsius,
            disk_read_rate=rates[0],
            disk_write_rate=rates[1],
            net_recv_rate=rates[2],
            net_sent_rate=rates[3],
        )
        self._points.append(point)
        return point

    def add_report(self, report: HardwareReport) -> UsagePoint:
        return self.add(UsageSample.from_report(report))

    def points(self) -> list[UsagePoint]:
        return list(self._points)

    @property
    def timestamps(self) -> list[float]:
        return [p.at for p in self._points]

    @property
    def cpu_percent(self) -> list[float | None]:
        return [p.cpu_percent for p in self._points]

    @property
    def memory_percent(self) -> list[float | None]:
        return [p.memory_percent for p in self._points]

    @property
    def temperature_celsius(self) -> list[float | None]:
        return [p.temperature_celsius for p in self._points]

    @property
    def disk_read_rate(self) -> list[float | None]:
        return [p.disk_read_rate for p in self._points]

    @property
    def disk_write_rate(self) -> list[float | None]:
        return [p.disk_write_rate for p in self._points]

    @property
    def net_recv_rate(self) -> list[float | None]:
        return [p.net_recv_rate for p in self._points]

    @property
    def net_sent_rate(self) -> list[float | None]:
        return [p.net_sent_rate for p in self._points]

    def as_dict(self) -> dict[str, list[float | None]]:
        """Every series by name, ready to serialise (the agent's usage endpoint)."""
        return {
            "timestamps": list(self.timestamps),
            "cpu_percent": self.cpu_percent,
            "memory_percent": self.memory_percent,
            "temperature_celsius": self.temperature_celsius,
            "disk_read_rate": self.disk_read_rate,
            "disk_write_rate": self.disk_write_rate,
            "net_recv_rate": self.net_recv_rate,
            "net_sent_rate": self.net_sent_rate,
        }


def _rate(
    before: Mapping[str, tuple[int, int]],
    after: Mapping[str, tuple[int, int]],
    index: int,
    elapsed: float,
) -> float | None:
    deltas = [
        after[name][index] - before[name][index]
        for name in after.keys() & before.keys()
        if after[name][index] >= before[name][index]  # else: counters restarted
    ]
    return sum(deltas) / elapsed if deltas else None
