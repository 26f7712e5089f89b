"""Leases: validation, as Kubernetes' ``ValidateLease``.

``leaseDurationSeconds`` above zero, ``leaseTransitions`` not negative, a known or
domain-qualified strategy, and a preferred holder only with a strategy.
``holderIdentity`` is free text, as in Kubernetes.
"""

from __future__ import annotations

from typing import Final

from api import validation as v
from api.errors import Cause
from controlplane.apiserver import kinds
from controlplane.apiserver.strategies.common import Obj, expect_map, get_map, is_int

LEASE_STRATEGIES: Final = ("OldestEmulationVersion",)


def validate_lease(lease: Obj, old: Obj | None) -> list[Cause]:
    spec = get_map(lease, "spec")
    causes = expect_map(lease, "spec", "spec")
    duration = spec.get("leaseDurationSeconds")
    if duration is not None and (not is_int(duration) or duration <= 0):
        causes.append(
            v.invalid_value("spec.leaseDurationSeconds", duration, detail="must be greater than 0")
        )
    transitions = spec.get("leaseTransitions")
    if transitions is not None and (not is_int(transitions) or transitions < 0):
        detail = "must be greater than or equal to 0"
        causes.append(v.invalid_value("spec.leaseTransitions", transitions, detail=detail))
    strategy = spec.get("strategy")
    if strategy is not None:
        if "/" not in str(strategy):
            if strategy not in LEASE_STRATEGIES:
                causes.append(
                    v.not_supported("spec.strategy.strategy", strategy, supported=LEASE_STRATEGIES)
                )
        else:
            causes += v.qualified_name(strategy, "spec.strategy.strategy")
    if spec.get("preferredHolder") and not strategy:
        causes.append(
            v.forbidden("spec.preferredHolder", "may only be specified if `strategy` is defined")
        )
    return causes


def register() -> None:
    kinds.register("coordination.k8s.io", "Lease", kinds.Strategy(validate=validate_lease))
