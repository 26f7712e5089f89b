"""Scheduler benchmark (issue 5), in the manner of Kubernetes' scheduler_perf
(test/integration/scheduler_perf): fake nodes registered through the API, then pods
created, and the throughput with which they are bound.

    .venv/bin/python -m bench.scheduler [--quick] [--only NAME] [--nodes N]
                                        [--repeat N] [--profile DIR]

Per node count a real ``bramble server`` is started as a person starts it (``python -m
bramble server --no-agent``, SQLite in a temporary directory: its scheduler runs
in-process, leader-elected, as by default) and N hollow nodes are created through the
API (cpu 4, memory 32Gi, 110 pods, Ready; scheduler_perf's node template). Then, per
workload, three figures:

* **end to end**: M pods created through the API by 32 concurrent clients, while a watch
  notes when each is bound; pods/s from the first create sent to the last binding
  seen, the way scheduler_perf's SchedulingThroughput averages over the measured pods.
  Whatever the scheduler costs the apiserver (its watches, the bindings, the
  ``Scheduled`` events, on the same 2-core machine) counts.
* **pending**: M pods that already wait (created first, for a scheduler name the
  server's scheduler does not serve), then a scheduler with that name started in this
  benchmark's own process: pods/s from its caches being synced to the last binding.
  The same code as the server's, as a separate process: scheduling and binding through
  the API without the creation load.
* **algorithm**: the same pods placed on the same nodes in memory (PreFilter, Filter
  with adaptive sampling, Score, select, assume; no API): the scheduler's own ceiling.

Workloads (scheduler_perf's names): basic (pods requesting 100m cpu and 500Mi), pod
anti-affinity (each pod repels the others on its hostname; 1000 such pods placed first),
topology spread (maxSkew 1 over 3 zones; 1000 plain pods placed first), node affinity
(half the nodes in pool ``a``, pods require it). Before measuring, one pod with the
same image is scheduled, so that the image registry lookup (unreachable offline: one
timeout, then remembered) is not in the figures.

Prints Markdown tables; docs/benchmarks.md keeps them with the machine they ran on.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from api import errors
from api.client import ApiClient
from api.resources import resource
from bench.support import procfs
from bench.support.profile import Spy, summary
from bench.support.server import BrambleServer, Running
from bench.support.stats import machine, python_speed

PODS = resource("", "Pod")
NODES = resource("", "Node")
NAMESPACES = resource("", "Namespace")
IMAGE = "registry.k8s.io/pause:3.10"
ZONE = "topology.kubernetes.io/zone"
CREATORS = 32
BENCH_SCHEDULER = "bench-scheduler"

Obj = dict[str, Any]


# --- the cluster and the workloads ---------------------------------------------------


def node(i: int) -> Obj:
    name = f"node-{i:05d}"
    resources = {"cpu": "4", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "arm64" if i % 4 else "amd64",
                ZONE: f"moon-{i % 3 + 1}", "bench/pool": "ab"[i % 2],
            },
        },
        "status": {
            "capacity": resources, "allocatable": resources,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        },
    }  # fmt: skip


def basic_pod(name: str, scheduler: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "schedulerName": scheduler,
            "containers": [{
                "name": "pause", "image": IMAGE,
                "resources": {"requests": {"cpu": "100m", "memory": "500Mi"}},
            }],
        },
    }  # fmt: skip


def anti_affinity_pod(name: str, scheduler: str) -> Obj:
    pod = basic_pod(name, scheduler)
    pod["metadata"]["labels"] = {"color": "green"}
    term = {"labelSelector": {"matchLabels": {"color": "green"}},
            "topologyKey": "kubernetes.io/hostname"}  # fmt: skip
    pod["spec"]["affinity"] = {
        "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}
    }
    return pod


def spread_pod(name: str, scheduler: str) -> Obj:
    pod = basic_pod(name, scheduler)
    pod["metadata"]["labels"] = {"color": "blue"}
    pod["spec"]["topologySpreadConstraints"] = [
        {"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule",
         "labelSelector": {"matchLabels": {"color": "blue"}}}
    ]  # fmt: skip
    return pod


def node_affinity_pod(name: str, scheduler: str) -> Obj:
    pod = basic_pod(name, scheduler)
    pod["spec"]["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "bench/pool", "operator": "In", "values": ["a"]}]}]}}}  # fmt: skip
    return pod


PodMaker = Callable[[str, str], Obj]


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    nodes: int
    pods: int
    make: PodMaker = basic_pod
    init_pods: int = 0  # placed before measuring
    init_make: PodMaker = basic_pod

    @property
    def title(self) -> str:
        init = f" (+{self.init_pods} placed first)" if self.init_pods else ""
        return f"{self.name}, {self.nodes} nodes, {self.pods} pods{init}"


FULL = (
    Workload("basic", 100, 1000),
    Workload("basic", 1000, 1000),
    Workload("basic", 5000, 1000),
    Workload("basic", 5000, 10000),
    Workload("pod anti-affinity", 5000, 1000, anti_affinity_pod, 1000, anti_affinity_pod),
    Workload("topology spread", 5000, 2000, spread_pod, 1000),
    Workload("node affinity", 5000, 2000, node_affinity_pod),
)
QUICK = (
    Workload("basic", 100, 500),
    Workload("basic", 1000, 500),
    Workload("pod anti-affinity", 1000, 300, anti_affinity_pod, 200, anti_affinity_pod),
    Workload("topology spread", 1000, 500, spread_pod, 200),
    Workload("node affinity", 1000, 500, node_affinity_pod),
)


# --- measuring -----------------------------------------------------------------------


@dataclass
class Result:
    workload: Workload
    e2e: float = 0.0  # pods/s
    e2e_seconds: float = 0.0
    server_cpu: float = 0.0  # share of one core during the e2e window
    scheduler_cpu: float = 0.0  # the server's scheduler process (0 when in-process)
    load_cpu: float = 0.0  # this process: the creating clients and the watch
    creates: float = 0.0  # creates/s of the pending pods (the apiserver alone)
    pending: float = 0.0
    algorithm: float = 0.0
    notes: list[str] = field(default_factory=list)


class Bound:
    """A watch on one namespace's pods: when each was first seen bound."""

    def __init__(self, client: ApiClient, namespace: str) -> None:
        self._client = client
        self.namespace = namespace
        self.times: dict[str, float] = {}
        self._wanted = 0
        self._done = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        listed = await self._client.list(PODS, self.namespace, params={"limit": "1"})
        self._task = asyncio.create_task(self._run(listed["metadata"]["resourceVersion"]))

    async def _run(self, revision: str) -> None:
        params = {"resourceVersion": revision, "allowWatchBookmarks": "true"}
        while True:
            async for event in self._client.watch(PODS, self.namespace, params=params):
                obj = event["object"]
                params["resourceVersion"] = obj["metadata"]["resourceVersion"]
                if event["type"] == "BOOKMARK" or not (obj.get("spec") or {}).get("nodeName"):
                    continue
                self.times.setdefault(obj["metadata"]["name"], time.perf_counter())
                if self._wanted and len(self.times) >= self._wanted:
                    self._done.set()

    async def wait(self, count: int, within: float) -> bool:
        self._wanted = count
        if len(self.times) >= count:
            return True
        try:
            await asyncio.wait_for(self._done.wait(), within)
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


