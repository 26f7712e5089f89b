"""UsageHistory with injected samples: rates from counter deltas, resets, the bound."""

from __future__ import annotations

import dataclasses

import pytest

from agent.hardware import UsageHistory, UsageSample
from agent.hardware.report import DiskIO, NetInterface

from .fakes import report


def sample(
    at: float,
    *,
    disk: dict[str, tuple[int, int]] | None = None,
    net: dict[str, tuple[int, int]] | None = None,
    cpu: float | None = 10.0,
) -> UsageSample:
    return UsageSample(
        at=at,
        cpu_percent=cpu,
        memory_percent=50.0,
        temperature_celsius=55.0,
        disk=disk if disk is not None else {"sda": (0, 0)},
        net=net if net is not None else {"eth0": (0, 0)},
    )


def test_rates_from_counter_deltas() -> None:
    history = UsageHistory()
    history.add(sample(0.0, disk={"sda": (1000, 2000)}, net={"eth0": (0, 0)}))
    history.add(sample(10.0, disk={"sda": (6000, 2000)}, net={"eth0": (1_000_000, 50)}))
    history.add(sample(12.0, disk={"sda": (6000, 6000)}, net={"eth0": (1_000_000, 250)}))
    assert history.timestamps == [0.0, 10.0, 12.0]
    assert history.disk_read_rate == [None, 500.0, 0.0]  # the first sample has no interval
    assert history.disk_write_rate == [None, 0.0, 2000.0]
    assert history.net_recv_rate == [None, 100_000.0, 0.0]
    assert history.net_sent_rate == [None, 5.0, 100.0]
    assert history.cpu_percent == [10.0, 10.0, 10.0]


def test_a_counter_reset_gives_no_rate_instead_of_a_negative_one() -> None:
    history = UsageHistory()
    history.add(sample(0.0, net={"eth0": (5000, 5000)}))
    history.add(sample(1.0, net={"eth0": (100, 200)}))  # interface re-created
    history.add(sample(2.0, net={"eth0": (300, 300)}))
    assert history.net_recv_rate == [None, None, 200.0]
    assert history.net_sent_rate == [None, None, 100.0]


def test_devices_that_come_and_go_do_not_make_spikes() -> None:
    history = UsageHistory()
    history.add(sample(0.0, disk={"sda": (0, 0)}))
    # A USB disk with 1 TB already read appears; sda reads 100 bytes.
    history.add(sample(1.0, disk={"sda": (100, 0), "sdb": (10**12, 0)}))
    history.add(sample(2.0, disk={"sdb": (10**12 + 50, 0)}))  # sda unplugged
    history.add(sample(3.0, disk={"sda": (0, 0)}))  # nothing in common with the last
    assert history.disk_read_rate == [None, 100.0, 50.0, None]


def test_a_clock_that_did_not_advance_gives_no_rate() -> None:
    history = UsageHistory()
    history.add(sample(5.0))
    assert history.add(sample(5.0)).disk_read_rate is None


def test_the_history_is_bounded() -> None:
    history = UsageHistory(capacity=3)
    for i in range(5):
        history.add(sample(float(i), disk={"sda": (i * 10, 0)}, cpu=float(i)))
    assert len(history) == 3
    assert history.cpu_percent == [2.0, 3.0, 4.0]
    # The rate of the oldest kept point still uses the sample before it.
    assert history.disk_read_rate == [10.0, 10.0, 10.0]


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        UsageHistory(capacity=0)


def test_as_dict_has_every_series_aligned() -> None:
    history = UsageHistory()
    history.add(sample(0.0))
    history.add(sample(1.0, cpu=None))
    series = history.as_dict()
    assert set(series) == {
        "timestamps",
        "cpu_percent",
        "memory_percent",
        "temperature_celsius",
        "disk_read_rate",
        "disk_write_rate",
        "net_recv_rate",
        "net_sent_rate",
    }
    assert all(len(values) == 2 for values in series.values())
    assert series["cpu_percent"] == [10.0, None]


def nic(name: str, recv: int | None, sent: int | None) -> NetInterface:
    return NetInterface(name, (), True, None, 1500, sent, recv, None, None, None, None)


def test_a_sample_from_a_report_counts_physical_devices_only() -> None:
    r = report(
        sampled_at=7.0,
        disk_io=(
            DiskIO("mmcblk0", 100, 200, 1, 2),
            DiskIO("mmcblk0p2", 90, 190, 1, 2),  # a partition: already in mmcblk0
            DiskIO("loop3", 5, 0, 1, 0),
            DiskIO("nvme0n1", 1, 1, 1, 1),
        ),
        interfaces=(
            nic("eth0", 10, 20),
            nic("wlan0", 1, 2),
            nic("lo", 500, 500),
            nic("veth1234", 7, 7),
            nic("podman0", 7, 7),
            nic("usb0", None, None),
        ),
    )
    s = UsageSample.from_report(r)
    assert s.at == 7.0
    assert (s.cpu_percent, s.memory_percent, s.temperature_celsius) == (12.5, 25.0, 52.0)
    assert s.disk == {"mmcblk0": (100, 200), "nvme0n1": (1, 1)}
    assert s.net == {"eth0": (10, 20), "wlan0": (1, 2)}


def test_add_report() -> None:
    history = UsageHistory()
    history.add_report(report(memory=None, cpu_temperature=None))
    point = history.add_report(
        dataclasses.replace(report(), sampled_at=102.0, disk_io=(DiskIO("sda", 0, 0, 0, 0),))
    )
    assert history.memory_percent == [None, 25.0]
    assert history.temperature_celsius == [None, 52.0]
    assert point.disk_read_rate is None  # sda was not in the first report
