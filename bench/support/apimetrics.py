"""What the apiserver served during a phase, from its /metrics before and after: requests
by verb and resource (with the mean latency), and those it refused with 429. Tells which
component's writes the apiserver's time went to (pod creates by the ReplicaSet
controller, bindings by the scheduler, pod status by the agents, Events, Leases...)."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from api.client import ApiClient

_SAMPLE = re.compile(r"^(?P<name>[a-z_:]+)(\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

Key = tuple[str, str, str]  # verb, resource, subresource


@dataclass(frozen=True, slots=True)
class Snapshot:
    requests: dict[Key, float]
    seconds: dict[Key, float]  # the latency histogram's sum
    rejected: float  # answered 429 (too many requests in flight), before being counted


async def snapshot(client: ApiClient) -> Snapshot:
    text = await _get_text(client, "/metrics")
    requests: dict[Key, float] = defaultdict(float)
    seconds: dict[Key, float] = defaultdict(float)
    rejected = 0.0
    for line in text.splitlines():
        found = _SAMPLE.match(line)
        if found is None:
            continue
        name, value = found.group("name"), float(found.group("value"))
        labels = dict(_LABEL.findall(found.group("labels") or ""))
        key = (labels.get("verb", ""), labels.get("resource", ""), labels.get("subresource", ""))
        if name == "apiserver_request_total":
            requests[key] += value
        elif name == "apiserver_request_duration_seconds_sum":
            seconds[key] += value
        elif name == "apiserver_dropped_requests_total":
            rejected += value
    return Snapshot(requests, seconds, rejected)


async def _get_text(client: ApiClient, path: str) -> str:
    return (await client.request_bytes("GET", path)).decode()


def served(before: Snapshot, after: Snapshot, *, top: int = 12) -> list[str]:
    """Markdown lines: the ``top`` request kinds of the phase, by count."""
    counts = {k: n - before.requests.get(k, 0.0) for k, n in after.requests.items()}
    # Only the API's resources: the benchmark's own GET /metrics is left out.
    counts = {k: n for k, n in counts.items() if n > 0 and k[1]}
    lines = ["| requests (verb resource/subresource) | count | mean latency |", "|---|---|---|"]
    for key, count in sorted(counts.items(), key=lambda kv: -kv[1])[:top]:
        verb, res, sub = key
        spent = after.seconds.get(key, 0.0) - before.seconds.get(key, 0.0)
        what = f"{verb} {res}" + (f"/{sub}" if sub else "")
        lines.append(f"| {what} | {count:,.0f} | {spent / count * 1000:.0f} ms |")
    total = sum(counts.values())
    lines.append(f"| all | {total:,.0f} | |")
    if after.rejected > before.rejected:
        lines.append(
            f"| refused with 429 (too many in flight) | {after.rejected - before.rejected:,.0f} | |"
        )
    return lines