async def create_pods(
    client: ApiClient, namespace: str, names: list[str], make: PodMaker, scheduler: str
) -> float:
    """Create the pods with CREATORS concurrent clients; the time the first was sent."""
    queue = list(reversed(names))
    first = time.perf_counter()

    async def creator() -> None:
        while queue:
            name = queue.pop()
            await client.create(PODS, namespace, make(name, scheduler))

    await asyncio.gather(*(creator() for _ in range(CREATORS)))
    return first


def _children(pid: int) -> list[int]:
    """The server's child processes (its scheduler)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(c) for c in text]
    return found


async def new_namespace(client: ApiClient, prefix: str) -> str:
    name = f"{prefix}-{random.randrange(16**6):06x}"
    await client.create(NAMESPACES, None, {"metadata": {"name": name}})
    return name


async def place(client: ApiClient, namespace: str, count: int, make: PodMaker, prefix: str) -> None:
    """Create ``count`` pods for the server's scheduler and wait until they are bound."""
    watch = Bound(client, namespace)
    await watch.start()
    try:
        names = [f"{prefix}-{i:05d}" for i in range(count)]
        await create_pods(client, namespace, names, make, "default-scheduler")
        if not await watch.wait(count, within=120 + count / 10):
            raise RuntimeError(f"only {len(watch.times)} of {count} {prefix} pods were bound")
    finally:
        await watch.stop()


