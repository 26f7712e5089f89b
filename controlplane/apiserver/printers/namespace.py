"""Namespaces: NAME STATUS AGE, STATUS being the phase (``Active`` or ``Terminating``)."""

from __future__ import annotations

from datetime import datetime

from controlplane.apiserver.printers.base import AGE, NAME, Cell, Column, Obj, Printer
from controlplane.apiserver.printers.format import age, field_map, field_str, name

COLUMNS = (NAME, Column("Status", "string", "The status of the namespace"), AGE)


def _cells(namespace: Obj, now: datetime) -> list[Cell]:
    phase = field_str(field_map(namespace, "status"), "phase") or "Active"  # the v1 default
    return [name(namespace), phase, age(namespace, now)]


PRINTER = Printer(COLUMNS, _cells)
