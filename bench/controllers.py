"""Controllers benchmark (issue 6): a Deployment scaled out on hollow nodes, rolled, and a
real node's failure survived, through the real server, scheduler and controllers.

    .venv/bin/python -m bench.controllers [--quick] [--no-failover | --failover-only]
                                          [--profile DIR] [--keep DIR]

1. **Scale out**: a real ``bramble server`` started as a person starts it (``python -m
   bramble server --no-agent``: the scheduler and the controller manager run as its
   child processes, as by default), and N hollow nodes: real agents on the fake runtime,
   all in one process of their own (bench/support/hollow.py; kubemark's way), renewing
   their Leases every 10 s, so that the node lifecycle controller finds them healthy.
   One Deployment of R replicas (pause image, no requests) is created, and a watch
   notes when each pod was created, bound and ready. Figures: from the create call to
   the last pod created, bound and Ready, and to the Deployment's status saying
   ``readyReplicas == R`` (the controllers' view, what ``kubectl get deploy`` shows).
2. **Rolling update**: the pod template changed (an annotation, as ``kubectl rollout
   restart`` does), then until ``kubectl rollout status`` would be done
   (observedGeneration current, updatedReplicas == replicas == availableReplicas == R).
   The peak number of pods (all, and not terminating) and the fewest ready pods are
   what maxSurge and maxUnavailable (25 % each by default) promise to bound.
3. **Failover** (real nodes, needs root): the multi-node test cluster
   (tests/support/multinode.py: 3 nodes, each a network namespace with its own Podman
   and ``bramble agent``) with the agents' default 10 s Lease interval; a Deployment of
   6 busybox httpd replicas spread over the nodes; one node's agent SIGKILLed, later
   (once it is back) another node cut off from the network (bench/support/failover.py).
   Measured from the failure: the node NotReady, its pods evicted (deletionTimestamp),
   and the Deployment's replicas all Ready again on the other nodes. bramble's
   defaults: 20 s grace period, 30 s unreachable toleration (docs/operations.md).

For each phase, where the time went: the CPU each process used (as a share of one
core: the apiserver, the scheduler, the controllers, the hollow agents, this benchmark,
and everything else on the machine, i.e. other people's work on a shared machine); the
requests the apiserver served, by kind, with their mean latency (its /metrics before
and after); and whether the hollow nodes kept up: the longest a node's Lease went
unrenewed as a watch saw it, and any node the node lifecycle controller found
unreachable (the server's log), which would disturb the figures. ``--profile DIR``
records the scale-out with py-spy, one file per process, and prints the functions that
took the most time; ``--keep DIR`` works in DIR and keeps the processes' logs.

``--quick``: 300 replicas on 20 nodes, no failover (about a minute).
Prints Markdown tables; docs/benchmarks.md keeps them with the machine they ran on.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

from api.client import ApiClient
from api.resources import resource
from bench.support import apimetrics, failover, procfs
from bench.support.cpu import CpuMeter, processes
from bench.support.phase import Phase, since
from bench.support.profile import Spy, summary
from bench.support.rollout import DEPLOYMENTS, Heartbeats, NamespaceView, Obj, rollout_done
from bench.support.server import BrambleServer
from bench.support.stats import machine, pct

NAMESPACES = resource("", "Namespace")
IMAGE = "registry.k8s.io/pause:3.10"
TARGET_READY = 30.0  # seconds for 3000 replicas on 100 hollow nodes (issue 6)


def deployment(name: str, replicas: int) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "pause", "image": IMAGE}]},
            },
        },
    }


async def start_hollow(kubeconfig: Path, data: Path, count: int) -> asyncio.subprocess.Process:
    """The hollow nodes' process, once all of them have registered."""
    log = (data / "hollow.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.support.hollow", "--kubeconfig", str(kubeconfig),
        "--data-dir", str(data / "hollow"), "--nodes", str(count),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=log,
        preexec_fn=procfs.binder(None, min_files=4096),
    )  # fmt: skip
    log.close()
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), 60 + count)
    except TimeoutError:
        line = b""
    if b"hollow nodes ready" not in line:
        process.terminate()
        await process.wait()
        tail = (data / "hollow.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"the hollow nodes did not all register; their log ends:\n{tail}")
    return process


async def new_namespace(client: ApiClient, name: str) -> str:
    await client.create(NAMESPACES, None, {"metadata": {"name": name}})
    return name


async def warm_up(client: ApiClient) -> None:
    """One replica of the same image first: the scheduler's image lookup (a timeout when
    offline, then remembered) and every controller's first sync are behind us."""
    namespace = await new_namespace(client, "warmup")
    view = NamespaceView(client, namespace)
    await view.start()
    try:
        await client.create(DEPLOYMENTS, namespace, deployment("warmup", 1))
        if await view.until(lambda: view.ready >= 1, within=120) is None:
            raise RuntimeError("the warm-up Deployment's pod never became ready")
    finally:
        await view.stop()
    await client.delete(NAMESPACES, None, namespace)


async def scale_out(
    client: ApiClient, view: NamespaceView, replicas: int, meter: CpuMeter
) -> Phase:
    phase = Phase(f"Scale out: a Deployment of {replicas:,} replicas")
    within = 60 + replicas / 10
    before = await apimetrics.snapshot(client)
    meter.start()
    start = time.perf_counter()
    await client.create(DEPLOYMENTS, view.namespace, deployment("bench", replicas))

    def status_ready() -> bool:
        d = view.deployments.get("bench")
        return d is not None and (d.get("status") or {}).get("readyReplicas", 0) >= replicas

    all_ready = await view.until(lambda: view.ready >= replicas, within=within)
    status = await view.until(status_ready, within=10 if all_ready is None else within)
    phase.cpu = meter.stop()
    phase.tables.append(apimetrics.served(before, await apimetrics.snapshot(client)))
    pods = list(view.pods.values())
    phase.add("pods created: 25 %, 50 %, 75 %, all", quartiles([p.created for p in pods], start))
    phase.add("pods bound: 25 %, 50 %, 75 %, all", quartiles([p.bound for p in pods], start))
    phase.add("pods Ready: 25 %, 50 %, 75 %, all", quartiles([p.ready for p in pods], start))
    latency = [p.ready - p.created for p in pods if p.ready]
    if latency:
        p50, p99 = pct(latency, 0.5), pct(latency, 0.99)
        phase.add("one pod, created to Ready: p50, p99", f"{p50:.1f} s, {p99:.1f} s")
    phase.add(f"Deployment status readyReplicas = {replicas:,}", since(status, start))
    if all_ready is None:
        phase.notes.append(f"only {view.ready} of {replicas} pods ready after {within:.0f} s")
    total = None if status is None else status - start
    if replicas >= 3000:
        met = total is not None and total <= TARGET_READY
        phase.notes.append(
            f"target: {replicas:,} replicas ready within {TARGET_READY:.0f} s: "
            f"{'met' if met else 'NOT MET'}"
        )
    return phase


def quartiles(moments: list[float], start: float) -> str:
    """When a quarter, half, three quarters and all of the pods got there (0: never)."""
    reached = sorted(m for m in moments if m)
    if len(reached) < len(moments) or not reached:
        return f"{len(reached):,} of {len(moments):,} only"
    marks = [reached[max(0, len(reached) * q // 4 - 1)] for q in (1, 2, 3, 4)]
    return ", ".join(f"{m - start:.1f}" for m in marks) + " s"


async def rolling_update(
    client: ApiClient, view: NamespaceView, replicas: int, meter: CpuMeter
) -> Phase:
    phase = Phase(
        f"Rolling update of the {replicas:,} replicas (maxSurge 25 %, maxUnavailable 25 %)"
    )
    within = 120 + replicas / 5
    view.reset_extremes()
    before = await apimetrics.snapshot(client)
    meter.start()
    start = time.perf_counter()
    patch = {"spec": {"template": {"metadata": {"annotations": {"bench/restartedAt": str(start)}}}}}
    patched = await client.patch(DEPLOYMENTS, view.namespace, "bench", patch)
    generation = patched["metadata"]["generation"]

    def done() -> bool:
        d = view.deployments.get("bench")
        return d is not None and d["metadata"]["generation"] >= generation and rollout_done(d)

    finished = await view.until(done, within=within)
    phase.cpu = meter.stop()
    phase.tables.append(apimetrics.served(before, await apimetrics.snapshot(client)))
    phase.add("until `rollout status` is done", since(finished, start))
    phase.add("peak pods (terminating included)", f"{view.peak_live:,}")
    phase.add("peak pods not terminating", f"{view.peak_active:,}")
    phase.add("fewest ready pods", f"{view.min_ready:,}" if view.min_ready is not None else "?")
    if finished is None:
        status = (view.deployments.get("bench") or {}).get("status")
        phase.notes.append(f"not rolled out after {within:.0f} s; status: {status}")
    return phase


async def hollow_run(
    data: Path, nodes: int, replicas: int, profile_dir: Path | None
) -> list[Phase]:
    server = BrambleServer(data / "server", controllers=True)
    running = server.start()
    hollow: asyncio.subprocess.Process | None = None
    client = await ApiClient.from_kubeconfig(running.kubeconfig, request_timeout=120)
    try:
        began = time.perf_counter()
        hollow = await start_hollow(running.kubeconfig, data, nodes)
        print(f"  {nodes} hollow nodes registered in {time.perf_counter() - began:.1f} s",
              file=sys.stderr)  # fmt: skip
        await warm_up(client)
        pids = processes(server=running.pid, hollow=hollow.pid)
        meter = CpuMeter(pids)
        view = NamespaceView(client, await new_namespace(client, "bench"))
        await view.start()
        beats = Heartbeats(client)
        await beats.start()
        spies = _spies(profile_dir, pids, seconds=max(10.0, replicas / 100))
        try:
            print(f"  scale out to {replicas} replicas", file=sys.stderr)
            mark = server_log_lines(server)
            beats.reset()
            phases = [await scale_out(client, view, replicas, meter)]
            for spy in spies:
                phases[0].notes.append(spy.finish() or f"profile: {spy.out}")
            node_health(phases[0], beats, server, mark)
            print("  rolling update", file=sys.stderr)
            mark = server_log_lines(server)
            beats.reset()
            phases.append(await rolling_update(client, view, replicas, meter))
            node_health(phases[1], beats, server, mark)
        finally:
            for spy in spies:
                spy.stop()
            await beats.stop()
            await view.stop()
        server.check()
        log = (data / "hollow.log").read_text(errors="replace").splitlines()
        lags = [ln for ln in log if "event loop lag" in ln]
        errors = [ln for ln in log if " ERROR " in ln]
        if lags or errors:
            phases[-1].notes.append(
                f"the hollow nodes' log: {len(lags)} event loop lags over 1 s, {len(errors)} "
                f"ERROR lines (see {data / 'hollow.log'} with --keep)"
            )
        if hollow.returncode is not None:
            phases[-1].notes.append(f"the hollow nodes' process exited with {hollow.returncode}")
        complaints = server.complaints()
        if complaints:
            first = complaints[0].splitlines()[0]
            phases[-1].notes.append(
                f"{len(complaints)} WARNING/ERROR lines in the server log, the first: `{first}`"
            )
        return phases
    finally:
        await client.close()
        if hollow is not None and hollow.returncode is None:
            hollow.terminate()
            await hollow.wait()
        server.stop()


def server_log_lines(server: BrambleServer) -> int:
    return len(server.log.read_text(errors="replace").splitlines())


def node_health(phase: Phase, beats: Heartbeats, server: BrambleServer, since_line: int) -> None:
    """Whether the hollow nodes kept up: the longest a node's Lease went unrenewed (as
    the benchmark's watch saw it), and what the node lifecycle controller did about it
    (from the server's log, which holds the controllers' lines)."""
    gap, node = beats.gap_now()
    phase.add("longest time a node's Lease went unrenewed", f"{gap:.1f} s ({node})")
    lines = server.log.read_text(errors="replace").splitlines()[since_line:]
    unreachable = {
        ln.split("node=", 1)[1].split(":")[0] for ln in lines if "node unreachable node=" in ln
    }
    marked = sum(1 for ln in lines if "nodelifecycle.eviction: pod=" in ln and "ready=False" in ln)
    evicted = sum(1 for ln in lines if "evicting pod=" in ln)
    if unreachable or marked or evicted:
        phase.notes.append(
            f"the node lifecycle controller found {len(unreachable)} hollow nodes unreachable "
            f"(no Lease renewal seen within its 20 s grace period), marked {marked} of their "
            f"pods not ready and evicted {evicted}: the figures include that disruption"
        )


def _spies(profile_dir: Path | None, pids: dict[str, int], *, seconds: float) -> list[Spy]:
    program = shutil.which("py-spy") or shutil.which(
        "py-spy", path=str(Path(sys.executable).parent)
    )
    if profile_dir is None or program is None:
        return []
    spies = []
    for who, pid in pids.items():
        spy = Spy(program, profile_dir / f"{who}.folded", cpus=None)
        spy.start(pid, seconds=seconds)
        spies.append(spy)
    return spies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="300 replicas on 20 nodes, no failover"
    )
    parser.add_argument("--nodes", type=int, help="hollow nodes (default 100; --quick 20)")
    parser.add_argument("--replicas", type=int, help="replicas (default 3000; --quick 300)")
    parser.add_argument("--no-failover", action="store_true", help="skip the real-node failover")
    parser.add_argument("--failover-only", action="store_true", help="only the failover")
    parser.add_argument("--profile", type=Path, help="record the scale-out with py-spy into DIR")
    parser.add_argument("--keep", type=Path, help="work in DIR and keep it (the processes' logs)")
    args = parser.parse_args()
    nodes = args.nodes or (20 if args.quick else 100)
    replicas = args.replicas or (300 if args.quick else 3000)
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    started = time.time()
    load = Path("/proc/loadavg").read_text().split()[:3]
    phases: list[Phase] = []
    with contextlib.ExitStack() as stack:
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            tmp = str(args.keep.resolve())
        else:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="bramble-bench-ctrl-"))
        if not args.failover_only:
            print(f"{nodes} hollow nodes, {replicas} replicas:", file=sys.stderr)
            phases += asyncio.run(hollow_run(Path(tmp), nodes, replicas, args.profile))
        if args.failover_only or not (args.quick or args.no_failover):
            print("failover on 3 real nodes:", file=sys.stderr)
            phases += failover.run(Path(tmp))
    command = " ".join(["python -m bench.controllers", *sys.argv[1:]])
    print(f"Machine: {machine()}; {time.strftime('%Y-%m-%d', time.localtime(started))}; "
          f"load average before the run {' '.join(load)}")  # fmt: skip
    print(f"Command: `{command}`")
    if not args.failover_only:
        print(
            f"Hollow nodes: {nodes} real agents on the fake runtime, in one process of their own."
        )
    print()
    for phase in phases:
        print("\n".join(phase.lines()))
    if args.profile is not None:
        for folded in sorted(args.profile.glob("*.folded")):
            samples, rows = summary(folded)
            print(f"\n{folded.name}: {samples:,} samples (self, total)")
            for row in rows:
                print(f"  {row.self_share:6.1%} {row.total_share:6.1%} {row.function}")


if __name__ == "__main__":
    main()
