"""Which disk holds "/", what kind of disk it is, and flash writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.hardware.report import FlashWrites, StorageKind
from agent.hardware.storage import flash_writes, root_device, storage_kind

from .fakes import write


def mount(dev: str, source: str, fstype: str = "ext4", point: str = "/") -> str:
    return f"25 1 {dev} / {point} rw,noatime shared:1 - {fstype} {source} rw\n"


@pytest.mark.parametrize(
    ("mountinfo", "sys_files", "expected"),
    [
        pytest.param(mount("8:1", "/dev/sda1"), {}, "sda", id="sata-partition"),
        pytest.param(mount("259:2", "/dev/nvme0n1p2"), {}, "nvme0n1", id="nvme-partition"),
        pytest.param(mount("179:2", "/dev/mmcblk0p2"), {}, "mmcblk0", id="sd-partition"),
        pytest.param(mount("254:0", "/dev/vda"), {}, "vda", id="whole-virtual-disk"),
        pytest.param(
            mount("179:2", "/dev/root"),
            {"dev/block/179:2/uevent": "MAJOR=179\nMINOR=2\nDEVNAME=mmcblk0p2\n"},
            "mmcblk0",
            id="dev-root-resolved-by-major-minor",
        ),
        pytest.param(mount("179:2", "/dev/root"), {}, None, id="dev-root-unresolvable"),
        pytest.param(
            mount("253:0", "/dev/mapper/ubuntu--vg-ubuntu--lv"),
            {
                "dev/block/253:0/uevent": "DEVNAME=dm-0\n",
                "block/dm-0/slaves/nvme0n1p3/.keep": "",
            },
            "nvme0n1",
            id="lvm-on-nvme",
        ),
        pytest.param(mount("0:52", "overlay", fstype="overlay"), {}, None, id="container-overlay"),
        pytest.param(
            mount("8:1", "/dev/sda1") + mount("179:2", "/dev/mmcblk0p2"),
            {},
            "mmcblk0",
            id="the-last-mount-on-root-wins",
        ),
        pytest.param(mount("8:1", "/dev/sda1", point="/srv"), {}, None, id="no-root-mount"),
        pytest.param("garbage\n- - -\n\n", {}, None, id="garbage"),
    ],
)
def test_root_device(
    tmp_path: Path, mountinfo: str, sys_files: dict[str, str], expected: str | None
) -> None:
    write(tmp_path / "proc" / "self" / "mountinfo", mountinfo)
    for name, content in sys_files.items():
        write(tmp_path / "sys" / name, content)
    found = root_device(proc_root=str(tmp_path / "proc"), sys_root=str(tmp_path / "sys"))
    assert found == expected


@pytest.mark.parametrize(
    ("disk", "sys_files", "kind"),
    [
        pytest.param("mmcblk0", {"device/type": "SD\n"}, StorageKind.SDCARD, id="sd-card"),
        pytest.param("mmcblk0", {"device/type": "MMC\n"}, StorageKind.EMMC, id="emmc"),
        pytest.param("mmcblk1", {"device/type": "SDIO\n"}, StorageKind.UNKNOWN, id="sdio"),
        pytest.param("mmcblk0", {}, StorageKind.UNKNOWN, id="mmc-without-type"),
        pytest.param("sda", {"queue/rotational": "0\n"}, StorageKind.SSD, id="sata-ssd"),
        pytest.param("sda", {"queue/rotational": "1\n"}, StorageKind.HDD, id="hdd"),
        pytest.param("sda", {"queue/rotational": "x"}, StorageKind.UNKNOWN, id="garbage"),
        pytest.param("nvme0n1", {}, StorageKind.SSD, id="nvme"),
        # virtio sets rotational from a default: it says nothing about the host's disk.
        pytest.param("vda", {"queue/rotational": "1\n"}, StorageKind.UNKNOWN, id="virtio"),
        pytest.param("sdb", {}, StorageKind.UNKNOWN, id="nothing-in-sysfs"),
    ],
)
def test_storage_kind(
    tmp_path: Path, disk: str, sys_files: dict[str, str], kind: StorageKind
) -> None:
    for name, content in sys_files.items():
        write(tmp_path / "block" / disk / name, content)
    assert storage_kind(disk, sys_root=str(tmp_path)) is kind


@pytest.mark.parametrize(
    ("rotational", "kind"), [("0", StorageKind.SSD), ("1", StorageKind.UNKNOWN)]
)
def test_a_usb_disk_claiming_to_rotate_is_unknown(
    tmp_path: Path, rotational: str, kind: StorageKind
) -> None:
    # As on a Pi 4 booting from a USB SSD: /sys/block/sda links into the USB tree.
    device = tmp_path / "devices/platform/scb/fd500000.pcie/usb2/2-2/2-2:1.0/host0/block/sda"
    write(device / "queue" / "rotational", rotational + "\n")
    (tmp_path / "block").mkdir()
    (tmp_path / "block" / "sda").symlink_to(device)
    assert storage_kind("sda", sys_root=str(tmp_path)) is kind


def test_flash_writes_of_every_mmc_disk_and_nothing_else(tmp_path: Path) -> None:
    block = tmp_path / "sys" / "block"
    write(block / "mmcblk0" / "stat", "1 2 3 4 5 6 100 8 9 10 11\n")
    write(block / "mmcblk0" / "device" / "type", "MMC\n")
    write(block / "mmcblk1" / "stat", "1 2 3 4 5 6 7\n")
    write(block / "mmcblk1" / "device" / "type", "SD\n")
    write(block / "mmcblk0boot0" / "stat", "1 2 3 4 5 6 999 8\n")  # eMMC boot area
    write(block / "sda" / "stat", "1 2 3 4 5 6 999 8\n")
    write(block / "mmcblk2" / "stat", "garbage\n")
    found = flash_writes(proc_root=str(tmp_path / "proc"), sys_root=str(tmp_path / "sys"))
    assert found == (
        FlashWrites("mmcblk0", StorageKind.EMMC, 100 * 512),
        FlashWrites("mmcblk1", StorageKind.SDCARD, 7 * 512),
    )


def test_no_flash_on_a_pc(tmp_path: Path) -> None:
    write(tmp_path / "proc" / "diskstats", "   8 0 sda 1 2 3 4 5 6 7 8 9 10 11\n")
    write(tmp_path / "sys" / "block" / "sda" / "stat", "1 2 3 4 5 6 7 8 9 10 11\n")
    assert flash_writes(proc_root=str(tmp_path / "proc"), sys_root=str(tmp_path / "sys")) == ()