async def end_to_end(
    client: ApiClient, server: Running, w: Workload, result: Result, spies: list[Spy]
) -> None:
    namespace = await new_namespace(client, "e2e")
    if w.init_pods:
        await place(client, namespace, w.init_pods, w.init_make, "init")
    watch = Bound(client, namespace)
    await watch.start()
    names = [f"pod-{i:05d}" for i in range(w.pods)]
    children = _children(server.pid)
    cpu_before = procfs.cpu_seconds(server.pid)
    child_before = sum(procfs.cpu_seconds(c) for c in children)
    own_before = time.process_time()
    wall_before = time.perf_counter()
    for spy, pid in zip(spies, [server.pid, *children], strict=False):
        spy.start(pid, seconds=max(5.0, w.pods / 150))
    try:
        first = await create_pods(client, namespace, names, w.make, "default-scheduler")
        complete = await watch.wait(w.pods, within=120 + w.pods / 10)
    finally:
        await watch.stop()
    times = [watch.times[n] for n in names if n in watch.times]
    last = max(times, default=first)
    result.e2e_seconds = last - first
    result.e2e = len(times) / result.e2e_seconds if result.e2e_seconds > 0 else 0.0
    window = last - wall_before
    result.server_cpu = (procfs.cpu_seconds(server.pid) - cpu_before) / window
    result.scheduler_cpu = (sum(procfs.cpu_seconds(c) for c in children) - child_before) / window
    result.load_cpu = (time.process_time() - own_before) / window
    if not complete:
        result.notes.append(f"only {len(times)} of {w.pods} pods bound end to end")
    await delete_pods(client, namespace)


