"""core/v1 Events, as ``printEvent`` prints them.

The columns are LAST SEEN, TYPE, REASON, OBJECT, MESSAGE, and with ``-o wide`` also
SUBOBJECT, SOURCE, FIRST SEEN, COUNT and NAME, interleaved in this order on the wire:
Last Seen, Type, Reason, Object, Subobject*, Source*, Message, First Seen*, Count*,
Name* (* = priority 1). There is no Age column, and Name is last.

FIRST SEEN falls back to ``eventTime`` (events.k8s.io-style events); LAST SEEN to first
seen, or to ``series.lastObservedTime`` for a series, whose count also wins; a count of 0
prints as 1. OBJECT is ``<kind in lower case>/<name>``.
"""

from __future__ import annotations

from datetime import datetime

from controlplane.apiserver.printers.base import NAME_DESCRIPTION, Cell, Column, Obj, Printer
from controlplane.apiserver.printers.format import (
    field_int,
    field_map,
    field_str,
    name,
    optional_map,
    since,
)

COLUMNS = (
    Column(
        "Last Seen",
        "string",
        "The time at which the most recent occurrence of this event was recorded.",
    ),
    Column(
        "Type",
        "string",
        "Type of this event (Normal, Warning), new types could be added in the future",
    ),
    Column(
        "Reason",
        "string",
        "This should be a short, machine understandable string that gives the reason for the "
        "transition into the object's current status.",
    ),
    Column("Object", "string", "The object that this event is about."),
    Column(
        "Subobject",
        "string",
        "If referring to a piece of an object instead of an entire object, this string should "
        "contain a valid JSON/Go field access statement, such as "
        "desiredState.manifest.containers[2].",
        priority=1,
    ),
    Column(
        "Source",
        "string",
        "The component reporting this event. Should be a short machine understandable string.",
        priority=1,
    ),
    Column("Message", "string", "A human-readable description of the status of this operation."),
    Column(
        "First Seen",
        "string",
        "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
        priority=1,
    ),
    Column("Count", "string", "The number of times this event has occurred.", priority=1),
    Column("Name", "string", NAME_DESCRIPTION, format="name", priority=1),
)


def source(event: Obj) -> str:
    """formatEventSource: component (or reportingController), then host (or instance)."""
    event_source = field_map(event, "source")
    component = field_str(event_source, "component") or field_str(event, "reportingController")
    host = field_str(event_source, "host") or field_str(event, "reportingInstance")
    return f"{component}, {host}" if host else component


def _cells(event: Obj, now: datetime) -> list[Cell]:
    if event.get("firstTimestamp"):
        first_seen = since(event.get("firstTimestamp"), now)
    else:
        first_seen = since(event.get("eventTime"), now)
    last_seen = since(event.get("lastTimestamp"), now) if event.get("lastTimestamp") else first_seen
    count = field_int(event, "count")
    series = optional_map(event, "series")
    if series is not None:
        last_seen = since(series.get("lastObservedTime"), now)
        count = field_int(series, "count")
    elif count == 0:
        count = 1  # singleton events of the new API leave count unset
    involved = field_map(event, "involvedObject")
    kind = field_str(involved, "kind").lower()
    involved_name = field_str(involved, "name")
    return [
        last_seen,
        field_str(event, "type"),
        field_str(event, "reason"),
        f"{kind}/{involved_name}" if involved_name else kind,
        field_str(involved, "fieldPath"),
        source(event),
        field_str(event, "message").strip(),
        first_seen,
        count,
        name(event),
    ]


PRINTER = Printer(COLUMNS, _cells)
