"""The probe runs on every kind of machine: missing files, garbage in files, a missing
vcgencmd and failing psutil calls make facts unknown, never an exception."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from agent.hardware import MachineProbe, node_conditions, node_labels
from agent.hardware.files import read_text, run_command
from agent.hardware.machine import architecture

from .fakes import write

GARBAGE_FILES: dict[str, bytes] = {
    "proc/device-tree/model": b"\xff\xfe\x00\x01",
    "proc/cpuinfo": b"\x00\x00model name\t:\nCPU architecture: many\n",
    "proc/cgroups": b"memory\n#subsys_name enabled\n\x00",
    "proc/loadavg": b"high higher highest 1/x\n",
    "proc/self/mountinfo": b"- - - -\n1 2 3 4 / 5 - \n",
    "proc/diskstats": b"179 0 mmcblk0 x y z\n",
    "proc/sys/kernel/pid_max": b"lots\n",
    "proc/sys/kernel/threads-max": b"\xff\n",
    "proc/sys/kernel/random/boot_id": b"",
    "sys/class/thermal/thermal_zone0/type": b"cpu-thermal\n",
    "sys/class/thermal/thermal_zone0/temp": b"hot\n",
    "sys/class/thermal/thermal_zone0/trip_point_0_type": b"\xff\n",
    "sys/class/thermal/thermal_zone0/trip_point_0_temp": b"-\n",
    "sys/devices/platform/soc/soc:firmware/get_throttled": b"0xZZ\n",
    "sys/block/mmcblk0/stat": b"not numbers at all but many fields here ok\n",
    "sys/block/mmcblk0/device/type": b"\x00",
    "etc/os-release": b'PRETTY_NAME="unterminated\n',
}


def probe(root: Path, **kwargs: object) -> MachineProbe:
    return MachineProbe(
        str(root / "proc"),
        str(root / "sys"),
        etc_root=str(root / "etc"),
        vcgencmd=str(root / "bin" / "vcgencmd"),
        **kwargs,  # type: ignore[arg-type]
    )


def test_garbage_files(tmp_path: Path) -> None:
    for name, content in GARBAGE_FILES.items():
        write(tmp_path / name, content)
    report = probe(tmp_path).report()
    assert report.board_model is None
    assert report.throttled is None
    assert report.cpu_temperature is None
    assert report.temperatures == ()
    assert report.memory_cgroup_enabled is False  # a v1 table without a memory row
    assert report.process_count is None
    assert report.pid_max is None
    assert report.root_device is None
    assert report.root_storage is None
    assert report.root_on_sdcard is None
    assert report.flash_writes == ()
    assert report.os_image is None
    assert report.boot_id is None
    assert report.cpu.load_1m is not None  # falls back to os.getloadavg()
    assert report.architecture == architecture(None)[0]  # falls back to uname
    assert len(node_conditions(report)) == 7
    assert node_labels(report)["bramble.io/storage"] == "unknown"


def test_an_empty_tree(tmp_path: Path) -> None:
    report = probe(tmp_path / "nothing-here").report()
    assert (report.board_model, report.throttled, report.memory_cgroup_enabled) == (
        None,
        None,
        None,
    )
    assert (report.os_image, report.machine_id, report.root_device) == (None, None, None)
    assert report.hostname  # falls back to socket.gethostname()
    by_type = {c.type: c for c in node_conditions(report)}
    assert by_type["UnderVoltage"].status == "Unknown"
    assert by_type["MemoryCgroupDisabled"].status == "Unknown"
    assert by_type["PIDPressure"].status == "Unknown"


def test_directories_where_files_should_be(tmp_path: Path) -> None:
    for name in ("proc/device-tree/model", "proc/cpuinfo", "etc/os-release", "proc/loadavg"):
        (tmp_path / name).mkdir(parents=True)
    report = probe(tmp_path).report()
    assert report.board_model is None
    assert report.os_image is None


def test_a_vcgencmd_that_is_not_executable(tmp_path: Path) -> None:
    write(tmp_path / "bin" / "vcgencmd", "#!/bin/sh\necho throttled=0x1\n")  # mode 644
    write(tmp_path / "sys/devices/platform/soc/soc:firmware/get_throttled", "0\n")
    throttled = probe(tmp_path).report().throttled
    assert throttled is not None
    assert (throttled.raw, throttled.source) == (0, "sysfs")


@pytest.mark.parametrize(
    "function",
    [
        "virtual_memory",
        "swap_memory",
        "cpu_freq",
        "cpu_count",
        "cpu_times",
        "disk_usage",
        "disk_io_counters",
        "net_if_addrs",
        "net_if_stats",
        "net_io_counters",
        "boot_time",
    ],
)
def test_a_failing_psutil_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, function: str
) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(f"{function} failed")

    monkeypatch.setattr(psutil, function, fail)
    report = probe(tmp_path, data_dir=tmp_path).report()
    assert len(node_conditions(report)) == 7


def test_psutil_returning_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Some platforms answer None rather than raising (cpu_freq without cpufreq, ARM).
    for function in ("cpu_freq", "disk_io_counters", "net_io_counters"):
        monkeypatch.setattr(psutil, function, lambda *a, **k: None)
    report = probe(tmp_path).report()
    assert report.cpu.current_mhz is None
    assert report.disk_io == ()
    assert all(i.bytes_sent is None for i in report.interfaces)


def test_file_helpers() -> None:
    assert read_text("/nonexistent/file") is None
    assert run_command(["/nonexistent/command"], timeout=1) is None
    assert run_command(["false"], timeout=1) is None
