"""Server-side printing: ``meta.k8s.io/v1`` Tables, so ``kubectl get`` shows the columns a
real Kubernetes apiserver would.

kubectl asks for a Table (``Accept: application/json;as=Table;v=v1;g=meta.k8s.io``) on
every ``get`` and ``get -w``; without one it can only print NAME and AGE. The columns and
cells come from the per-kind printers in ``printers/``; this module picks the printer
for a (group, kind) and builds the document::

    {"kind": "Table", "apiVersion": "meta.k8s.io/v1",
     "metadata": {"resourceVersion": "111", "continue": "..."},
     "columnDefinitions": [{"name": "Name", "type": "string", "format": "name", ...}, ...],
     "rows": [{"cells": ["web-1", "1/1", "Running", "0", "5m", ...],
               "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                          "metadata": {...}}}]}

Every row carries every column's cell, wide ones included, as the real apiserver's do;
kubectl hides the priority-1 columns unless ``-o wide``. ``rows[].object`` is what lets
kubectl print the NAMESPACE column (``-A``), ``--show-labels`` and ``-L``: by default it
is the object's metadata as a PartialObjectMetadata (``includeObject=Metadata``), which is
also what the real apiserver does when the client (as kubectl) does not ask.

For a watch with the Table Accept, each event's object is a one-row Table: call
``table()`` with ``[obj]`` and the object's resourceVersion.

The document shares structure with the input objects (metadata, or the whole object for
``includeObject=Object``) rather than copying it: it exists to be serialized at once, and
copying every pod's metadata on each list would cost a Pi real time. Do not mutate it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Final, NotRequired, TypedDict

from api.errors import BadRequest
from controlplane.apiserver.printers import (
    apps,
    config,
    controllerrevision,
    default,
    event,
    job,
    lease,
    namespace,
    node,
    pod,
    service,
)
from controlplane.apiserver.printers.base import (
    Cell,
    Column,
    ColumnDefinition,
    Printer,
    RowCondition,
)

__all__ = [
    "INCLUDE_OBJECT_VALUES",
    "Cell",
    "Column",
    "ColumnDefinition",
    "Printer",
    "RowCondition",
    "Table",
    "TableRow",
    "columns",
    "printer",
    "row",
    "table",
]

TABLE_API_VERSION: Final = "meta.k8s.io/v1"
"""Of the Table and of the PartialObjectMetadata in its rows."""

_PRINTERS: Final[Mapping[tuple[str, str], Printer]] = {
    ("", "Pod"): pod.PRINTER,
    ("", "Node"): node.PRINTER,
    ("", "Namespace"): namespace.PRINTER,
    ("", "Service"): service.SERVICE,
    ("", "Endpoints"): service.ENDPOINTS,
    ("", "ConfigMap"): config.CONFIGMAP,
    ("", "Secret"): config.SECRET,
    ("", "Event"): event.PRINTER,
    ("apps", "Deployment"): apps.DEPLOYMENT,
    ("apps", "ReplicaSet"): apps.REPLICASET,
    ("apps", "DaemonSet"): apps.DAEMONSET,
    ("apps", "ControllerRevision"): controllerrevision.PRINTER,
    ("batch", "Job"): job.PRINTER,
    ("coordination.k8s.io", "Lease"): lease.PRINTER,
}

INCLUDE_OBJECT_VALUES: Final = ("Object", "Metadata", "None")
"""The values of ``?includeObject=``; an empty value means Metadata, as in Kubernetes."""


class TableRow(TypedDict):
    """``metav1.TableRow`` on the wire."""

    cells: list[Cell]
    conditions: NotRequired[list[RowCondition]]
    object: NotRequired[Mapping[str, Any]]


# "continue" is a Python keyword, hence the functional form.
TableMeta = TypedDict("TableMeta", {"resourceVersion": str, "continue": str}, total=False)


class Table(TypedDict):
    """``metav1.Table`` on the wire."""

    kind: str
    apiVersion: str
    metadata: TableMeta
    columnDefinitions: list[ColumnDefinition]
    rows: list[TableRow]


def printer(group: str, kind: str) -> Printer:
    """The printer for a kind (``""`` is the core group); NAME AGE for kinds without one."""
    return _PRINTERS.get((group, kind), default.PRINTER)


def columns(group: str, kind: str) -> list[Column]:
    """The kind's columns, in wire order, wide (priority 1) ones included."""
    return list(printer(group, kind).columns)


def row(group: str, kind: str, obj: Mapping[str, Any], *, now: datetime) -> list[Cell]:
    """One object's cells, one per column of ``columns(group, kind)``.

    ``now`` is the instant ages are measured from; pass one value for a whole list, so
    every row of a Table agrees.
    """
    return printer(group, kind).cells(obj, now)


def table(
    group: str,
    kind: str,
    objects: Iterable[Mapping[str, Any]],
    *,
    now: datetime,
    resource_version: str,
    include_object: str = "Metadata",
    continue_token: str | None = None,
) -> Table:
    """The ``meta.k8s.io/v1`` Table for a list (or, with one object, a get or watch event).

    ``include_object`` is the request's ``includeObject``: ``Metadata`` (the default, and
    what ``""`` means) puts a PartialObjectMetadata in each row, ``Object`` the whole
    object, ``None`` nothing. Any other value raises BadRequest (400), with the real
    apiserver's message.
    """
    if include_object not in INCLUDE_OBJECT_VALUES and include_object != "":
        raise BadRequest(f'unrecognized includeObject value: "{include_object}"')
    kind_printer = printer(group, kind)
    rows: list[TableRow] = []
    for obj in objects:
        table_row: TableRow = {"cells": kind_printer.cells(obj, now)}
        if kind_printer.conditions is not None and (found := kind_printer.conditions(obj)):
            table_row["conditions"] = found
        if include_object == "Object":
            table_row["object"] = obj
        elif include_object != "None":
            table_row["object"] = _partial_object_metadata(obj)
        rows.append(table_row)
    metadata: TableMeta = {}
    if resource_version:
        metadata["resourceVersion"] = resource_version
    if continue_token:
        metadata["continue"] = continue_token
    return {
        "kind": "Table",
        "apiVersion": TABLE_API_VERSION,
        "metadata": metadata,
        "columnDefinitions": [column.definition() for column in kind_printer.columns],
        "rows": rows,
    }


def _partial_object_metadata(obj: Mapping[str, Any]) -> dict[str, Any]:
    metadata = obj.get("metadata")
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": TABLE_API_VERSION,
        "metadata": metadata if isinstance(metadata, Mapping) else {},
    }