async def repeated_end_to_end(
    client: ApiClient, server: Running, w: Workload, result: Result, spies: list[Spy], repeat: int
) -> None:
    """``end_to_end`` ``repeat`` times on the same server; the median run's figures. A
    run of 1000 pods lasts about a second, and this VM's speed moves within minutes."""
    runs: list[tuple[Result, float]] = []
    for i in range(repeat):
        trial = Result(w)
        speed = python_speed()
        await end_to_end(client, server, w, trial, spies if i == 0 else [])
        runs.append((trial, speed))
    ranked = sorted(runs, key=lambda run: run[0].e2e)
    median = ranked[len(ranked) // 2][0]
    result.e2e, result.e2e_seconds = median.e2e, median.e2e_seconds
    result.server_cpu, result.scheduler_cpu = median.server_cpu, median.scheduler_cpu
    result.load_cpu = median.load_cpu
    result.notes += [note for trial, _ in runs for note in trial.notes]
    if repeat > 1:
        each = ", ".join(
            f"{trial.e2e:,.0f} ({speed:.0f} M, {trial.server_cpu:.0%}/{trial.scheduler_cpu:.0%})"
            for trial, speed in runs
        )
        result.notes.append(
            f"end to end, {repeat} runs (pods/s, then Python's loop speed just before in M "
            f"steps/s and the apiserver's/scheduler's CPU): {each}; the table has the median"
        )


async def pending(client: ApiClient, w: Workload, result: Result) -> None:
    from controlplane.scheduler.config import LeaderElection, Profile, SchedulerConfig
    from controlplane.scheduler.scheduler import Scheduler

    namespace = await new_namespace(client, "pending")
    if w.init_pods:
        await place(client, namespace, w.init_pods, w.init_make, "init")
    names = [f"pod-{i:05d}" for i in range(w.pods)]
    start = time.perf_counter()
    await create_pods(client, namespace, names, w.make, BENCH_SCHEDULER)
    result.creates = w.pods / (time.perf_counter() - start)
    watch = Bound(client, namespace)
    await watch.start()
    config = SchedulerConfig(
        profiles=(Profile(scheduler_name=BENCH_SCHEDULER),),
        leader_election=LeaderElection(leader_elect=False),
    )
    scheduler = Scheduler(client, config, identity="bench")
    ready = asyncio.Event()
    task = asyncio.create_task(scheduler.run(ready=ready))
    try:
        await asyncio.wait_for(ready.wait(), 120)
        synced = time.perf_counter()
        complete = await watch.wait(w.pods, within=120 + w.pods / 10)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await watch.stop()
    times = [watch.times[n] for n in names if n in watch.times]
    elapsed = max(times, default=synced) - synced
    result.pending = len(times) / elapsed if elapsed > 0 else 0.0
    if not complete:
        result.notes.append(f"only {len(times)} of {w.pods} pending pods bound")
    await delete_pods(client, namespace)


def algorithm(w: Workload, result: Result) -> None:
    """The same pods on the same nodes, in memory: decide + assume per pod."""
    from controlplane.scheduler.algorithm import Algorithm
    from controlplane.scheduler.cache import Cache
    from controlplane.scheduler.config import Profile
    from controlplane.scheduler.framework import Handle
    from controlplane.scheduler.podinfo import pod_info
    from controlplane.scheduler.queue import Nominator
    from controlplane.scheduler.registry import build
    from controlplane.scheduler.scheduler import decide

    cache = Cache()
    for i in range(w.nodes):
        cache.add_node(node(i))
    fw = build(Profile(), Handle(cache, Nominator()))
    algo = Algorithm(rng=random.Random(5))

    def infos(count: int, make: PodMaker, prefix: str) -> list[Any]:
        made = []
        for i in range(count):
            pod = make(f"{prefix}-{i:05d}", "default-scheduler")
            pod["metadata"].update(namespace="algo", uid=f"{prefix}-{i}")
            made.append(pod_info(pod))
        return made

    for info in infos(w.init_pods, w.init_make, "init"):
        cache.assume(info, decide(algo, fw, info, cache.node_list()).node)
    pods = infos(w.pods, w.make, "pod")
    start = time.perf_counter()
    for info in pods:
        decision = decide(algo, fw, info, cache.node_list())
        if decision.node:
            cache.assume(info, decision.node)
    result.algorithm = w.pods / (time.perf_counter() - start)


async def delete_pods(client: ApiClient, namespace: str) -> None:
    """Delete the namespace's pods and the namespace, and wait until it is gone: its
    finalizer deletes what is left in it (the pods' events), which must not run into
    the next measurement."""
    await client.request(
        "DELETE", f"/api/v1/namespaces/{namespace}/pods", params={"gracePeriodSeconds": "0"}
    )
    await client.delete(NAMESPACES, None, namespace)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            await client.get(NAMESPACES, None, namespace)
        except errors.NotFound:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"namespace {namespace} still there 120 s after its deletion")


async def create_nodes(client: ApiClient, count: int) -> float:
    todo = list(range(count))
    start = time.perf_counter()

    async def creator() -> None:
        while todo:
            await client.create(NODES, None, node(todo.pop()))

    await asyncio.gather(*(creator() for _ in range(CREATORS)))
    return count / (time.perf_counter() - start)


async def warm_up(client: ApiClient) -> None:
    """One pod with the benchmark's image, so the registry lookup is behind us."""
    namespace = await new_namespace(client, "warmup")
    await place(client, namespace, 1, basic_pod, "warm")
    await delete_pods(client, namespace)


# --- running -------------------------------------------------------------------------


async def run_group(
    workloads: list[Workload],
    data: Path,
    profile_dir: Path | None,
    results: list[Result],
    server_args: list[str],
    repeat: int = 1,
) -> None:
    count = workloads[0].nodes
    server = BrambleServer(data / f"server-{count}", args=server_args)
    running = server.start()
    try:
        client = await ApiClient.from_kubeconfig(running.kubeconfig, request_timeout=120)
        try:
            rate = await create_nodes(client, count)
            print(f"  {count} nodes registered ({rate:.0f} nodes/s)", file=sys.stderr)
            await warm_up(client)
            for w in workloads:
                result = Result(w)
                spies = []
                beside = Path(sys.executable).with_name("py-spy")
                program = shutil.which("py-spy") or (str(beside) if beside.exists() else None)
                if profile_dir is not None and program:
                    stem = f"{w.name.replace(' ', '-')}-{w.nodes}-{w.pods}"
                    spies = [
                        Spy(program, profile_dir / f"{stem}-{who}.folded", cpus=None)
                        for who in ("apiserver", "scheduler")
                    ]
                print(f"  {w.title}: end to end", file=sys.stderr)
                await repeated_end_to_end(client, running, w, result, spies, repeat)
                for spy in spies:
                    why = spy.finish()
                    result.notes.append(why or f"profile: {spy.out}")
                print(f"  {w.title}: pending", file=sys.stderr)
                await pending(client, w, result)
                print(f"  {w.title}: algorithm", file=sys.stderr)
                await asyncio.to_thread(algorithm, w, result)
                server.check()
                results.append(result)
        finally:
            await client.close()
    finally:
        server.stop()
    complaints = server.complaints()
    if complaints:
        results[-1].notes.append(f"{len(complaints)} WARNING/ERROR lines in the server log")


