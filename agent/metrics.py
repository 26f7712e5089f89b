"""The agent's ``/metrics``: the machine's hardware facts and the agent's own state, in
Prometheus' text format (HELP and TYPE lines), through prometheus-client.

Built at each scrape from the last ``HardwareReport`` (sampled every status interval)
and the sync loop's counts; nothing is kept between scrapes, so nothing can drift. A fact
the machine does not offer (None in the report: no swap figure, no thermal zone, no
throttling bits off a Pi) is left out, never exported as 0. Units as node_exporter's:
bytes, seconds, hertz, degrees Celsius; kernel counters since boot are ``_total``
counters, so ``rate()`` gives disk and network throughput and SD-card wear.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from agent.hardware.report import DiskUsage, HardwareReport, ThrottledBit

CONTENT_TYPE = CONTENT_TYPE_LATEST
_MHZ = 1_000_000
_MBPS = 125_000  # bytes per second in one megabit per second


def render(report: HardwareReport | None, *, pods: int, runtime_up: bool) -> bytes:
    """The exposition text for one scrape."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(report, pods=pods, runtime_up=runtime_up))
    return generate_latest(registry)


class _Families(Collector):
    def __init__(self, report: HardwareReport | None, *, pods: int, runtime_up: bool) -> None:
        self._report, self._pods, self._runtime_up = report, pods, runtime_up

    def collect(self) -> Iterable[Metric]:
        yield _gauge("bramble_agent_pods", "Pods this agent runs a worker for.", self._pods)
        yield _gauge(
            "bramble_agent_runtime_up",
            "1 if the container runtime answered the agent's last listing, else 0.",
            int(self._runtime_up),
        )
        if self._report is not None:
            yield from families(self._report)


def _gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text, value=value)


def _known(name: str, help_text: str, value: float | bool | None) -> Iterator[Metric]:
    if value is not None:
        yield _gauge(name, help_text, float(value))


def families(report: HardwareReport) -> Iterator[Metric]:
    """Every hardware fact of the report that is known, as metric families."""
    yield from _cpu(report)
    yield from _memory(report)
    yield from _disks(report)
    yield from _network(report)
    yield from _thermal(report)
    yield from _pi(report)
    yield from _known(
        "bramble_node_boot_time_seconds", "When the machine booted, seconds since the epoch.",
        report.boot_time,
    )  # fmt: skip
    yield from _known(
        "bramble_node_processes", "Kernel scheduling entities (every thread takes a PID).",
        report.process_count,
    )  # fmt: skip
    yield from _known(
        "bramble_node_pid_max", "The most PIDs the kernel hands out (pid_max, threads-max).",
        report.pid_max,
    )  # fmt: skip
    info = GaugeMetricFamily(
        "bramble_node_info",
        "The machine's identity; the value is always 1.",
        labels=["board_model", "architecture", "kernel_version", "os_image"],
    )
    info.add_metric(
        [report.board_model or "", report.architecture, report.kernel_version or "",
         report.os_image or ""],
        1,
    )  # fmt: skip
    yield info


def _cpu(report: HardwareReport) -> Iterator[Metric]:
    cpu = report.cpu
    yield from _known("bramble_node_cpu_count", "Logical CPUs.", cpu.count)
    yield from _known(
        "bramble_node_cpu_percent",
        "Busy share of all CPUs since the previous hardware report, percent.",
        cpu.usage_percent,
    )
    if cpu.current_mhz is not None:
        yield _gauge(
            "bramble_node_cpu_frequency_hertz",
            "Current CPU clock (below the maximum when throttled or idle).",
            cpu.current_mhz * _MHZ,
        )
    if cpu.max_mhz:
        yield _gauge(
            "bramble_node_cpu_frequency_max_hertz", "Maximum CPU clock.", cpu.max_mhz * _MHZ
        )
    for minutes, load in ((1, cpu.load_1m), (5, cpu.load_5m), (15, cpu.load_15m)):
        yield from _known(
            f"bramble_node_load{minutes}", f"Load average over {minutes} minute(s).", load
        )


def _memory(report: HardwareReport) -> Iterator[Metric]:
    memory = report.memory
    if memory is None:
        return
    for name, help_text, value in (
        ("memory_total_bytes", "Physical memory.", memory.total_bytes),
        ("memory_available_bytes", "Memory available without swapping (free -h's available).",
         memory.available_bytes),
        ("memory_used_bytes", "Memory in use (reclaimable cache not counted).",
         memory.used_bytes),
        ("swap_total_bytes", "Swap space (0: none configured).", memory.swap_total_bytes),
        ("swap_used_bytes", "Swap space in use.", memory.swap_used_bytes),
    ):  # fmt: skip
        yield _gauge(f"bramble_node_{name}", help_text, value)


