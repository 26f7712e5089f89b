"""Apiserver benchmark (issue 3): latency per verb and memory of a real ``bramble server``
under the load of a 1000-node cluster, driven over HTTPS from separate processes.

    .venv/bin/python -m bench.api [--quick] [--profile FILE] [--no-pin]

The server is started as a person starts it (``python -m bramble server --data-dir TMP
--listen 127.0.0.1:0``, SQLite store in TMP) from the current directory's code; the load
uses the admin client certificate of TMP/admin.kubeconfig. Three load processes, each
its own interpreter: a writer, a reader and one holding the watches (``bench/support``).

Sharing the 2-core machine: the load processes (and this one, mostly asleep) are bound
to the last CPU (sched_setaffinity, inherited by their threads), so together they can
never take more than one core; the server may run on every CPU, so its event loop has a
core to itself and its SQLite writer and audit threads can use what is left (one
interpreter cannot use much more than a core for Python anyway). The server is not
pinned to a CPU of its own, because then any other process landing there would take
its time (this machine is shared). Each load process reports its CPU and event-loop lag,
so a saturated client shows instead of passing for a slow server; the load average
before the run is printed. ``--no-pin`` lets the kernel place the load too.

The run, full (``--quick``: 200 nodes, 1000 pods, 200 watches, 15 s window):
1. 100 nodes with their leases and 3000 pods bound to them, in 3 namespaces; the pod
   watches of those 100 nodes' agents; 5 s idle; the server's RSS: the memory target.
2. Nodes and leases up to 1000; the rest of the 1000 watches: 700 agents' pod watches
   (``spec.nodeName=<node>``), 280 watches of one lease (``metadata.name=<node>``), 10 of
   all pods, 10 of all leases; all from a current resourceVersion, with bookmarks.
3. 120 s steady window, every call open-loop (paced by the clock, not by replies):
   each lease renewed every 10 s by PUT, spread evenly (100/s); 20 pod creates/s (bound
   round-robin to all nodes); 20 pod status patches/s (strategic merge on /status, a
   random pod); 10 GETs/s of one pod; 1 LIST/s of the 3000 base pods (all namespaces,
   by label, JSON) while the pods created in the window are in the server too.
4. 2 s for the last watch events; the server's RSS at the end.

Latency is client-side: request sent to last byte read. Watch delivery: for each write
of the window and each watch that should see it, from the writer reading the response to
the watcher reading the event (``report.deliveries``). CPU is read from /proc for the
server, each load process and "everything else" (other people's processes on a shared
machine, py-spy): when that is large, the figures say more about the neighbours.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from bench.support import procfs, profile
from bench.support.load import Call, Plan
from bench.support.objects import node_name
from bench.support.report import (
    Measured,
    Target,
    deliveries,
    latency_table,
    mb,
    measures_table,
    profile_table,
    verdict,
)
from bench.support.server import BrambleServer, Running
from bench.support.stats import machine
from bench.support.watchers import WatchLog, WatchSpec
from bench.support.workers import Worker, WorkerFailed, stop_all
from bench.support.writers import SETUP_CONCURRENCY, WriterResult

GRACE = 2.0  # seconds the watchers keep reading after the window
SETTLE = 5.0  # idle seconds before the memory checkpoint
LEAD = 2.0  # seconds between sending the plan and the window's start
NOISE = 0.2  # share of a core other processes may take before the run is flagged


@dataclass(frozen=True, slots=True)
class Sizes:
    small_nodes: int  # nodes at the memory checkpoint
    nodes: int
    base_pods: int
    pod_watchers: int  # agents' pod watches, nodes 0 ..
    lease_watchers: int  # one-lease watches, the nodes after those
    all_pod_watchers: int
    all_lease_watchers: int
    seconds: float  # the steady window
    creates_per_s: float = 20
    patches_per_s: float = 20
    gets_per_s: float = 10
    lists_per_s: float = 1
    renew_interval: float = 10

    @property
    def watchers(self) -> int:
        return (
            self.pod_watchers
            + self.lease_watchers
            + self.all_pod_watchers
            + self.all_lease_watchers
        )

    def watch_specs(self) -> list[WatchSpec]:
        first = self.pod_watchers
        return (
            [WatchSpec("pods", node_name(i)) for i in range(first)]
            + [WatchSpec("leases", node_name(first + i)) for i in range(self.lease_watchers)]
            + [WatchSpec("pods", None)] * self.all_pod_watchers
            + [WatchSpec("leases", None)] * self.all_lease_watchers
        )

    def describe(self) -> str:
        return (
            f"{self.nodes} nodes, each lease renewed every {self.renew_interval:g} s "
            f"({self.nodes / self.renew_interval:g} PUT/s); {self.base_pods} pods + "
            f"{self.creates_per_s:g} creates/s; {self.patches_per_s:g} status patches/s; "
            f"{self.gets_per_s:g} gets/s; {self.lists_per_s:g} list/s; {self.watchers} "
            f"watches ({self.pod_watchers} of one node's pods, {self.lease_watchers} of one "
            f"lease, {self.all_pod_watchers} of all pods, {self.all_lease_watchers} of all "
            f"leases); {self.seconds:g} s window"
        )


# 1000 watches as the issue asks: mostly filtered ones (an agent watches its node's pods),
# some unfiltered (a scheduler, a controller, a `kubectl get -w`), each of those getting
# every change of its resource.
FULL = Sizes(100, 1000, 3000, 700, 280, 10, 10, seconds=120)
QUICK = Sizes(100, 200, 1000, 150, 40, 5, 5, seconds=15)

TARGETS = (
    Target("mutating calls p99 < 50 ms", ("create", "update", "patch"), 0.050),
    Target("single gets p99 < 20 ms", ("get",), 0.020),
    Target("listing 3000 pods p99 < 300 ms", ("list",), 0.300),
    Target("watch delivery p99 < 100 ms", ("watch",), 0.100),
)
RSS_TARGET = 150e6  # bytes, with 100 nodes and 3000 pods


class Run:
    """One benchmark run against a started server, phase by phase."""

    def __init__(
        self, sizes: Sizes, server: BrambleServer, running: Running, workers: list[Worker]
    ) -> None:
        self.sizes = sizes
        self.server = server
        self.running = running
        self.writer, self.reader, self.watchers = workers
        self.small = min(sizes.small_nodes, sizes.nodes)

    def build(self) -> tuple[int, str]:
        """Phases 1 and 2; returns (RSS at the checkpoint, what setup took)."""
        sizes, writer, watchers = self.sizes, self.writer, self.watchers
        specs = sizes.watch_specs()
        first = min(self.small, sizes.pod_watchers)  # the small cluster's agents
        writer.call("create_namespaces")
        node_seconds = writer.call("create_nodes", 0, self.small)
        pod_seconds = writer.call("create_base_pods", sizes.base_pods, self.small)
        open_seconds = watchers.call("open", specs[:first])
        self.server.check()
        time.sleep(SETTLE)
        rss_small = procfs.rss_bytes(self.running.pid)
        if sizes.nodes > self.small:
            node_seconds += writer.call("create_nodes", self.small, sizes.nodes)
        open_seconds += watchers.call("open", specs[first:])
        self.server.check()
        return rss_small, (
            f"{sizes.nodes} nodes + {sizes.nodes} leases created at "
            f"{2 * sizes.nodes / node_seconds:,.0f}/s and {sizes.base_pods} pods at "
            f"{sizes.base_pods / pod_seconds:,.0f}/s ({SETUP_CONCURRENCY} in flight); "
            f"{sizes.watchers} watches opened in {open_seconds:.1f} s"
        )

    def window(self, rss_small: int, *, spy: profile.Spy | None) -> Measured:
        """Phases 3 and 4."""
        sizes = self.sizes
        start = time.monotonic() + LEAD
        plan = Plan(
            start=start,
            end=start + sizes.seconds,
            nodes=sizes.nodes,
            renew_interval=sizes.renew_interval,
            creates_per_s=sizes.creates_per_s,
            patches_per_s=sizes.patches_per_s,
            gets_per_s=sizes.gets_per_s,
            lists_per_s=sizes.lists_per_s,
            base_pods=sizes.base_pods,
        )
        self.writer.send("steady", plan)
        self.reader.send("steady", plan)
        pids = {"server": self.running.pid}
        pids |= {w.role: w.pid for w in (self.writer, self.reader, self.watchers)}
        time.sleep(max(0.0, plan.start - time.monotonic()))
        rss_ready = procfs.rss_bytes(self.running.pid)
        before = {name: procfs.cpu_seconds(pid) for name, pid in pids.items()}
        busy_before = procfs.busy_seconds()
        if spy is not None:
            spy.start(self.running.pid, seconds=sizes.seconds)
        time.sleep(max(0.0, plan.end - time.monotonic()))
        cpu = {n: (procfs.cpu_seconds(p) - before[n]) / sizes.seconds for n, p in pids.items()}
        busy = (procfs.busy_seconds() - busy_before) / sizes.seconds
        cpu["everything else"] = max(0.0, busy - sum(cpu.values()))
        wrote: WriterResult = self.writer.result(timeout=120)
        read: list[Call] = self.reader.result(timeout=120)
        time.sleep(GRACE)
        logs: list[WatchLog] = self.watchers.call("collect")
        self.server.check()
        return Measured(
            calls=wrote.calls + read,
            delays=deliveries(wrote.writes, logs),
            logs=logs,
            skipped_renewals=wrote.skipped_renewals,
            rss_small=rss_small,
            rss_ready=rss_ready,
            rss_end=procfs.rss_bytes(self.running.pid),
            rss_peak=procfs.peak_rss_bytes(self.running.pid),
            cpu=cpu,
            lag={
                w.role: w.call("lag", plan.start, plan.end)
                for w in (self.writer, self.reader, self.watchers)
            },
            complaints=self.server.complaints(),
        )

    def report(self, m: Measured, setup: str) -> list[str]:
        sizes = self.sizes
        small = (
            f"{self.small} nodes + {sizes.base_pods} pods + "
            f"{min(self.small, sizes.pod_watchers)} watches"
        )
        ready = f"{sizes.nodes} nodes, {sizes.base_pods} pods, {sizes.watchers} watches"
        end = (
            f"{sizes.nodes} nodes, ~{sizes.base_pods + int(sizes.creates_per_s * sizes.seconds)}"
            f" pods, {sizes.watchers} watches"
        )
        rows = (
            ("get", "get one pod"),
            ("list", f"list {sizes.base_pods} pods (JSON)"),
            ("create", "create pod"),
            ("update", "update lease (PUT)"),
            ("patch", "patch pod status (strategic merge)"),
        )
        met = "met" if m.rss_small < RSS_TARGET else "NOT MET"
        return [
            f"workload: {sizes.describe()}",
            f"setup: {setup}",
            "",
            *latency_table(m, rows),
            "",
            *measures_table(m, small=small, ready=ready, end=end),
            "",
            "targets:",
            *(verdict(t, m) for t in TARGETS),
            f"- apiserver RSS < 150 MB with 100 nodes and 3000 pods: {met} "
            f"({mb(m.rss_small)} with {small})",
            *(
                ["  (a --quick run, lighter than the targets' load: judge on a full run)"]
                if sizes != FULL
                else []
            ),
            *(f"server log: {line}" for line in m.complaints[:5]),
            *(
                [
                    f"warning: other processes took {others:.0%} of a core during the window;"
                    " compare only runs made on a quiet machine"
                ]
                if (others := m.cpu["everything else"]) > NOISE
                else []
            ),
        ]


def run(sizes: Sizes, *, pin: bool, profile_to: Path | None, py_spy: str) -> None:
    load_cpus = procfs.load_cpus() if pin else None
    if load_cpus:
        os.sched_setaffinity(0, load_cpus)
    loadavg = os.getloadavg()[0]
    min_files = sizes.watchers + 512
    spy = profile.Spy(py_spy, profile_to, cpus=load_cpus) if profile_to else None
    with tempfile.TemporaryDirectory(prefix="bramble-bench-api-") as tmp:
        server = BrambleServer(Path(tmp) / "data", min_files=min_files)
        workers: list[Worker] = []
        try:
            running = server.start()
            workers = [
                Worker(role, running.kubeconfig, cpus=load_cpus, min_files=min_files)
                for role in ("writer", "reader", "watchers")
            ]
            bench = Run(sizes, server, running, workers)
            try:
                rss_small, setup = bench.build()
                lines = bench.report(bench.window(rss_small, spy=spy), setup)
            except WorkerFailed as e:
                e.add_note(server.describe(wait=5))  # a dead server explains it better
                raise
            if spy is not None:
                problem = spy.finish()
                lines += ["", *([problem] if problem else profile_table(spy.out, sizes.seconds))]
        finally:
            if spy is not None:
                spy.stop()
            stop_all(workers)
            server.stop()
    placement = f"load bound to CPU {sorted(load_cpus)}" if load_cpus else "nothing pinned"
    print(f"machine: {machine()}; load average before the run {loadavg:.2f}; {placement}")
    print(f"server: bramble {_revision()}, SQLite store on the temp disk")
    print("\n".join(lines))


def _revision() -> str:
    try:
        return subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "(not a git checkout)"


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # so that every finally block runs: load, then the server


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller and shorter (a smoke run)")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="FILE",
        help="record the server with py-spy during the window (folded stacks) and summarise",
    )
    parser.add_argument(
        "--py-spy",
        default=shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy")),
        help="the py-spy program (default: from PATH, else the one beside this Python)",
    )
    parser.add_argument("--no-pin", action="store_true", help="let the load run on every CPU too")
    args = parser.parse_args()
    if args.profile and not shutil.which(args.py_spy):
        parser.error(f"--profile needs py-spy: {args.py_spy!r} is not a program; give --py-spy")
    signal.signal(signal.SIGTERM, _terminate)
    try:
        run(
            QUICK if args.quick else FULL,
            pin=not args.no_pin,
            profile_to=args.profile,
            py_spy=args.py_spy,
        )
    except KeyboardInterrupt:
        print(
            "bench.api: interrupted; the server and the load processes are stopped", file=sys.stderr
        )
        sys.exit(130)
