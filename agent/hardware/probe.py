"""``MachineProbe``: the real ``HardwareProbe``, reading this machine.

Two kinds of source, and which facts a test can fake:

* Files under ``proc_root``, ``sys_root`` and ``etc_root``, and the ``vcgencmd`` command:
  architecture, OS image, kernel, hostname, ids, load, process count and PID limit,
  thermal zones, every Raspberry Pi fact, the root device and flash writes. Point the
  roots at a tree in tmp_path and the probe describes that tree.
* psutil, which always reads the real machine (its /proc path is process-global state):
  CPU count, frequency and usage, memory, swap, disk usage and I/O, network interfaces,
  hwmon temperatures (only when ``sys_root`` is the real /sys, so a fake tree's thermal
  zones are not mixed with this machine's sensors) and boot time.

Blocking (file reads, and a vcgencmd subprocess on a Pi): call ``report()`` through
``asyncio.to_thread``. Safe to call from several threads.
"""

from __future__ import annotations

import os
import platform
import socket
import threading
import time
from collections.abc import Callable
from typing import Final, NamedTuple

import psutil

from agent.hardware import machine, pi, storage, thermal
from agent.hardware.files import attempt, read_text
from agent.hardware.report import (
    Address,
    CpuReport,
    DiskIO,
    DiskUsage,
    HardwareReport,
    MemoryReport,
    NetInterface,
)

MonotonicClock = Callable[[], float]

_FAMILIES: Final = {socket.AF_INET: "ipv4", socket.AF_INET6: "ipv6", psutil.AF_LINK: "mac"}


class _CpuTimes(NamedTuple):
    busy: float
    total: float


class MachineProbe:
    """Reads the machine under the given roots. ``data_dir`` is the agent's data directory,
    whose filesystem is the node's ephemeral storage (None: the root filesystem).
    ``clock`` is monotonic seconds, stamped on each report for rate computations."""

    def __init__(
        self,
        proc_root: str = "/proc",
        sys_root: str = "/sys",
        *,
        etc_root: str = "/etc",
        vcgencmd: str = "vcgencmd",
        data_dir: str | os.PathLike[str] | None = None,
        clock: MonotonicClock = time.monotonic,
    ) -> None:
        self._proc = proc_root
        self._sys = sys_root
        self._etc = etc_root
        self._vcgencmd = vcgencmd
        self._data_dir = os.fspath(data_dir) if data_dir is not None else None
        self._clock = clock
        # psutil reads the real /sys; a string test keeps the constructor off the disk.
        self._real_sys = os.path.normpath(sys_root) == "/sys"
        # The previous CPU times, for usage between two reports. psutil.cpu_percent(None)
        # keeps its previous sample per calling *thread*, and asyncio.to_thread runs each
        # call on whichever pool thread is free, so its interval would be arbitrary.
        self._lock = threading.Lock()
        self._last_cpu: _CpuTimes | None = None

    def report(self) -> HardwareReport:
        sampled_at = self._clock()
        cpuinfo = read_text(os.path.join(self._proc, "cpuinfo"))
        arch, variant = machine.architecture(cpuinfo)
        temperatures = thermal.thermal_zones(self._sys)
        if self._real_sys:
            temperatures += thermal.hwmon_temperatures()
        root_device = storage.root_device(proc_root=self._proc, sys_root=self._sys)
        root_disk = _disk_usage("/")
        load, processes = machine.load_and_processes(self._proc)
        return HardwareReport(
            sampled_at=sampled_at,
            hostname=machine.hostname(self._proc),
            operating_system=_operating_system(),
            architecture=arch,
            architecture_variant=variant,
            os_image=machine.os_image(self._etc),
            kernel_version=machine.kernel_version(self._proc),
            boot_id=machine.boot_id(self._proc),
            machine_id=machine.machine_id(self._etc),
            boot_time=attempt("boot_time", psutil.boot_time),
            cpu=self._cpu(load),
            memory=_memory(),
            root_disk=root_disk,
            data_disk=_disk_usage(self._data_dir) if self._data_dir else root_disk,
            disk_io=_disk_io(),
            interfaces=_interfaces(),
            temperatures=tuple(temperatures),
            cpu_temperature=thermal.cpu_temperature(temperatures),
            process_count=processes,
            pid_max=machine.pid_limit(self._proc),
            board_model=pi.board_model(proc_root=self._proc, sys_root=self._sys, cpuinfo=cpuinfo),
            throttled=pi.throttled(vcgencmd=self._vcgencmd, sys_root=self._sys),
            memory_cgroup_enabled=pi.memory_cgroup_enabled(
                proc_root=self._proc, sys_root=self._sys
            ),
            clock_synchronized=pi.clock_synchronized(),
            root_device=root_device,
            root_storage=(
                storage.storage_kind(root_device, sys_root=self._sys) if root_device else None
            ),
            flash_writes=storage.flash_writes(proc_root=self._proc, sys_root=self._sys),
        )

    def _cpu(self, load: tuple[float, float, float] | None) -> CpuReport:
        freq = attempt("cpu_freq", psutil.cpu_freq)
        return CpuReport(
            count=attempt("cpu_count", psutil.cpu_count) or os.cpu_count(),
            current_mhz=_positive(getattr(freq, "current", None)),
            max_mhz=_positive(getattr(freq, "max", None)),
            load_1m=load[0] if load else None,
            load_5m=load[1] if load else None,
            load_15m=load[2] if load else None,
            usage_percent=self._cpu_usage(),
        )

    def _cpu_usage(self) -> float | None:
        now = attempt("cpu_times", _cpu_times)
        if now is None:
            return None
        with self._lock:
            last, self._last_cpu = self._last_cpu, now
        if last is None:
            return None
        total = now.total - last.total
        if total <= 0:  # called twice within one clock tick
            return None
        return round(min(100.0, max(0.0, 100 * (now.busy - last.busy) / total)), 1)


