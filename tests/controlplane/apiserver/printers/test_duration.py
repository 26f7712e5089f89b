"""duration.HumanDuration at every boundary of its rule table, and the AGE cell."""

from __future__ import annotations

from datetime import timedelta

import pytest

from controlplane.apiserver import tables
from controlplane.apiserver.printers.duration import human_duration
from tests.controlplane.apiserver.builders import NOW, Obj, ago


@pytest.mark.parametrize(
    ("d", "text"),
    [
        pytest.param(timedelta(seconds=-3), "<invalid>", id="-3s"),
        pytest.param(timedelta(seconds=-2), "<invalid>", id="-2s"),
        pytest.param(timedelta(seconds=-1.5), "0s", id="-1.5s-truncates-to--1"),
        pytest.param(timedelta(seconds=-1), "0s", id="-1s"),
        pytest.param(timedelta(milliseconds=-300), "0s", id="-0.3s"),
        pytest.param(timedelta(0), "0s", id="0"),
        pytest.param(timedelta(seconds=59), "59s", id="59s"),
        pytest.param(timedelta(seconds=60), "60s", id="60s-still-seconds"),
        pytest.param(timedelta(seconds=119, milliseconds=999), "119s", id="119.999s"),
        pytest.param(timedelta(minutes=2), "2m", id="2m"),
        pytest.param(timedelta(minutes=2, seconds=1), "2m1s", id="2m1s"),
        pytest.param(timedelta(minutes=9, seconds=59), "9m59s", id="9m59s"),
        pytest.param(timedelta(minutes=10, seconds=59), "10m", id="10m59s-drops-seconds"),
        pytest.param(timedelta(hours=1), "60m", id="1h-is-60m"),
        pytest.param(timedelta(minutes=179, seconds=59), "179m", id="179m59s"),
        pytest.param(timedelta(hours=3), "3h", id="3h"),
        pytest.param(timedelta(hours=3, minutes=1), "3h1m", id="3h1m"),
        pytest.param(timedelta(hours=7, minutes=59), "7h59m", id="7h59m"),
        pytest.param(timedelta(hours=8, minutes=30), "8h", id="8h30m-drops-minutes"),
        pytest.param(timedelta(hours=47, minutes=59), "47h", id="47h59m"),
        pytest.param(timedelta(hours=48), "2d", id="48h"),
        pytest.param(timedelta(hours=49), "2d1h", id="49h"),
        pytest.param(timedelta(days=7, hours=23), "7d23h", id="7d23h"),
        pytest.param(timedelta(days=8, hours=5), "8d", id="8d5h-drops-hours"),
        pytest.param(timedelta(days=729), "729d", id="729d"),
        pytest.param(timedelta(days=730), "2y", id="730d"),
        pytest.param(timedelta(days=731), "2y1d", id="731d"),
        pytest.param(timedelta(days=8 * 365 - 1), "7y364d", id="8y-less-1d"),
        pytest.param(timedelta(days=8 * 365), "8y", id="8y"),
        pytest.param(timedelta(days=20 * 365 + 100), "20y", id="20y100d"),
    ],
)
def test_human_duration(d: timedelta, text: str) -> None:
    assert human_duration(d) == text


@pytest.mark.parametrize(
    ("metadata", "cell"),
    [
        pytest.param({}, "<unknown>", id="no-creation-timestamp"),
        pytest.param({"creationTimestamp": None}, "<unknown>", id="null"),
        pytest.param({"creationTimestamp": "yesterday"}, "<unknown>", id="garbage"),
        pytest.param({"creationTimestamp": ago(seconds=-5)}, "<invalid>", id="future"),
        pytest.param({"creationTimestamp": "2025-06-01T11:59:30.123456Z"}, "29s", id="fraction"),
        pytest.param({"creationTimestamp": "2025-06-01T13:58:00+02:00"}, "2m", id="offset"),
        pytest.param({"creationTimestamp": "2025-06-01T11:58:00"}, "2m", id="naive-is-utc"),
    ],
)
def test_age_cell(metadata: Obj, cell: str) -> None:
    obj = {"metadata": {"name": "x", **metadata}}
    assert tables.row("", "ConfigMap", obj, now=NOW) == ["x", 0, cell]
