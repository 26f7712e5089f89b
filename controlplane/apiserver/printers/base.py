"""The shape of a printer: its columns, and the function that turns an object into cells.

``Column`` mirrors ``metav1.TableColumnDefinition``. Column names, types, formats and
priorities are copied from Kubernetes' printers (pkg/printers/internalversion/printers.go);
so are the descriptions written there as literals. Those the real printers take from the
API's Swagger docs are quoted here from those docs; kubectl never displays descriptions.

A column's ``type`` is what the real printer declares, even where its cells are of
another JSON type (the Deployment "Up-to-date" column is declared a string and holds
integers): kubectl prints cells as they come, and matching the wire exactly is the point.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

Cell = str | int
"""One table cell: the real printers emit strings and int64s (and booleans for kinds
bramble does not serve)."""

Obj = Mapping[str, Any]


class ColumnDefinition(TypedDict):
    """``metav1.TableColumnDefinition`` on the wire."""

    name: str
    type: str
    format: str
    description: str
    priority: int


class RowCondition(TypedDict):
    """``metav1.TableRowCondition`` on the wire (only Pods carry one: Completed)."""

    type: str
    status: str
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a kind's table. ``priority`` 0 is always shown; 1 only with ``-o wide``."""

    name: str
    type: str
    description: str
    format: str = ""
    priority: int = 0

    def definition(self) -> ColumnDefinition:
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }


@dataclass(frozen=True, slots=True)
class Printer:
    """A kind's columns and its row function.

    ``cells(obj, now)`` returns one cell per column, wide ones included: the real
    apiserver always prints with ``Wide: true`` and lets kubectl hide priority-1 columns.
    ``conditions(obj)`` returns the row's conditions, when the kind has any.
    """

    columns: tuple[Column, ...]
    cells: Callable[[Obj, datetime], list[Cell]]
    conditions: Callable[[Obj], list[RowCondition]] | None = None


NAME_DESCRIPTION = (
    "Name must be unique within a namespace. Is required when creating resources, although "
    "some resources may allow a client to request the generation of an appropriate name "
    "automatically. Name is primarily intended for creation idempotence and configuration "
    "definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
AGE_DESCRIPTION = (
    "CreationTimestamp is a timestamp representing the server time when this object was "
    "created. It is not guaranteed to be set in happens-before order across separate "
    "operations. Clients may not set this value. It is represented in RFC3339 form and is in "
    "UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)

# The Name column's format "name" is what lets kubectl prefix names with the kind
# ("pod/web-1") when it prints several kinds, and find the name for -o name.
NAME = Column("Name", "string", NAME_DESCRIPTION, format="name")
AGE = Column("Age", "string", AGE_DESCRIPTION)
CONTAINERS = Column("Containers", "string", "Names of each container in the template.", priority=1)
IMAGES = Column(
    "Images", "string", "Images referenced by each container in the template.", priority=1
)
