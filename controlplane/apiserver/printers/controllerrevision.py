"""apps/v1 ControllerRevisions: NAME CONTROLLER REVISION AGE, as Kubernetes'
``printControllerRevision``. The controller reads ``<kind>.<group>/<name>``
(``daemonset.apps/fluentd``), or ``<none>`` for a revision no controller owns."""

from __future__ import annotations

from datetime import datetime

from controlplane.apiserver.printers.base import AGE, NAME, Cell, Column, Obj, Printer
from controlplane.apiserver.printers.format import age, field_int, field_map, name

COLUMNS = (
    NAME,
    Column("Controller", "string", "Controller of the object"),
    Column(
        "Revision", "number", "Revision indicates the revision of the state represented by Data."
    ),
    AGE,
)


def controller_name(revision: Obj) -> str:
    """``formatResourceName`` of the controller reference: the lower-cased group kind."""
    refs = field_map(revision, "metadata").get("ownerReferences")
    for ref in refs if isinstance(refs, list) else []:
        if isinstance(ref, dict) and ref.get("controller") is True:
            group = str(ref.get("apiVersion") or "").rpartition("/")[0]
            kind = str(ref.get("kind") or "")
            qualified = f"{kind}.{group}" if group else kind
            return f"{qualified.lower()}/{ref.get('name') or ''}"
    return "<none>"


def _cells(revision: Obj, now: datetime) -> list[Cell]:
    return [
        name(revision),
        controller_name(revision),
        field_int(revision, "revision"),
        age(revision, now),
    ]


PRINTER = Printer(COLUMNS, _cells)