def table(results: list[Result]) -> list[str]:
    lines = [
        "| workload | nodes | pods | end to end pods/s | CPU: apiserver, scheduler, load "
        "| pending pods/s (scheduler in its own process) | algorithm alone pods/s "
        "| apiserver creates/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        w = r.workload
        init = f" (+{w.init_pods} first)" if w.init_pods else ""
        lines.append(
            f"| {w.name} | {w.nodes:,} | {w.pods:,}{init} | {r.e2e:,.0f} "
            f"| {r.server_cpu:.0%}, {r.scheduler_cpu:.0%}, {r.load_cpu:.0%} "
            f"| {r.pending:,.0f} | {r.algorithm:,.0f} | {r.creates:,.0f} |"
        )
    return lines


TARGETS = (
    ("basic", 100, 0, 1000.0, "at least 1000 pods/s end to end at 100 nodes"),
    ("basic", 5000, 10000, 300.0, "at least 300 pods/s end to end at 5000 nodes / 10000 pods"),
)


def verdicts(results: list[Result]) -> list[str]:
    lines = []
    for name, nodes, pods, want, text in TARGETS:
        found = [
            r for r in results
            if r.workload.name == name and r.workload.nodes == nodes
            and (not pods or r.workload.pods == pods)
        ]  # fmt: skip
        if found:
            got = found[0].e2e
            lines.append(f"- {text}: {'met' if got >= want else 'NOT MET'} ({got:,.0f} pods/s)")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1000 nodes at most, fewer pods")
    parser.add_argument("--only", help="run only the workloads whose name contains this")
    parser.add_argument("--nodes", type=int, help="run only the workloads with this many nodes")
    parser.add_argument("--profile", type=Path, help="record the server with py-spy into DIR")
    parser.add_argument(
        "--scheduler-in-process",
        action="store_true",
        help="start the server with --scheduler-in-process (to compare with the default)",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, metavar="N",
        help="run each end-to-end measurement N times and report the median",
    )  # fmt: skip
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat: at least 1")
    workloads = [
        w for w in (QUICK if args.quick else FULL)
        if (not args.only or args.only in w.name) and (not args.nodes or w.nodes == args.nodes)
    ]  # fmt: skip
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    results: list[Result] = []
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="bramble-bench-sched-") as tmp:
        for count in sorted({w.nodes for w in workloads}):
            print(f"{count} nodes:", file=sys.stderr)
            group = [w for w in workloads if w.nodes == count]
            server_args = ["--scheduler-in-process"] if args.scheduler_in_process else []
            asyncio.run(
                run_group(group, Path(tmp), args.profile, results, server_args, args.repeat)
            )
    where = "in the server's process" if args.scheduler_in_process else "a process of its own"
    print(f"Machine: {machine()}; {time.strftime('%Y-%m-%d', time.localtime(started))}")
    print(f"The server's scheduler: {where}.")
    print()
    print("\n".join(table(results)))
    print()
    print("\n".join(verdicts(results)))
    notes = [f"- {r.workload.title}: {n}" for r in results for n in r.notes]
    if notes:
        print()
        print("\n".join(notes))
    if args.profile is not None:
        for folded in sorted(args.profile.glob("*.folded")):
            samples, rows = summary(folded)
            print(f"\n{folded.name}: {samples:,} samples")
            for row in rows:
                print(f"  {row.self_share:6.1%} {row.total_share:6.1%} {row.function}")


if __name__ == "__main__":
    main()
