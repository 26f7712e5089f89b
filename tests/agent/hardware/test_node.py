"""Labels, capacity and nodeInfo from a report."""

from __future__ import annotations

import re

import pytest

from agent.hardware import capacity, label_value, node_info, node_labels
from agent.hardware.report import CpuReport, StorageKind

from .fakes import GiB, report

LABEL_VALUE = re.compile(r"(?:[A-Za-z0-9](?:[-_.A-Za-z0-9]*[A-Za-z0-9])?)?")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        pytest.param("Raspberry Pi 4 Model B Rev 1.4", "Raspberry-Pi-4-Model-B-Rev-1.4", id="pi4"),
        pytest.param(
            "Raspberry Pi Compute Module 4 Rev 1.0",
            "Raspberry-Pi-Compute-Module-4-Rev-1.0",
            id="cm4",
        ),
        pytest.param("  (ODROID-N2+)  ", "ODROID-N2", id="punctuation-at-the-ends"),
        pytest.param("Xunlong Orange Pi 5 / Plus", "Xunlong-Orange-Pi-5-Plus", id="slash"),
        pytest.param("Ünïcode böard", "Unicode-board", id="accents"),
        pytest.param("板子 v2", "v2", id="no-ascii-equivalent"),
        pytest.param("a" * 70, "a" * 63, id="too-long"),
        pytest.param("x" * 62 + " yz", "x" * 62, id="cut-at-a-dash"),
        pytest.param("!!!", "", id="nothing-left"),
    ],
)
def test_label_value(text: str, value: str) -> None:
    assert label_value(text) == value
    assert len(value) <= 63
    assert LABEL_VALUE.fullmatch(value)


def test_labels_of_a_64_bit_pi() -> None:
    assert node_labels(report(hostname="Pi-Kitchen")) == {
        "kubernetes.io/arch": "arm64",
        "kubernetes.io/os": "linux",
        "kubernetes.io/hostname": "pi-kitchen",
        "bramble.io/board-model": "Raspberry-Pi-4-Model-B-Rev-1.4",
        "bramble.io/storage": "sdcard",
    }


@pytest.mark.parametrize(
    ("storage", "label"),
    [
        (StorageKind.EMMC, "emmc"),
        (StorageKind.SSD, "ssd"),
        (StorageKind.HDD, "hdd"),
        (StorageKind.UNKNOWN, "unknown"),
        (None, "unknown"),
    ],
)
def test_storage_label(storage: StorageKind | None, label: str) -> None:
    assert node_labels(report(root_storage=storage))["bramble.io/storage"] == label


def test_a_pc_has_no_board_model_label() -> None:
    labels = node_labels(report(board_model=None, architecture="amd64"))
    assert "bramble.io/board-model" not in labels
    assert labels["kubernetes.io/arch"] == "amd64"


def test_capacity() -> None:
    assert capacity(report()) == {
        "cpu": "4",
        "memory": f"{4 * GiB // 1024}Ki",
        "ephemeral-storage": f"{64 * GiB // 1024}Ki",
        "pods": "110",
    }
    assert capacity(report(), max_pods=20)["pods"] == "20"


def test_unknown_sizes_are_left_out_of_capacity() -> None:
    cpu = CpuReport(None, None, None, None, None, None, None)
    assert capacity(report(cpu=cpu, memory=None, data_disk=None)) == {"pods": "110"}


def test_node_info_uses_empty_strings_for_unknown() -> None:
    info = node_info(report(os_image=None, boot_id=None, machine_id=None, kernel_version=None))
    assert info == {
        "architecture": "arm64",
        "bootID": "",
        "kernelVersion": "",
        "machineID": "",
        "operatingSystem": "linux",
        "osImage": "",
    }
