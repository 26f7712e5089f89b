"""SchedulingGates: a gated pod does not enter the active queue."""

from __future__ import annotations

from controlplane.scheduler.plugins import scheduling_gates as sg
from tests.controlplane.scheduler.builders import info, pod


def test_gated_and_ungated() -> None:
    plugin = sg.SchedulingGates()
    assert plugin.pre_enqueue(info(pod())) is None
    status = plugin.pre_enqueue(info(pod(gates=["example.com/quota"])))
    assert status is not None
    assert status.message == "waiting for scheduling gates: ['example.com/quota']"
