"""HardwareHealth as tables: under-voltage now filters (unless tolerated); throttling,
past under-voltage, memory cgroups, clocks and SD cards score down."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.scheduler.framework import Code
from controlplane.scheduler.plugins import hardware_health as hh
from tests.controlplane.scheduler.builders import cluster, filter_all, info, node, pod, scores

NOW = ("True", "UnderVoltageNow")
SINCE_BOOT = ("True", "UnderVoltageSinceBoot")
THROTTLED = ("True", "ThrottledNow")
UV = "bramble.io/under-voltage"


@pytest.mark.parametrize(
    ("voltage", "tolerations", "fits"),
    [
        (("False", "VoltageNormal"), [], True),
        (("Unknown", "NoVoltageSensor"), [], True),
        (SINCE_BOOT, [], True),  # scored down, not filtered
        (NOW, [], False),
        (NOW, [{"key": UV, "operator": "Exists", "effect": "NoSchedule"}], True),
        (NOW, [{"key": UV, "operator": "Exists"}], True),
        (NOW, [{"key": UV, "operator": "Exists", "effect": "NoExecute"}], False),
    ],
)  # fmt: skip
def test_filter(voltage: tuple[str, str], tolerations: list[dict[str, Any]], fits: bool) -> None:
    cache = cluster([node("pi", conditions={"UnderVoltage": voltage})])
    result = filter_all(hh.HardwareHealth(), info(pod(tolerations=tolerations)), cache)
    assert isinstance(result, dict)
    status = result["pi"]
    assert (status is None) is fits
    if status is not None:
        assert (status.reasons, status.code) == (
            ("node(s) were under-voltage",), Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
        )  # fmt: skip


@pytest.mark.parametrize(
    ("conditions", "labels", "writes", "expected"),
    [
        ({}, {}, False, 100),
        ({"ThermalThrottling": ("False", "TemperatureNormal")}, {}, False, 100),
        ({"ThermalThrottling": ("True", "ThrottledNow")}, {}, False, 50),
        ({"ThermalThrottling": ("True", "SoftTemperatureLimit")}, {}, False, 50),
        ({"ThermalThrottling": ("False", "ThrottledSinceBoot")}, {}, False, 90),
        ({"UnderVoltage": SINCE_BOOT}, {}, False, 60),
        ({"UnderVoltage": SINCE_BOOT, "ThermalThrottling": THROTTLED}, {}, False, 10),
        ({"MemoryCgroupDisabled": ("True", "MemoryControllerMissing")}, {}, False, 80),
        ({"ClockUnsynchronized": ("True", "ClockNotSynchronized")}, {}, False, 90),
        ({}, {"bramble.io/storage": "sdcard"}, False, 100),
        ({}, {"bramble.io/storage": "sdcard"}, True, 80),
        ({}, {"bramble.io/storage": "ssd"}, True, 100),
        ({"UnderVoltage": SINCE_BOOT, "ThermalThrottling": ("True", "ThrottledNow"),
          "MemoryCgroupDisabled": ("True", "")}, {}, False, 0),  # floored at 0
    ],
)  # fmt: skip
def test_score(
    conditions: dict[str, tuple[str, str]], labels: dict[str, str], writes: bool, expected: int
) -> None:
    cache = cluster([node("pi", conditions=conditions, labels=labels)])
    extra = {"volumes": [{"name": "scratch", "emptyDir": {}}]} if writes else None
    assert scores(hh.HardwareHealth(), info(pod(extra_spec=extra)), cache) == {"pi": expected}


def test_memory_backed_empty_dirs_do_not_wear_the_card() -> None:
    cache = cluster([node("pi", labels={"bramble.io/storage": "sdcard"})])
    tmpfs = {"volumes": [{"name": "scratch", "emptyDir": {"medium": "Memory"}}]}
    assert scores(hh.HardwareHealth(), info(pod(extra_spec=tmpfs)), cache) == {"pi": 100}
    assert scores(hh.HardwareHealth(), info(pod(requests={"ephemeral-storage": "1Gi"})), cache) == {
        "pi": 80
    }


def test_penalties_are_configurable_and_checked() -> None:
    cache = cluster([node("pi", conditions={"ThermalThrottling": ("True", "ThrottledNow")})])
    assert scores(hh.new({"penalties": {"throttling": 90}}, None), info(pod()), cache) == {"pi": 10}  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown penalties"):
        hh.HardwareHealth({"heat": 5})
    with pytest.raises(ValueError, match="0-100"):
        hh.HardwareHealth({"clock": 200})
