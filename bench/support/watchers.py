"""The watching load process: many watch streams, each recording when every event
arrived, by the event's resourceVersion.

Streams are opened as an informer opens them after its list: from a current
resourceVersion (no initial ADDED flood), with bookmarks. A stream that breaks or ends
with an ERROR event (410 Gone) is opened again from a fresh resourceVersion and counted,
because events it missed meanwhile show up as undelivered.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson

from bench.support import objects as o
from bench.support.load import Role

OPEN_CONCURRENCY = 32  # TLS handshakes in flight while opening
OPEN_TIMEOUT = 120.0
RETRY_DELAY = 0.5


@dataclass(frozen=True, slots=True)
class WatchSpec:
    resource: str  # "pods" or "leases"
    node: str | None  # None: every object (pods: all namespaces; leases: kube-node-lease)

    @property
    def key(self) -> tuple[str, str]:
        return self.resource, self.node or "*"

    def request(self) -> tuple[str, dict[str, str]]:
        params = {"watch": "1", "allowWatchBookmarks": "true"}
        if self.resource == "pods":
            if self.node is not None:  # what an agent asks for
                params["fieldSelector"] = f"spec.nodeName={self.node}"
            return o.PODS, params
        if self.node is not None:
            params["fieldSelector"] = f"metadata.name={self.node}"
        return o.LEASES, params


@dataclass(slots=True)
class WatchLog:
    spec: WatchSpec
    arrivals: dict[int, float] = field(default_factory=dict)  # revision -> monotonic time
    bookmarks: int = 0
    restarts: int = 0


class Watchers(Role):
    def __init__(self, kubeconfig: Path) -> None:
        # Every stream holds its own connection for as long as it lives.
        super().__init__(kubeconfig, connections=0)
        self._logs: list[WatchLog] = []
        self._streams: list[asyncio.Task[None]] = []

    async def open(self, specs: list[WatchSpec]) -> float:
        """Open a stream per spec; returns the seconds it took until all were open."""
        started = time.monotonic()
        revisions = {r: await self._revision(r) for r in {s.resource for s in specs}}
        gate = asyncio.Semaphore(OPEN_CONCURRENCY)
        opened: list[asyncio.Future[None]] = []
        for spec in specs:
            log = WatchLog(spec)
            ready = asyncio.get_running_loop().create_future()
            await gate.acquire()
            ready.add_done_callback(lambda _: gate.release())
            self._logs.append(log)
            self._streams.append(
                asyncio.create_task(self._follow(log, revisions[spec.resource], ready))
            )
            opened.append(ready)
        await asyncio.wait_for(asyncio.gather(*opened), OPEN_TIMEOUT)
        return time.monotonic() - started

    async def collect(self) -> list[WatchLog]:
        """Close every stream; what each one saw."""
        for task in self._streams:
            task.cancel()
        await asyncio.gather(*self._streams, return_exceptions=True)
        self._streams.clear()
        return self._logs

    async def _revision(self, resource: str) -> int:
        path = o.PODS if resource == "pods" else o.LEASES
        reply = await self.request("GET", path, params={"limit": "1"})
        return int(reply.obj()["metadata"]["resourceVersion"])

    async def _follow(self, log: WatchLog, revision: int, ready: asyncio.Future[None]) -> None:
        path, params = log.spec.request()
        while True:
            try:
                revision = await self._stream(
                    log, path, {**params, "resourceVersion": str(revision)}, ready
                )
                continue  # the server ended the stream: resume where it was
            except (aiohttp.ClientError, TimeoutError, _Gone) as e:
                if not ready.done():
                    ready.set_exception(RuntimeError(f"watch {path} {params}: {e!r}"))
                    return
            log.restarts += 1
            await asyncio.sleep(RETRY_DELAY)
            revision = await self._revision(log.spec.resource)

    async def _stream(
        self, log: WatchLog, path: str, params: dict[str, str], ready: asyncio.Future[None]
    ) -> int:
        """Read one stream to its end; returns the newest revision it saw."""
        revision = int(params["resourceVersion"])
        async with self.session.get(
            self.server + path,
            params=params,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=None),
        ) as response:
            if response.status != 200:
                raise _Gone(f"HTTP {response.status}")
            if not ready.done():
                ready.set_result(None)
            async for line in response.content:
                arrived = time.monotonic()
                event = orjson.loads(line)
                if event["type"] == "ERROR":
                    raise _Gone(str(event["object"].get("message")))
                revision = int(event["object"]["metadata"]["resourceVersion"])
                if event["type"] == "BOOKMARK":
                    log.bookmarks += 1
                else:
                    log.arrivals[revision] = arrived
        return revision


class _Gone(Exception):
    """The stream cannot go on from where it is (410, or another error status)."""
