"""The agent's /metrics text: a Raspberry Pi's hardware facts (read by the real probe from a
fake Pi's /proc and /sys) parsed back with prometheus-client's own parser, and facts a
machine does not offer left out rather than served as 0."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent import metrics
from agent.hardware.report import DiskIO, NetInterface, StorageKind
from tests.agent.hardware.fakes import PI4_MODEL, SECTORS_WRITTEN, build_pi, report

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> tuple[dict[str, str], Samples]:
    """The families' types by name, and every sample's value by (name, labels)."""
    types: dict[str, str] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return types, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def test_every_family_has_help_and_type_lines(tmp_path: Path) -> None:
    text = metrics.render(
        build_pi(tmp_path).probe(data_dir=tmp_path / "data").report(), pods=3, runtime_up=True
    ).decode()
    helps = set(re.findall(r"^# HELP (\S+) \S", text, re.MULTILINE))
    typed = dict(re.findall(r"^# TYPE (\S+) (gauge|counter)$", text, re.MULTILINE))
    assert helps == set(typed)
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        name = re.match(r"[a-z0-9_]+", line)
        assert name is not None, line
        # prometheus-client's text format names a counter's family with its _total.
        assert name.group() in typed, f"{line!r} has no TYPE line"
        assert (typed[name.group()] == "counter") == name.group().endswith("_total"), line
    assert len(typed) > 30  # the hardware facts, not the five gauges of old


def test_the_pis_facts_are_served(tmp_path: Path) -> None:
    pi = build_pi(tmp_path).probe(data_dir=tmp_path / "data").report()
    types, samples = parse(metrics.render(pi, pods=3, runtime_up=True).decode())

    assert value(samples, "bramble_agent_pods") == 3
    assert value(samples, "bramble_agent_runtime_up") == 1
    # SD-card wear: the bytes written to the card since boot, as a counter.
    assert types["bramble_node_flash_written_bytes"] == "counter"
    assert value(
        samples, "bramble_node_flash_written_bytes_total", device="mmcblk0", kind="sdcard"
    ) == (SECTORS_WRITTEN * 512)
    # Throttling: the raw word and its bits (0x50005).
    assert value(samples, "bramble_node_throttled_bits") == 0x50005
    for condition, now, since_boot in [
        ("under_voltage", 1, 1),
        ("arm_frequency_capped", 0, 0),
        ("throttled", 1, 1),
        ("soft_temperature_limit", 0, 0),
    ]:
        assert value(samples, "bramble_node_throttled", condition=condition, when="now") == now
        assert (
            value(samples, "bramble_node_throttled", condition=condition, when="since_boot")
            == since_boot
        )
    # Every temperature, with the kernel's critical trip point and bramble's default high.
    zone = {"sensor": "cpu-thermal", "label": "", "source": "thermal_zone"}
    assert value(samples, "bramble_node_temperature_celsius", **zone) == pytest.approx(81.234)
    assert value(samples, "bramble_node_temperature_critical_celsius", **zone) == 90
    assert value(samples, "bramble_node_temperature_high_celsius", **zone) == 80
    assert value(samples, "bramble_node_cpu_temperature_celsius") == pytest.approx(81.234)
    assert value(samples, "bramble_node_load1") == 0.52
    assert value(samples, "bramble_node_load15") == 0.59
    assert value(samples, "bramble_node_memory_cgroup_enabled") == 0
    assert value(samples, "bramble_node_processes") == 345
    info = [k for k in samples if k[0] == "bramble_node_info"]
    assert [dict(labels)["board_model"] for _, labels in info] == [PI4_MODEL]
    # psutil's facts are this machine's (the roots do not reach psutil).
    assert pi.memory is not None
    assert pi.boot_time is not None
    assert value(samples, "bramble_node_swap_total_bytes") == pi.memory.swap_total_bytes
    assert value(samples, "bramble_node_boot_time_seconds") == pi.boot_time


def test_disks_interfaces_and_frequency() -> None:
    eth = NetInterface(
        name="eth0", addresses=(), is_up=True, speed_mbps=1000, mtu=1500, bytes_sent=10,
        bytes_recv=20, packets_sent=1, packets_recv=2, errors_in=0, errors_out=3,
    )  # fmt: skip
    wifi = dataclasses.replace(eth, name="wlan0", is_up=False, speed_mbps=None, mtu=None)
    machine = report(
        disk_io=(DiskIO("mmcblk0", read_bytes=5, write_bytes=7, read_count=1, write_count=2),),
        interfaces=(eth, wifi),
    )
    _, samples = parse(metrics.render(machine, pods=0, runtime_up=False).decode())

    assert value(samples, "bramble_agent_runtime_up") == 0
    assert value(samples, "bramble_node_disk_written_bytes_total", device="mmcblk0") == 7
    assert value(samples, "bramble_node_disk_read_bytes_total", device="mmcblk0") == 5
    assert value(samples, "bramble_node_network_up", interface="eth0") == 1
    assert value(samples, "bramble_node_network_up", interface="wlan0") == 0
    assert value(samples, "bramble_node_network_speed_bytes", interface="eth0") == 125_000_000
    assert ("bramble_node_network_speed_bytes", frozenset({("interface", "wlan0")})) not in samples
    assert value(samples, "bramble_node_network_transmit_errors_total", interface="eth0") == 3
    assert value(samples, "bramble_node_cpu_frequency_hertz") == 1.8e9
    assert value(samples, "bramble_node_cpu_frequency_max_hertz") == 1.8e9
    assert value(samples, "bramble_node_filesystem_free_bytes", role="data",
                 path="/var/lib/bramble") == 32 * 1024**3  # fmt: skip


def test_facts_the_machine_does_not_offer_are_left_out() -> None:
    """An old PC: no throttling bits, no thermal zone, no cgroup or clock answer; never
    served as 0 (which would read as "not throttled", "0 degrees")."""
    pc = report(
        throttled=None, cpu_temperature=None, memory_cgroup_enabled=None,
        clock_synchronized=None, boot_time=None, board_model=None,
        root_storage=StorageKind.SSD,
    )  # fmt: skip
    pc = dataclasses.replace(pc, cpu=dataclasses.replace(pc.cpu, max_mhz=None, load_1m=None))
    types, samples = parse(metrics.render(pc, pods=0, runtime_up=True).decode())
    for absent in [
        "bramble_node_throttled_bits",
        "bramble_node_throttled",
        "bramble_node_cpu_temperature_celsius",
        "bramble_node_memory_cgroup_enabled",
        "bramble_node_clock_synchronized",
        "bramble_node_boot_time_seconds",
        "bramble_node_cpu_frequency_max_hertz",
        "bramble_node_load1",
        "bramble_node_flash_written_bytes",
    ]:
        assert absent not in types
    assert value(samples, "bramble_node_load5") == 0.4


def test_before_the_first_hardware_report_only_the_agent_is_served() -> None:
    types, samples = parse(metrics.render(None, pods=2, runtime_up=True).decode())
    assert set(types) == {"bramble_agent_pods", "bramble_agent_runtime_up"}
    assert value(samples, "bramble_agent_pods") == 2