def _cpu_times() -> _CpuTimes:
    # psutil's own formula (cpu_percent): guest time is already in user/nice on Linux, and
    # iowait is idle time that the kernel keeps apart.
    times = psutil.cpu_times()
    total = sum(times) - getattr(times, "guest", 0) - getattr(times, "guest_nice", 0)
    busy = total - times.idle - getattr(times, "iowait", 0)
    return _CpuTimes(busy=busy, total=total)


def _positive(value: float | None) -> float | None:
    return float(value) if value else None


def _operating_system() -> str:
    return platform.system().lower() or "unknown"


def _memory() -> MemoryReport | None:
    vm = attempt("virtual_memory", psutil.virtual_memory)
    if vm is None:
        return None
    swap = attempt("swap_memory", psutil.swap_memory)
    return MemoryReport(
        total_bytes=vm.total,
        available_bytes=vm.available,
        used_bytes=vm.used,
        used_percent=vm.percent,
        swap_total_bytes=swap.total if swap else 0,
        swap_used_bytes=swap.used if swap else 0,
    )


def _disk_usage(path: str) -> DiskUsage | None:
    # The data dir may not exist yet (the agent creates it): measure where it will be.
    existing = os.path.abspath(path)
    while not os.path.exists(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)
    usage = attempt("disk_usage", lambda: psutil.disk_usage(existing))
    if usage is None:
        return None
    return DiskUsage(
        path=existing,
        total_bytes=usage.total,
        free_bytes=usage.free,
        used_percent=usage.percent,
    )


def _disk_io() -> tuple[DiskIO, ...]:
    counters = attempt("disk_io_counters", lambda: psutil.disk_io_counters(perdisk=True))
    return tuple(
        DiskIO(
            device=name,
            read_bytes=c.read_bytes,
            write_bytes=c.write_bytes,
            read_count=c.read_count,
            write_count=c.write_count,
        )
        for name, c in sorted((counters or {}).items())
    )


def _interfaces() -> tuple[NetInterface, ...]:
    addrs = attempt("net_if_addrs", psutil.net_if_addrs) or {}
    stats = attempt("net_if_stats", psutil.net_if_stats) or {}
    counters = attempt("net_io_counters", lambda: psutil.net_io_counters(pernic=True)) or {}
    interfaces = []
    for name in sorted(set(addrs) | set(stats) | set(counters)):
        st = stats.get(name)
        io = counters.get(name)
        interfaces.append(
            NetInterface(
                name=name,
                addresses=tuple(
                    Address(family=_FAMILIES[a.family], address=a.address, netmask=a.netmask)
                    for a in addrs.get(name, ())
                    if a.family in _FAMILIES
                ),
                is_up=st.isup if st else None,
                speed_mbps=st.speed or None if st else None,
                mtu=st.mtu if st else None,
                bytes_sent=io.bytes_sent if io else None,
                bytes_recv=io.bytes_recv if io else None,
                packets_sent=io.packets_sent if io else None,
                packets_recv=io.packets_recv if io else None,
                errors_in=io.errin if io else None,
                errors_out=io.errout if io else None,
            )
        )
    return tuple(interfaces)
