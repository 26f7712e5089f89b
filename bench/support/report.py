"""The apiserver benchmark's results: watch deliveries joined from two processes' clocks,
the Markdown tables, and a verdict per target."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.support import profile
from bench.support.load import Call, Write
from bench.support.stats import ms, pct
from bench.support.watchers import WatchLog


@dataclass(frozen=True, slots=True)
class Target:
    text: str
    verbs: tuple[str, ...]  # "watch" is watch delivery
    limit: float  # p99, seconds


@dataclass(frozen=True, slots=True)
class Measured:
    calls: list[Call]
    delays: list[float]  # watch deliveries, inf for one that never came
    logs: list[WatchLog]
    skipped_renewals: int
    rss_small: int  # bytes
    rss_ready: int  # when the window starts
    rss_end: int
    rss_peak: int
    cpu: dict[str, float]  # share of one core in the window, by process
    lag: dict[str, tuple[float, float]]  # p99, max event-loop lag by load process
    complaints: list[str]  # WARNING/ERROR lines of the server log

    def samples(self, verb: str) -> tuple[list[float], int]:
        """(latencies of the successful calls, number of failed calls)."""
        if verb == "watch":
            return self.delays, 0
        calls = [c for c in self.calls if c.verb == verb]
        good = [c.seconds for c in calls if not c.error]
        return good, len(calls) - len(good)


def deliveries(writes: Sequence[Write], logs: Sequence[WatchLog]) -> list[float]:
    """For each write and each watch that should see it (every watch of the resource
    without a selector, and the one for the write's node): seconds from the writer
    reading the answer to the watcher reading the event; 0 if the event came first,
    inf if it never came."""
    by_key: dict[tuple[str, str], list[dict[int, float]]] = {}
    for log in logs:
        by_key.setdefault(log.spec.key, []).append(log.arrivals)
    delays: list[float] = []
    for write in writes:
        for key in ((write.resource, "*"), (write.resource, write.node)):
            for arrivals in by_key.get(key, ()):
                arrived = arrivals.get(write.revision)
                delays.append(math.inf if arrived is None else max(0.0, arrived - write.answered))
    return delays


def mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def latency_table(m: Measured, rows: Sequence[tuple[str, str]]) -> list[str]:
    lines = ["| call | requests | errors | p50 | p99 | max |", "|---|---|---|---|---|---|"]
    for verb, label in rows:
        calls = [c for c in m.calls if c.verb == verb]
        good, _ = m.samples(verb)
        good = good or [math.inf]
        lines.append(
            f"| {label} | {len(calls):,} | {_errors(calls)} | {ms(pct(good, 0.5))} "
            f"| {ms(pct(good, 0.99))} | {ms(max(good))} |"
        )
    delays = m.delays or [math.inf]
    lost = sum(1 for d in m.delays if math.isinf(d))
    lines.append(
        f"| watch delivery (write answered → event read) | {len(m.delays):,} events "
        f"| {lost:,} undelivered | {ms(pct(delays, 0.5))} | {ms(pct(delays, 0.99))} "
        f"| {ms(max(delays))} |"
    )
    return lines


def measures_table(m: Measured, *, small: str, ready: str, end: str) -> list[str]:
    """``small``, ``ready`` and ``end`` say what the server held at the memory readings."""
    load_cpu = ", ".join(f"{k} {v:.0%}" for k, v in m.cpu.items() if k != "server")
    # "everything else" is not ours: other processes of a shared machine, py-spy.
    lag = ", ".join(f"{k} {ms(p)} / {ms(x)}" for k, (p, x) in m.lag.items())
    received = sum(len(log.arrivals) for log in m.logs)
    bookmarks = sum(log.bookmarks for log in m.logs)
    reopened = sum(log.restarts for log in m.logs)
    return [
        "| measure | value |",
        "|---|---|",
        f"| server RSS, {small}, idle | {mb(m.rss_small)} |",
        f"| server RSS, {ready}, before the window | {mb(m.rss_ready)} |",
        f"| server RSS at the end: {end} | {mb(m.rss_end)} (peak {mb(m.rss_peak)}) |",
        f"| server CPU in the window | {m.cpu['server']:.0%} of a core |",
        f"| load (and other) CPU in the window, share of a core | {load_cpu} |",
        f"| load event-loop lag p99 / max | {lag} |",
        f"| watch events read (whole run) | {received:,}; {bookmarks:,} bookmarks; "
        f"{reopened} streams reopened |",
        f"| lease renewals skipped (the previous one still in flight) | {m.skipped_renewals} |",
        f"| WARNING/ERROR lines in the server log | {len(m.complaints)} |",
    ]


def verdict(target: Target, m: Measured) -> str:
    parts: list[str] = []
    met = True
    for verb in target.verbs:
        samples, failed = m.samples(verb)
        p99 = pct(samples, 0.99) if samples else math.inf
        met = met and p99 < target.limit and failed == 0
        parts.append(f"{verb} {ms(p99)}" + (f", {failed} failed" if failed else ""))
    return f"- {target.text}: {'met' if met else 'NOT MET'} ({'; '.join(parts)})"


def profile_table(folded: Path, seconds: float) -> list[str]:
    samples, rows = profile.summary(folded)
    held = samples / profile.RATE / seconds
    return [
        f"server profile (py-spy --gil, {folded}): {samples:,} samples holding the GIL, "
        f"i.e. running Python {held:.0%} of the window",
        "",
        "| function (self time, top 15) | self | total |",
        "|---|---|---|",
        *(f"| {r.function} | {r.self_share:.1%} | {r.total_share:.1%} |" for r in rows),
    ]


def _errors(calls: Sequence[Call]) -> str:
    kinds = Counter(c.error for c in calls if c.error)
    return ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "0"
