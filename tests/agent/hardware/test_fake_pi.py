"""MachineProbe on a Raspberry Pi 4's /proc, /sys and /etc built in tmp_path: every fact
read from files, and every condition, label and capacity derived from them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.hardware import capacity, node_conditions, node_info, node_labels, pi
from agent.hardware.report import FlashWrites, HardwareReport, StorageKind, Throttled

from .fakes import PI4_MODEL, SECTORS_WRITTEN, PiTree, build_pi, fake_vcgencmd


@pytest.fixture
def tree(tmp_path: Path) -> PiTree:
    return build_pi(tmp_path)


@pytest.fixture
def pi_report(tree: PiTree, tmp_path: Path) -> HardwareReport:
    return tree.probe(data_dir=tmp_path / "data").report()


def test_identity_comes_from_the_tree(pi_report: HardwareReport) -> None:
    assert pi_report.hostname == "Pi-3"
    assert (pi_report.architecture, pi_report.architecture_variant) == ("arm", "v7")
    assert pi_report.os_image == "Raspbian GNU/Linux 12 (bookworm)"
    assert pi_report.kernel_version == "6.6.51+rpt-rpi-v7l"
    assert pi_report.boot_id == "0f6bd7d5-8d22-4e7b-9c3e-5b0c8a1f2e11"
    assert pi_report.machine_id == "5b0c8a1f2e114e7b9c3e0f6bd7d58d22"


def test_load_and_pids(pi_report: HardwareReport) -> None:
    cpu = pi_report.cpu
    assert (cpu.load_1m, cpu.load_5m, cpu.load_15m) == (0.52, 0.58, 0.59)
    assert pi_report.process_count == 345
    assert pi_report.pid_max == 14000  # threads-max is below pid_max


def test_board_model_loses_its_nul(pi_report: HardwareReport) -> None:
    assert pi_report.board_model == PI4_MODEL


def test_cpu_thermal_zone_with_kernel_and_default_limits(pi_report: HardwareReport) -> None:
    temp = pi_report.cpu_temperature
    assert temp is not None
    assert (temp.sensor, temp.source) == ("cpu-thermal", "thermal_zone")
    assert temp.celsius == pytest.approx(81.234)
    # The kernel's critical trip point, no passive one (the active fan stage is not a
    # limit), so bramble's 80 C default for the high limit.
    assert (temp.high_celsius, temp.critical_celsius) == (80.0, 90.0)
    # The fake /sys is not the real one, so this machine's hwmon sensors are not mixed in.
    assert pi_report.temperatures == (temp,)


def test_throttled_from_sysfs_without_vcgencmd(pi_report: HardwareReport) -> None:
    assert pi_report.throttled == Throttled(raw=0x50005, source="sysfs")


def test_vcgencmd_is_preferred_over_sysfs(tree: PiTree, tmp_path: Path) -> None:
    vcgencmd = fake_vcgencmd(tmp_path / "bin", output="throttled=0x50000")
    report = tree.probe(vcgencmd=vcgencmd).report()
    assert report.throttled == Throttled(raw=0x50000, source="vcgencmd")


@pytest.mark.parametrize(
    ("output", "rc"),
    [
        pytest.param("throttled=0x50000", 1, id="fails-without-the-video-group"),
        pytest.param("VCHI initialization failed", 0, id="garbage-output"),
        pytest.param("", 0, id="no-output"),
    ],
)
def test_a_failing_vcgencmd_falls_back_to_sysfs(
    tree: PiTree, tmp_path: Path, output: str, rc: int
) -> None:
    vcgencmd = fake_vcgencmd(tmp_path / "bin", output=output, rc=rc)
    assert tree.probe(vcgencmd=vcgencmd).report().throttled == Throttled(0x50005, "sysfs")


def test_a_hanging_vcgencmd_is_abandoned(
    tree: PiTree, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "bin" / "vcgencmd"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\nexec sleep 30\n")
    script.chmod(0o755)
    monkeypatch.setattr(pi, "VCGENCMD_TIMEOUT_S", 0.2)
    assert tree.probe(vcgencmd=script).report().throttled == Throttled(0x50005, "sysfs")


def test_memory_cgroup_disabled(pi_report: HardwareReport) -> None:
    assert pi_report.memory_cgroup_enabled is False


def test_clock_state_is_this_kernels(pi_report: HardwareReport) -> None:
    # adjtimex asks the running kernel: no file under the roots can fake it.
    assert pi_report.clock_synchronized == pi.clock_synchronized()


def test_root_on_the_sd_card_and_its_writes(pi_report: HardwareReport) -> None:
    # The mount table says /dev/root; 179:2's uevent names the partition.
    assert pi_report.root_device == "mmcblk0"
    assert pi_report.root_storage is StorageKind.SDCARD
    assert pi_report.root_on_sdcard is True
    assert pi_report.flash_writes == (
        FlashWrites(device="mmcblk0", kind=StorageKind.SDCARD, written_bytes=1024**3),
    )
    assert SECTORS_WRITTEN * 512 == 1024**3


def test_flash_writes_from_diskstats_when_sysfs_has_no_block_dir(tree: PiTree) -> None:
    for name in ("stat", "device/type"):
        (tree.sys / "block" / "mmcblk0" / name).unlink()
    (tree.sys / "block" / "mmcblk0" / "device").rmdir()
    (tree.sys / "block" / "mmcblk0").rmdir()
    report = tree.probe().report()
    assert report.flash_writes == (FlashWrites("mmcblk0", StorageKind.UNKNOWN, 999 * 512),)


def test_conditions_of_the_pi(pi_report: HardwareReport) -> None:
    conditions = {c.type: c for c in node_conditions(pi_report)}
    thermal = conditions["ThermalThrottling"]
    assert (thermal.status, thermal.reason) == ("True", "ThrottledNow")
    assert thermal.message == (
        "The board is throttling its CPU right now (throttled=0x50005, 81.2 °C): pods run "
        "slower. Both the heat and the power supply (see UnderVoltage) are to blame. Give "
        "the board a heatsink or a fan and some room to breathe."
    )
    voltage = conditions["UnderVoltage"]
    assert (voltage.status, voltage.reason) == ("True", "UnderVoltageNow")
    assert voltage.message == (
        "The power supply cannot keep up: the board is under-voltage right now "
        "(throttled=0x50005), which slows it down and can corrupt the SD card. Use the "
        "official 15 W USB-C supply (5.1 V / 3 A) and a short, thick cable; disks and HATs "
        "powered from the board add to the load."
    )
    cgroup = conditions["MemoryCgroupDisabled"]
    assert (cgroup.status, cgroup.reason) == ("True", "MemoryControllerMissing")
    assert "cgroup_memory=1 cgroup_enable=memory" in cgroup.message
    assert "/boot/firmware/cmdline.txt" in cgroup.message
    pids = conditions["PIDPressure"]
    assert (pids.status, pids.reason, pids.message) == (
        "False",
        "KubeletHasSufficientPID",
        "345 of 14000 process IDs are in use.",
    )
    # Memory, disk and clock are this machine's (psutil and adjtimex read the real one).
    memory = pi_report.memory
    assert memory is not None
    pressure = memory.available_bytes < 100 * 1024**2
    assert conditions["MemoryPressure"].status == ("True" if pressure else "False")
    clock = conditions["ClockUnsynchronized"].status
    assert clock == {True: "False", False: "True", None: "Unknown"}[pi_report.clock_synchronized]
    assert conditions["DiskPressure"].status in ("True", "False")


def test_labels_of_the_pi(pi_report: HardwareReport) -> None:
    assert node_labels(pi_report) == {
        "kubernetes.io/arch": "arm",
        "kubernetes.io/os": "linux",
        "kubernetes.io/hostname": "pi-3",
        "bramble.io/arch-variant": "v7",
        "bramble.io/board-model": "Raspberry-Pi-4-Model-B-Rev-1.4",
        "bramble.io/storage": "sdcard",
    }


def test_capacity_and_node_info_of_the_pi(pi_report: HardwareReport, tmp_path: Path) -> None:
    assert pi_report.memory is not None
    assert pi_report.data_disk is not None
    # The data dir does not exist yet: its filesystem is measured at tmp_path.
    assert pi_report.data_disk.path == str(tmp_path)
    assert capacity(pi_report) == {
        "cpu": str(os.cpu_count()),
        "memory": f"{pi_report.memory.total_bytes // 1024}Ki",
        "ephemeral-storage": f"{pi_report.data_disk.total_bytes // 1024}Ki",
        "pods": "110",
    }
    assert node_info(pi_report) == {
        "architecture": "arm",
        "bootID": "0f6bd7d5-8d22-4e7b-9c3e-5b0c8a1f2e11",
        "kernelVersion": "6.6.51+rpt-rpi-v7l",
        "machineID": "5b0c8a1f2e114e7b9c3e0f6bd7d58d22",
        "operatingSystem": "linux",
        "osImage": "Raspbian GNU/Linux 12 (bookworm)",
    }