def _disks(report: HardwareReport) -> Iterator[Metric]:
    disks: list[tuple[str, DiskUsage]] = [
        (role, usage)
        for role, usage in (("root", report.root_disk), ("data", report.data_disk))
        if usage is not None
    ]
    if disks:
        size = GaugeMetricFamily(
            "bramble_node_filesystem_size_bytes",
            "Size of the filesystem holding / (role root) and the agent's data (role data).",
            labels=["role", "path"],
        )
        free = GaugeMetricFamily(
            "bramble_node_filesystem_free_bytes",
            "Space available to unprivileged users on that filesystem.",
            labels=["role", "path"],
        )
        for role, usage in disks:
            size.add_metric([role, usage.path], usage.total_bytes)
            free.add_metric([role, usage.path], usage.free_bytes)
        yield size
        yield free
    if report.disk_io:
        counters = {
            "read_bytes": CounterMetricFamily(
                "bramble_node_disk_read_bytes", "Bytes read since boot.", labels=["device"]
            ),
            "written_bytes": CounterMetricFamily(
                "bramble_node_disk_written_bytes", "Bytes written since boot.", labels=["device"]
            ),
            "reads": CounterMetricFamily(
                "bramble_node_disk_reads_completed", "Reads completed since boot.",
                labels=["device"],
            ),
            "writes": CounterMetricFamily(
                "bramble_node_disk_writes_completed", "Writes completed since boot.",
                labels=["device"],
            ),
        }  # fmt: skip
        for io in report.disk_io:
            counters["read_bytes"].add_metric([io.device], io.read_bytes)
            counters["written_bytes"].add_metric([io.device], io.write_bytes)
            counters["reads"].add_metric([io.device], io.read_count)
            counters["writes"].add_metric([io.device], io.write_count)
        yield from counters.values()
    if report.flash_writes:
        flash = CounterMetricFamily(
            "bramble_node_flash_written_bytes",
            "Bytes written to an SD card or eMMC since boot: the only wear signal an SD "
            "card gives.",
            labels=["device", "kind"],
        )
        for writes in report.flash_writes:
            flash.add_metric([writes.device, writes.kind.value], writes.written_bytes)
        yield flash


def _network(report: HardwareReport) -> Iterator[Metric]:
    if not report.interfaces:
        return
    labels = ["interface"]
    up = GaugeMetricFamily("bramble_node_network_up", "1 if the link is up.", labels=labels)
    speed = GaugeMetricFamily(
        "bramble_node_network_speed_bytes", "Link speed, bytes per second.", labels=labels
    )
    mtu = GaugeMetricFamily("bramble_node_network_mtu_bytes", "The interface's MTU.", labels=labels)
    counters = {
        "bytes_recv": CounterMetricFamily(
            "bramble_node_network_receive_bytes", "Bytes received since boot.", labels=labels
        ),
        "bytes_sent": CounterMetricFamily(
            "bramble_node_network_transmit_bytes", "Bytes sent since boot.", labels=labels
        ),
        "errors_in": CounterMetricFamily(
            "bramble_node_network_receive_errors", "Receive errors since boot.", labels=labels
        ),
        "errors_out": CounterMetricFamily(
            "bramble_node_network_transmit_errors", "Transmit errors since boot.", labels=labels
        ),
    }
    for nic in report.interfaces:
        if nic.is_up is not None:
            up.add_metric([nic.name], int(nic.is_up))
        if nic.speed_mbps:  # 0 or None: the driver does not say (Wi-Fi, virtual)
            speed.add_metric([nic.name], nic.speed_mbps * _MBPS)
        if nic.mtu is not None:
            mtu.add_metric([nic.name], nic.mtu)
        for attribute, family in counters.items():
            value = getattr(nic, attribute)
            if value is not None:
                family.add_metric([nic.name], value)
    yield from (f for f in (up, speed, mtu, *counters.values()) if f.samples)


def _thermal(report: HardwareReport) -> Iterator[Metric]:
    if report.cpu_temperature is not None:
        yield _gauge(
            "bramble_node_cpu_temperature_celsius",
            "Temperature of the sensor chosen to represent the CPU or SoC.",
            report.cpu_temperature.celsius,
        )
    if not report.temperatures:
        return
    labels = ["sensor", "label", "source"]
    readings = [
        (GaugeMetricFamily("bramble_node_temperature_celsius", "Every temperature sensor.",
                           labels=labels), "celsius"),
        (GaugeMetricFamily("bramble_node_temperature_high_celsius",
                           "The sensor's high (throttling) limit: the kernel's, else 80.",
                           labels=labels), "high_celsius"),
        (GaugeMetricFamily("bramble_node_temperature_critical_celsius",
                           "The sensor's critical limit: the kernel's, else 85.",
                           labels=labels), "critical_celsius"),
    ]  # fmt: skip
    for t in report.temperatures:
        for family, attribute in readings:
            family.add_metric([t.sensor, t.label, t.source], getattr(t, attribute))
    yield from (family for family, _ in readings)


def _pi(report: HardwareReport) -> Iterator[Metric]:
    throttled = report.throttled
    if throttled is not None:
        yield _gauge(
            "bramble_node_throttled_bits",
            "The Raspberry Pi firmware's get_throttled word (0x50005: under-voltage and "
            "throttled now and since boot).",
            throttled.raw,
        )
        bits = GaugeMetricFamily(
            "bramble_node_throttled",
            "1 if the firmware reports the condition, now or at any time since boot.",
            labels=["condition", "when"],
        )
        for bit in ThrottledBit:
            bits.add_metric([bit.name.lower(), "now"], int(throttled.now(bit)))
            bits.add_metric([bit.name.lower(), "since_boot"], int(throttled.since_boot(bit)))
        yield bits
    yield from _known(
        "bramble_node_memory_cgroup_enabled",
        "1 if the kernel's memory cgroup is enabled (memory limits can be applied).",
        report.memory_cgroup_enabled,
    )
    yield from _known(
        "bramble_node_clock_synchronized",
        "1 if the system clock is synchronised (NTP); certificates need a right clock.",
        report.clock_synchronized,
    )
