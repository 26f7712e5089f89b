"""MachineProbe on this machine's real /proc and /sys, checked against independent
sources (os, platform, socket, time)."""

from __future__ import annotations

import asyncio
import os
import platform
import socket
import time
import uuid

import pytest

from agent.hardware import MachineProbe, capacity, node_conditions, node_labels
from agent.hardware.report import HardwareReport

GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}


@pytest.fixture(scope="module")
def report() -> HardwareReport:
    return MachineProbe(data_dir="/var/lib/bramble-does-not-exist/data").report()


def test_identity(report: HardwareReport) -> None:
    assert report.architecture == GOARCH[platform.machine()]
    assert report.operating_system == platform.system().lower() == "linux"
    assert report.hostname == socket.gethostname()
    assert report.kernel_version == platform.release()
    assert report.os_image == platform.freedesktop_os_release()["PRETTY_NAME"]
    assert report.boot_id is not None
    assert uuid.UUID(report.boot_id)


def test_cpu_memory_disks(report: HardwareReport) -> None:
    assert report.cpu.count == os.cpu_count()
    assert report.cpu.load_1m is not None
    assert report.cpu.load_1m >= 0
    assert report.memory is not None
    assert report.memory.total_bytes > 0
    assert 0 < report.memory.available_bytes <= report.memory.total_bytes
    assert report.root_disk is not None
    assert report.root_disk.total_bytes > 0
    assert report.data_disk is not None
    assert report.data_disk.path == "/var/lib"
    assert report.boot_time is not None
    assert report.boot_time < time.time()
    assert report.process_count is not None
    assert report.pid_max is not None
    assert 0 < report.process_count < report.pid_max


def test_devices(report: HardwareReport) -> None:
    loopback = {i.name: i for i in report.interfaces}["lo"]
    assert ("ipv4", "127.0.0.1") in {(a.family, a.address) for a in loopback.addresses}
    assert loopback.bytes_sent is not None
    assert report.disk_io, "psutil.disk_io_counters(perdisk=True) found no disk"
    if report.root_device is not None:
        assert report.root_device in {d.device for d in report.disk_io}
    assert report.memory_cgroup_enabled is not None
    assert report.clock_synchronized is not None
    if report.cpu_temperature is not None:
        assert 0 < report.cpu_temperature.celsius < 120


def test_cpu_usage_is_measured_between_reports() -> None:
    probe = MachineProbe()
    assert probe.report().cpu.usage_percent is None  # no interval yet
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:  # burn CPU so that clock ticks pass
        pass
    usage = probe.report().cpu.usage_percent
    assert usage is not None
    assert 0 < usage <= 100


def test_the_injected_clock_stamps_the_report() -> None:
    assert MachineProbe(clock=lambda: 42.5).report().sampled_at == 42.5


def test_derived_values_of_this_machine(report: HardwareReport) -> None:
    labels = node_labels(report)
    assert labels["kubernetes.io/arch"] == GOARCH[platform.machine()]
    assert labels["kubernetes.io/hostname"] == socket.gethostname().lower()
    assert capacity(report)["cpu"] == str(os.cpu_count())
    types = [c.type for c in node_conditions(report)]
    assert types == [
        "MemoryPressure",
        "DiskPressure",
        "PIDPressure",
        "ThermalThrottling",
        "UnderVoltage",
        "MemoryCgroupDisabled",
        "ClockUnsynchronized",
    ]


async def test_the_agent_reads_it_off_the_event_loop() -> None:
    # blockbuster (tests/conftest.py) fails this test if report() blocked the loop.
    report = await asyncio.to_thread(MachineProbe().report)
    assert report.cpu.count == os.cpu_count()
