"""What one request costs the apiserver: CPU time per request, by kind, for the requests
a scheduled pod is made of (its create, its binding, the ``Scheduled`` event) and a few
others, each kind measured on its own.

    .venv/bin/python -m bench.requests [--count N] [--in-flight N]

A real ``bramble server`` (``--no-agent --no-controllers --no-scheduler``: nothing but
these requests reaches it) with 100 nodes and one watch of every pod open, as a
scheduler keeps one; the nodes and pods are bench/scheduler.py's, the status patch is
bench/api.py's (a kubelet's). Then, one kind after another, ``--count`` requests (3000) with
``--in-flight`` (32) at a time from this process (the events through the scheduler's
own EventRecorder, with that many senders); the server's CPU time (all its threads,
from /proc) over the phase, divided by the requests. The server is busy for
the whole phase (its CPU share is printed: near 100 % means the figure is the server's
cost, not the client's pace).

This is the figure that bounds the scheduler benchmark's end-to-end throughput at 100
nodes (docs/benchmarks.md): the sum of create, binding and event is the apiserver CPU
per scheduled pod, and a GET of one pod is the floor of any request (TLS, HTTP,
authentication, routing, metrics). The VM's speed varies: compare runs made back to back.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from api.client import ApiClient
from api.events import EventRecorder
from api.resources import resource
from bench.scheduler import basic_pod, node
from bench.support import procfs
from bench.support.objects import STRATEGIC, pod_status
from bench.support.server import BrambleServer
from bench.support.stats import machine

PODS = resource("", "Pod")
NODES = resource("", "Node")
NAMESPACE = "default"
NODE_COUNT = 100

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Phase:
    name: str
    per_second: float
    cpu_us: float  # server CPU per request, microseconds
    cpu_share: float  # of one core, over the phase


def node_of(i: int) -> str:
    return str(node(i % NODE_COUNT)["metadata"]["name"])


def binding(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Binding", "metadata": {"name": f"p{i}"},
        "target": {"kind": "Node", "name": node_of(i)},
    }  # fmt: skip


async def timed(name: str, pid: int, count: int, work: Awaitable[None]) -> Phase:
    cpu_before, started = procfs.cpu_seconds(pid), time.monotonic()
    await work
    cpu, elapsed = procfs.cpu_seconds(pid) - cpu_before, time.monotonic() - started
    return Phase(name, count / elapsed, cpu / count * 1e6, cpu / elapsed)


async def each(count: int, in_flight: int, call: Callable[[int], Awaitable[Any]]) -> None:
    slots = asyncio.Semaphore(in_flight)

    async def one(i: int) -> None:
        async with slots:
            await call(i)

    await asyncio.gather(*(one(i) for i in range(count)))


async def scheduled_events(client: ApiClient, pods: list[Obj], senders: int) -> None:
    """The ``Scheduled`` events of ``pods``, sent as the scheduler sends them (its
    EventRecorder, with ``senders`` requests in flight)."""
    recorder = EventRecorder(
        client, instance="bench-requests", component="default-scheduler", action="Binding",
        senders=senders,
    )  # fmt: skip
    task = asyncio.create_task(recorder.run())
    try:
        for pod in pods:
            name = str(pod["metadata"]["name"])  # p<i>, bound to node_of(i)
            where = f"{NAMESPACE}/{name} to {node_of(int(name[1:]))}"
            recorder.record(pod, "Normal", "Scheduled", f"Successfully assigned {where}")
        await recorder.flush()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def measure(pid: int, kubeconfig: Path, count: int, in_flight: int) -> list[Phase]:
    client = await ApiClient.from_kubeconfig(kubeconfig)
    try:
        for i in range(NODE_COUNT):
            await client.create(NODES, None, node(i))
        watch = asyncio.create_task(watch_pods(client))
        pods = f"/api/v1/namespaces/{NAMESPACE}/pods"
        created: list[Obj] = []

        async def create(i: int) -> None:
            # for a scheduler nobody runs: nothing binds them but this benchmark
            created.append(await client.create(PODS, NAMESPACE, basic_pod(f"p{i}", "nobody")))

        async def bind(i: int) -> None:
            await client.request("POST", f"{pods}/p{i}/binding", body=binding(i))

        async def patch_status(i: int) -> None:
            body = pod_status(f"p{i}", ready=True)
            await client.request("PATCH", f"{pods}/p{i}/status", body=body, content_type=STRATEGIC)

        results = [
            await timed("create pod", pid, count, each(count, in_flight, create)),
            await timed("bind pod (pods/binding)", pid, count, each(count, in_flight, bind)),
            await timed(
                "Scheduled event (the scheduler's EventRecorder)", pid, count,
                scheduled_events(client, created, in_flight),
            ),
            await timed(
                "get pod", pid, count,
                each(count, in_flight, lambda i: client.get(PODS, NAMESPACE, f"p{i}")),
            ),
            await timed(
                "patch pod status (strategic merge)", pid, count,
                each(count, in_flight, patch_status),
            ),
        ]  # fmt: skip
        watch.cancel()
        return results
    finally:
        await client.close()


async def watch_pods(client: ApiClient) -> None:
    async for _ in client.watch(PODS, None, params={"resourceVersion": "0"}):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--count", type=int, default=3000, help="requests of each kind (at most 10,000)"
    )
    parser.add_argument("--in-flight", type=int, default=32, help="requests at a time")
    args = parser.parse_args()
    if not 0 < args.count <= 10_000:  # the EventRecorder queues at most 10,000 events
        parser.error("--count: between 1 and 10000")
    with tempfile.TemporaryDirectory(prefix="bramble-bench-requests-") as tmp:
        server = BrambleServer(Path(tmp) / "data", args=["--no-scheduler"])
        running = server.start()
        try:
            results = asyncio.run(
                measure(running.pid, running.kubeconfig, args.count, args.in_flight)
            )
        finally:
            server.stop()
    print(f"machine: {machine()}")
    print(f"{args.count} requests of each kind, {args.in_flight} in flight, {NODE_COUNT} nodes")
    print()
    print("| request | per second | server CPU per request | server CPU |")
    print("|---|---|---|---|")
    for r in results:
        print(f"| {r.name} | {r.per_second:,.0f} | {r.cpu_us:,.0f} µs | {r.cpu_share:.0%} |")
    per_pod = sum(r.cpu_us for r in results[:3])
    print()
    print(
        f"a scheduled pod (create + binding + event): {per_pod:,.0f} µs of server CPU, "
        f"at most {1e6 / per_pod:,.0f} pods/s on one core"
    )


if __name__ == "__main__":
    main()
