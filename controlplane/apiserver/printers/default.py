"""Every other kind: NAME AGE.

This is what a custom resource without printer columns gets from the real apiserver, and
what kubectl shows for any list it gets without a Table. (Built-in kinds that have no
printer in Kubernetes, such as Roles, show NAME CREATED AT there instead; bramble serves
none of them.) The metrics.k8s.io kinds land here: ``kubectl top`` formats them itself.
"""

from __future__ import annotations

from datetime import datetime

from controlplane.apiserver.printers.base import AGE, NAME, Cell, Obj, Printer
from controlplane.apiserver.printers.format import age, name


def _cells(obj: Obj, now: datetime) -> list[Cell]:
    return [name(obj), age(obj, now)]


PRINTER = Printer((NAME, AGE), _cells)
