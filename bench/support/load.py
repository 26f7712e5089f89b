"""What every load process shares: an HTTPS session with the admin certificate, timed
requests, open-loop pacing, an event-loop lag monitor, and the steady-state plan.

A call's latency runs from just before the request is sent to the last byte of the
response body, read by this process; decoding the body afterwards is not counted. Every
clock is ``time.monotonic()``, which on Linux is one clock for all processes of the
machine, so a write's answer in one process and its watch event in another compare.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from api.client import load_kubeconfig, ssl_context
from bench.support.stats import pct

Obj = dict[str, Any]

LAG_TICK = 0.05  # seconds between the lag monitor's wake-ups
REQUEST_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class Plan:
    """The steady window, the same for every load process."""

    start: float  # time.monotonic() at which it begins
    end: float
    nodes: int  # leases node-0000 .. are renewed
    renew_interval: float  # seconds between two renewals of one lease
    creates_per_s: float
    patches_per_s: float
    gets_per_s: float
    lists_per_s: float
    base_pods: int  # pods labelled bench-set=base, the ones lists and gets read


@dataclass(frozen=True, slots=True)
class Call:
    verb: str  # get, list, create, update, patch
    seconds: float
    error: str  # "" when it succeeded, else "HTTP 409", "ClientOSError", ...


@dataclass(frozen=True, slots=True)
class Write:
    """A write the watchers of ``resource`` (all, or the one for ``node``) should see."""

    resource: str  # "pods" or "leases"
    node: str
    revision: int
    answered: float  # time.monotonic() when the writer had read the response


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    answered: float

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def obj(self) -> Obj:
        value: Obj = orjson.loads(self.body)
        return value


async def sleep_until(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - time.monotonic()))


async def paced(
    rate: float, start: float, end: float, fire: Callable[[int], Coroutine[Any, Any, None]]
) -> None:
    """``fire(0)``, ``fire(1)``, ... at ``rate`` per second from ``start`` to ``end``,
    each in its own task: an open loop, so a slow server meets the same offered load
    instead of a politely smaller one (no coordinated omission)."""
    tasks: set[asyncio.Task[None]] = set()
    i = 0
    while rate > 0 and (moment := start + i / rate) < end:
        await sleep_until(moment)
        task = asyncio.create_task(fire(i))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        i += 1
    if tasks:
        await asyncio.gather(*tasks)


class Role:
    """One load process. Its public coroutine methods are the commands the benchmark
    sends (``bench.support.workers``); their arguments and results cross the process
    boundary by pickling."""

    def __init__(self, kubeconfig: Path, *, connections: int = 100) -> None:
        self._kubeconfig = kubeconfig
        self._connections = connections
        self._lag: list[tuple[float, float]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.server = ""
        self._session: aiohttp.ClientSession | None = None

    async def setup(self) -> None:
        creds = await asyncio.to_thread(load_kubeconfig, self._kubeconfig)
        context = await asyncio.to_thread(ssl_context, creds)
        self.server = creds.server
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=context, limit=self._connections),
            headers={"Accept": "application/json", "User-Agent": "bramble-bench"},
        )
        self._tasks.append(asyncio.create_task(self._monitor_lag()))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "setup() first"
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Obj | None = None,
        content_type: str = "application/json",
        params: dict[str, str] | None = None,
    ) -> Reply:
        data = None if body is None else orjson.dumps(body)
        headers = {"Content-Type": content_type} if data is not None else None
        async with self.session.request(
            method,
            self.server + path,
            data=data,
            headers=headers,
            params=params,
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
        ) as response:
            raw = await response.read()
            return Reply(response.status, raw, time.monotonic())

    async def timed(
        self, calls: list[Call], verb: str, method: str, path: str, **kwargs: Any
    ) -> Reply | None:
        """The request, recorded in ``calls``; None when it failed."""
        started = time.monotonic()
        try:
            reply = await self.request(method, path, **kwargs)
        except (aiohttp.ClientError, TimeoutError) as e:
            calls.append(Call(verb, time.monotonic() - started, type(e).__name__))
            return None
        calls.append(
            Call(verb, reply.answered - started, "" if reply.ok else f"HTTP {reply.status}")
        )
        return reply if reply.ok else None

    async def must(self, method: str, path: str, body: Obj | None = None) -> Obj:
        """A set-up request that has to succeed."""
        reply = await self.request(method, path, body=body)
        if not reply.ok:
            raise RuntimeError(f"{method} {path}: HTTP {reply.status}: {reply.body[:300]!r}")
        return reply.obj()

    async def lag(self, start: float, end: float) -> tuple[float, float]:
        """p99 and worst lateness of this process's event loop between two moments:
        how much its own busyness may have added to what it measured."""
        late = [d for t, d in self._lag if start <= t <= end] or [0.0]
        return pct(late, 0.99), max(late)

    async def _monitor_lag(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(LAG_TICK)
            self._lag.append((before, time.monotonic() - before - LAG_TICK))
