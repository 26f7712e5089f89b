"""The firmware's get_throttled word: parsing both sources, and decoding its bits."""

from __future__ import annotations

import pytest

from agent.hardware.pi import parse_sysfs_throttled, parse_vcgencmd_throttled
from agent.hardware.report import Throttled, ThrottledBit

UV, CAP, THR, SOFT = (
    ThrottledBit.UNDER_VOLTAGE,
    ThrottledBit.ARM_FREQUENCY_CAPPED,
    ThrottledBit.THROTTLED,
    ThrottledBit.SOFT_TEMPERATURE_LIMIT,
)


@pytest.mark.parametrize(
    ("raw", "now", "since_boot"),
    [
        pytest.param(0x0, set(), set(), id="healthy"),
        pytest.param(0x1, {UV}, set(), id="under-voltage-now"),
        pytest.param(0x2, {CAP}, set(), id="frequency-capped-now"),
        pytest.param(0x4, {THR}, set(), id="throttled-now"),
        pytest.param(0x8, {SOFT}, set(), id="soft-limit-now"),
        pytest.param(0x10000, set(), {UV}, id="under-voltage-since-boot"),
        pytest.param(0x20000, set(), {CAP}, id="capped-since-boot"),
        pytest.param(0x40000, set(), {THR}, id="throttled-since-boot"),
        pytest.param(0x80000, set(), {SOFT}, id="soft-limit-since-boot"),
        pytest.param(0x50000, set(), {UV, THR}, id="0x50000-under-voltage-and-throttled-earlier"),
        pytest.param(0x50005, {UV, THR}, {UV, THR}, id="0x50005-both-now-and-earlier"),
        pytest.param(0xE0000, set(), {CAP, THR, SOFT}, id="0xe0000-overheated-earlier"),
        pytest.param(0xF000F, {UV, CAP, THR, SOFT}, {UV, CAP, THR, SOFT}, id="everything"),
        pytest.param(0xFFF0, set(), set(), id="unassigned-bits-ignored"),
    ],
)
def test_bits(raw: int, now: set[ThrottledBit], since_boot: set[ThrottledBit]) -> None:
    t = Throttled(raw=raw, source="vcgencmd")
    assert {b for b in ThrottledBit if t.now(b)} == now
    assert {b for b in ThrottledBit if t.since_boot(b)} == since_boot
    assert t.under_voltage_now == (UV in now)
    assert t.frequency_capped_now == (CAP in now)
    assert t.throttled_now == (THR in now)
    assert t.soft_temperature_limit_now == (SOFT in now)
    assert t.under_voltage_since_boot == (UV in since_boot)
    assert t.throttled_since_boot == (THR in since_boot)
    assert t.soft_temperature_limit_since_boot == (SOFT in since_boot)


def test_it_prints_as_vcgencmd_does() -> None:
    assert str(Throttled(raw=0x50005, source="sysfs")) == "throttled=0x50005"


@pytest.mark.parametrize(
    ("output", "raw"),
    [
        pytest.param("throttled=0x50005\n", 0x50005, id="usual"),
        pytest.param("throttled=0x0\n", 0, id="healthy"),
        pytest.param("throttled=0xe0000", 0xE0000, id="lower-case-hex"),
        pytest.param("throttled=0", 0, id="decimal-zero"),
        pytest.param("VCHI initialization failed", None, id="no-firmware-access"),
        pytest.param("throttled=", None, id="empty-value"),
        pytest.param("", None, id="nothing"),
    ],
)
def test_vcgencmd_output(output: str, raw: int | None) -> None:
    assert parse_vcgencmd_throttled(output) == raw


@pytest.mark.parametrize(
    ("text", "raw"),
    [
        pytest.param("50005\n", 0x50005, id="hex-without-prefix"),
        pytest.param("0", 0, id="zero"),
        pytest.param("e0000", 0xE0000, id="lower-case"),
        pytest.param("N/A", None, id="garbage"),
        pytest.param("", None, id="empty"),
    ],
)
def test_sysfs_text(text: str, raw: int | None) -> None:
    assert parse_sysfs_throttled(text) == raw
