"""Server-side printers: per kind, the columns and cells ``kubectl get`` shows.

Owns: one module per kind (or family of kinds), each a port of that kind's printer in
Kubernetes' pkg/printers/internalversion/printers.go, exporting a ``Printer`` (base.py);
the shared formatting (format.py) and ``duration.HumanDuration`` (duration.py). The
Table document and the kind -> printer table live in ``controlplane/apiserver/tables.py``.

Invariants: pure functions of (object, now): no I/O, no clock reads, no logging; the
input object is never mutated; a malformed field reads as its zero value instead of
raising, so one odd object cannot fail a whole list.

Concurrency: none; safe to call from any thread.
"""
