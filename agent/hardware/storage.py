"""Where the root filesystem lives and how much has been written to flash.

SD cards are the first thing to fail on a Pi and have no SMART; bramble reports what
it can: which disk holds "/", what kind of disk that is (the ``bramble.io/storage``
label), and the bytes written to each SD card or eMMC since boot (a wear proxy).
"""

from __future__ import annotations

import os
import re
from typing import Final

from agent.hardware.files import read_text
from agent.hardware.report import FlashWrites, StorageKind, is_physical_disk

# Block-layer "sectors" are always 512 bytes, whatever the device's own block size
# (Documentation/block/stat.rst).
SECTOR_BYTES: Final = 512
_MMC_DISK = re.compile(r"mmcblk\d+")  # not mmcblk0p1, mmcblk0boot0 or mmcblk0rpmb
_PARTITION = re.compile(r"(?P<disk>(?:mmcblk|nvme\d+n|loop)\d+)p\d+|(?P<plain>[a-z]+)\d+")


def root_device(*, proc_root: str, sys_root: str) -> str | None:
    """The whole disk holding "/" ("mmcblk0", "sda", "nvme0n1"), or None for a root that
    is not on a disk (overlay in a container, tmpfs, NFS)."""
    name = _root_block_device(proc_root=proc_root, sys_root=sys_root)
    return _whole_disk(name, sys_root=sys_root) if name else None


def _root_block_device(*, proc_root: str, sys_root: str) -> str | None:
    mountinfo = read_text(os.path.join(proc_root, "self", "mountinfo"))
    if mountinfo is None:
        return None
    found: tuple[str, str] | None = None
    for line in mountinfo.splitlines():
        # id parent major:minor root mountpoint options [optional...] - fstype source opts
        fields = line.split()
        if len(fields) < 5 or fields[4] != "/" or "-" not in fields:
            continue
        after = fields[fields.index("-") + 1 :]
        source = after[1] if len(after) >= 2 else ""
        found = (fields[2], source)  # the last mount on "/" is the one in effect
    if found is None:
        return None
    dev, source = found
    # The kernel's own name for major:minor; a Pi's mount table may say "/dev/root".
    uevent = read_text(os.path.join(sys_root, "dev", "block", dev, "uevent")) or ""
    for line in uevent.splitlines():
        if line.startswith("DEVNAME="):
            return line.removeprefix("DEVNAME=")
    if source.startswith("/dev/") and source != "/dev/root":
        return os.path.basename(source)
    return None


def _whole_disk(name: str, *, sys_root: str) -> str | None:
    # Device-mapper (LVM, LUKS) stacks on one partition: follow it, a few levels at most.
    for _ in range(4):
        slaves = os.path.join(sys_root, "block", name, "slaves")
        try:
            below = os.listdir(slaves)
        except OSError:
            break
        if len(below) != 1:
            break
        name = below[0]
    if is_physical_disk(name) or name.startswith("dm-"):
        return name
    if os.path.isdir(os.path.join(sys_root, "block", name)):  # whole disks only live here
        return name
    match = _PARTITION.fullmatch(name)
    if match is None:
        return name
    return match.group("disk") or match.group("plain")


def storage_kind(disk: str, *, sys_root: str) -> StorageKind:
    """What the kernel says the disk is. An MMC device's ``device/type`` tells an SD card
    ("SD") from soldered eMMC ("MMC"); other disks have ``queue/rotational``, which the
    kernel sets to 1 unless the device says otherwise. Virtual disks (virtio, Xen) never
    say, so they are UNKNOWN; neither do many USB bridges, and a Pi booting from a USB
    SSD is common, so a USB disk claiming to rotate is UNKNOWN too."""
    base = os.path.join(sys_root, "block", disk)
    if _MMC_DISK.fullmatch(disk):
        mmc_type = read_text(os.path.join(base, "device", "type"))
        return {"SD": StorageKind.SDCARD, "MMC": StorageKind.EMMC}.get(
            mmc_type or "", StorageKind.UNKNOWN
        )
    if disk.startswith(("vd", "xvd", "dm-")):
        return StorageKind.UNKNOWN
    if disk.startswith("nvme"):
        return StorageKind.SSD
    rotational = read_text(os.path.join(base, "queue", "rotational"))
    if rotational == "0":
        return StorageKind.SSD
    if rotational == "1" and "/usb" not in os.path.realpath(base):
        return StorageKind.HDD
    return StorageKind.UNKNOWN


def flash_writes(*, proc_root: str, sys_root: str) -> tuple[FlashWrites, ...]:
    """Bytes written since boot to each SD card or eMMC: sectors written (the 7th field of
    ``<sys>/block/mmcblkN/stat``) times 512, else from the 10th column of /proc/diskstats."""
    written: dict[str, int] = {}
    try:
        disks = sorted(os.listdir(os.path.join(sys_root, "block")))
    except OSError:
        disks = []
    for disk in disks:
        if not _MMC_DISK.fullmatch(disk):
            continue
        sectors = _field(read_text(os.path.join(sys_root, "block", disk, "stat")), 6)
        if sectors is not None:
            written[disk] = sectors * SECTOR_BYTES
    if not written:
        for line in (read_text(os.path.join(proc_root, "diskstats")) or "").splitlines():
            fields = line.split()
            if len(fields) >= 10 and _MMC_DISK.fullmatch(fields[2]):
                sectors = _field(line, 9)
                if sectors is not None:
                    written[fields[2]] = sectors * SECTOR_BYTES
    return tuple(
        FlashWrites(device=d, kind=storage_kind(d, sys_root=sys_root), written_bytes=n)
        for d, n in sorted(written.items())
    )


def _field(text: str | None, index: int) -> int | None:
    fields = (text or "").split()
    if len(fields) <= index or not fields[index].isdigit():
        return None
    return int(fields[index])
