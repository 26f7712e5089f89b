"""Garbage-collector settings for bramble's long-running processes.

CPython's cyclic collector runs after every 700 net allocations and, every so often,
walks every tracked object: in the apiserver under the load of bench/api.py (1000 nodes,
3000 pods, 1000 watches) that meant a 12-34 ms pause every few seconds and 50-160 ms
pauses several times a minute, with the event loop stopped: exactly the requests' p99
and max latencies. Almost nothing it finds is garbage (objects are freed by reference
counting as soon as they are dropped; collected=0 in nearly every run), so collect far
less often, and move what exists once the process has started (modules, the loaded
watch cache) out of the collector's sight with ``gc.freeze()``: frozen objects are still
freed by reference counting, only never scanned for cycles.
"""

from __future__ import annotations

import gc
from typing import Final

# Generation 0 after 50,000 net allocations (700 by default), generation 1 after 20 of
# those, generation 2 after 100 of generation 1 (and CPython's own 25 % rule).
THRESHOLDS: Final = (50_000, 20, 100)


def tune() -> None:
    """Collect less often; call once at start."""
    gc.set_threshold(*THRESHOLDS)


def freeze() -> None:
    """Once started: collect what start-up left, and stop scanning the survivors."""
    gc.collect()
    gc.freeze()
