"""batch/v1 Jobs: NAME STATUS COMPLETIONS DURATION AGE | CONTAINERS IMAGES SELECTOR.

STATUS is the first that holds of: a True ``Complete`` condition, a True ``Failed``
condition, a deletionTimestamp (``Terminating``), a True ``Suspended`` condition, a True
``FailureTarget`` condition; else ``Running``. COMPLETIONS is ``succeeded/completions``,
or ``succeeded/1`` (``succeeded/1 of P`` with parallelism P > 1) for a job without
completions. DURATION runs from ``status.startTime`` to ``completionTime`` or now, and
is empty before the job starts.
"""

from __future__ import annotations

from datetime import datetime

from controlplane.apiserver.printers.base import (
    AGE,
    CONTAINERS,
    IMAGES,
    NAME,
    Cell,
    Column,
    Obj,
    Printer,
)
from controlplane.apiserver.printers.duration import human_duration
from controlplane.apiserver.printers.format import (
    age,
    container_cells,
    field_int,
    field_list,
    field_map,
    format_label_selector,
    name,
    optional_map,
    parse_time,
    template_spec,
)

COLUMNS = (
    NAME,
    Column("Status", "string", "Status of the job."),
    Column(
        "Completions",
        "string",
        "The number of pods which reached phase Succeeded. The value increases monotonically "
        "for a given spec.",
    ),
    Column("Duration", "string", "Time required to complete the job."),
    AGE,
    CONTAINERS,
    IMAGES,
    Column(
        "Selector",
        "string",
        "A label query over pods that should match the pod count. Normally, the system sets "
        "this field for you.",
        priority=1,
    ),
)


def _condition(status: Obj, kind: str) -> bool:
    """hasJobCondition: the first condition of this type decides."""
    for condition in field_list(status, "conditions"):
        if condition.get("type") == kind:
            return condition.get("status") == "True"
    return False


def status(job: Obj) -> str:
    job_status = field_map(job, "status")
    if _condition(job_status, "Complete"):
        return "Complete"
    if _condition(job_status, "Failed"):
        return "Failed"
    if field_map(job, "metadata").get("deletionTimestamp") is not None:
        return "Terminating"
    if _condition(job_status, "Suspended"):
        return "Suspended"
    if _condition(job_status, "FailureTarget"):
        return "FailureTarget"
    return "Running"


def completions(job: Obj) -> str:
    spec, succeeded = field_map(job, "spec"), field_int(field_map(job, "status"), "succeeded")
    if isinstance(spec.get("completions"), int):
        return f"{succeeded}/{field_int(spec, 'completions')}"
    parallelism = field_int(spec, "parallelism")
    if parallelism > 1:
        return f"{succeeded}/1 of {parallelism}"
    return f"{succeeded}/1"


def duration(job: Obj, now: datetime) -> str:
    job_status = field_map(job, "status")
    started = parse_time(job_status.get("startTime"))
    if started is None:
        return ""
    finished = parse_time(job_status.get("completionTime"))
    return human_duration((finished or now) - started)


def _cells(job: Obj, now: datetime) -> list[Cell]:
    names, images = container_cells(template_spec(job))
    return [
        name(job),
        status(job),
        completions(job),
        duration(job, now),
        age(job, now),
        names,
        images,
        format_label_selector(optional_map(field_map(job, "spec"), "selector")),
    ]


PRINTER = Printer(COLUMNS, _cells)
