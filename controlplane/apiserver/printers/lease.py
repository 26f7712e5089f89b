"""coordination.k8s.io Leases: NAME HOLDER AGE (the holder is empty when released)."""

from __future__ import annotations

from datetime import datetime

from controlplane.apiserver.printers.base import AGE, NAME, Cell, Column, Obj, Printer
from controlplane.apiserver.printers.format import age, field_map, field_str, name

COLUMNS = (
    NAME,
    Column(
        "Holder", "string", "holderIdentity contains the identity of the holder of a current lease."
    ),
    AGE,
)


def _cells(lease: Obj, now: datetime) -> list[Cell]:
    return [name(lease), field_str(field_map(lease, "spec"), "holderIdentity"), age(lease, now)]


PRINTER = Printer(COLUMNS, _cells)
