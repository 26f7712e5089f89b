"""What the Node object says about the hardware, besides conditions: labels, capacity and
the hardware part of nodeInfo. Pure functions of a ``HardwareReport``.

Labels: ``kubernetes.io/arch``, ``kubernetes.io/os`` and ``kubernetes.io/hostname`` as
the kubelet sets them, and bramble's ``bramble.io/board-model`` (when known),
``bramble.io/storage`` (sdcard, emmc, ssd, hdd or unknown: what holds "/") and
``bramble.io/arch-variant`` (v6/v7 on 32-bit ARM, which images must match).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from agent.hardware.report import HardwareReport, StorageKind

LABEL_ARCH: Final = "kubernetes.io/arch"
LABEL_OS: Final = "kubernetes.io/os"
LABEL_HOSTNAME: Final = "kubernetes.io/hostname"
LABEL_BOARD_MODEL: Final = "bramble.io/board-model"
LABEL_STORAGE: Final = "bramble.io/storage"
LABEL_ARCH_VARIANT: Final = "bramble.io/arch-variant"

DEFAULT_MAX_PODS: Final = 110  # the kubelet's default --max-pods

# A label value: at most 63 characters of [A-Za-z0-9._-], starting and ending with an
# alphanumeric character (or empty).
_LABEL_VALUE_MAX: Final = 63
_NOT_IN_LABEL = re.compile(r"[^A-Za-z0-9._-]+")


def label_value(text: str) -> str:
    """``text`` made into a valid label value: "Raspberry Pi 4 Model B Rev 1.4" ->
    "Raspberry-Pi-4-Model-B-Rev-1.4". Accents are dropped ("é" -> "e"). May be empty."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    value = _NOT_IN_LABEL.sub("-", ascii_text).strip("-_.")
    return value[:_LABEL_VALUE_MAX].rstrip("-_.")


def node_labels(report: HardwareReport) -> dict[str, str]:
    labels = {
        LABEL_ARCH: report.architecture,
        LABEL_OS: report.operating_system,
        LABEL_HOSTNAME: label_value(report.hostname.lower()),
        LABEL_STORAGE: (report.root_storage or StorageKind.UNKNOWN).value,
    }
    if report.architecture_variant:
        labels[LABEL_ARCH_VARIANT] = report.architecture_variant
    model = label_value(report.board_model or "")
    if model:
        labels[LABEL_BOARD_MODEL] = model
    return labels


def capacity(report: HardwareReport, *, max_pods: int = DEFAULT_MAX_PODS) -> dict[str, str]:
    """Node capacity as the kubelet writes it: cpu as a count of logical CPUs, memory and
    ephemeral-storage (the data directory's filesystem) in Ki. A resource whose size is
    unknown is left out rather than reported as zero."""
    result: dict[str, str] = {}
    if report.cpu.count:
        result["cpu"] = str(report.cpu.count)
    if report.memory is not None:
        result["memory"] = f"{report.memory.total_bytes // 1024}Ki"
    if report.data_disk is not None:
        result["ephemeral-storage"] = f"{report.data_disk.total_bytes // 1024}Ki"
    result["pods"] = str(max_pods)
    return result


def node_info(report: HardwareReport) -> dict[str, str]:
    """The hardware fields of ``status.nodeInfo`` (the agent adds the runtime and its own
    version). NodeSystemInfo's fields are required strings, so unknown is ""."""
    return {
        "architecture": report.architecture,
        "bootID": report.boot_id or "",
        "kernelVersion": report.kernel_version or "",
        "machineID": report.machine_id or "",
        "operatingSystem": report.operating_system,
        "osImage": report.os_image or "",
    }
