"""The controller base (client-go's controller pattern, controller-runtime's Reconciler):
event handlers only enqueue keys, ``reconcile(key)`` reads the shared caches and
converges, an exception means a rate-limited retry, and a ``Result`` can ask for the key
again later. Workers start only once every informer the controller uses has synced.

Rules a controller follows:

* never mutate an object from a cache (copy it; ``copy.deepcopy`` or build a new dict);
* write through the API with the object's resourceVersion, so a stale cache gives a 409
  Conflict (retried) rather than lost data;
* record what it expects to see after its own writes (``Expectations``) when the next
  reconcile could otherwise act again on a cache that has not caught up (two creates for
  one missing replica).
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from api import errors
from api.client import ApiClient
from api.events import EventRecorder
from api.informer import Informer, key_of
from api.resources import Resource
from controlplane.controllers.owners import controller_key
from controlplane.controllers.settings import ControllerSettings
from controlplane.controllers.workqueue import ShutDown, WorkQueue

logger = logging.getLogger(__name__)

Obj = dict[str, Any]
COMPONENT = "controller-manager"


@dataclass(frozen=True, slots=True)
class Result:
    """What a reconcile asks for besides success: to be looked at again after a while
    (a minReadySeconds running out, a deadline, a node's grace period)."""

    requeue_after: float | None = None


class SharedInformers:
    """One cluster-wide informer per resource, shared by every controller (each watch is
    opened once however many controllers read the kind)."""

    def __init__(self, client: ApiClient) -> None:
        self._client = client
        self._informers: dict[Resource, Informer] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def get(self, resource: Resource) -> Informer:
        informer = self._informers.get(resource)
        if informer is None:
            if self._tasks:
                raise RuntimeError(f"informer for {resource.plural} requested after start")
            informer = Informer(self._client, resource)
            self._informers[resource] = informer
        return informer

    def start(self) -> None:
        for resource, informer in self._informers.items():
            task = asyncio.create_task(informer.run(), name=f"informer-{resource.plural}")
            self._tasks.append(task)

    async def wait_synced(self) -> None:
        await asyncio.gather(*(i.synced.wait() for i in self._informers.values()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@dataclass
class Context:
    """What every controller gets: the API client, the shared informers, the event
    recorder, the clock (injected in tests) and the settings (``bramble server``'s
    flags, settings.py)."""

    client: ApiClient
    informers: SharedInformers
    recorder: EventRecorder
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    settings: ControllerSettings = field(default_factory=ControllerSettings)


class Expectations:
    """How many creations and deletions a controller is still waiting to see in its
    cache, per key (Kubernetes' ControllerExpectations). Until they are observed, or
    five minutes pass (a watch event lost for good), the key is not acted on again."""

    TTL = 300.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._pending: dict[str, tuple[int, int, float]] = {}

    def expect(self, key: str, *, creations: int = 0, deletions: int = 0) -> None:
        self._pending[key] = (creations, deletions, self._clock())

    def created(self, key: str) -> None:
        self._lower(key, 1, 0)

    def deleted(self, key: str) -> None:
        self._lower(key, 0, 1)

    def _lower(self, key: str, creations: int, deletions: int) -> None:
        pending = self._pending.get(key)
        if pending is not None:
            self._pending[key] = (pending[0] - creations, pending[1] - deletions, pending[2])

    def satisfied(self, key: str) -> bool:
        pending = self._pending.get(key)
        if pending is None:
            return True
        creations, deletions, since = pending
        if (creations <= 0 and deletions <= 0) or self._clock() - since > self.TTL:
            del self._pending[key]
            return True
        return False

    def forget(self, key: str) -> None:
        self._pending.pop(key, None)


def watch_owned_pods(
    pods: Informer, queue: WorkQueue, expectations: Expectations, *, owner_kind: str
) -> None:
    """Handlers for the pods an owner of ``owner_kind`` controls: every event enqueues the
    owner and tells its expectations what was observed (a creation; a deletion when the
    pod gets its deletionTimestamp, or goes without one)."""

    def added(pod: Obj) -> None:
        key = controller_key(pod, owner_kind)
        if key is not None:
            expectations.created(key)
            queue.add(key)

    def updated(old: Obj, new: Obj) -> None:
        key = controller_key(new, owner_kind)
        if key is None:
            return
        if new["metadata"].get("deletionTimestamp") and not old["metadata"].get(
            "deletionTimestamp"
        ):
            expectations.deleted(key)
        queue.add(key)

    def deleted(pod: Obj) -> None:
        key = controller_key(pod, owner_kind)
        if key is not None:
            if not pod["metadata"].get("deletionTimestamp"):
                expectations.deleted(key)
            queue.add(key)

    pods.add_handlers(on_add=added, on_update=updated, on_delete=deleted)


class Controller(ABC):
    """Subclasses set ``name``, register their informers and handlers in ``__init__``
    (through ``self.ctx.informers``) and implement ``reconcile``."""

    name: ClassVar[str]
    # Its events' source ("From" in kubectl describe), as Kubernetes names its
    # controllers; "<name>-controller" when not set.
    component: ClassVar[str] = ""
    workers: ClassVar[int] = 2

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.queue = WorkQueue(self.name)
        self._used: list[Informer] = []

    def informer(self, resource: Resource) -> Informer:
        informer = self.ctx.informers.get(resource)
        self._used.append(informer)
        return informer

    def enqueue(self, obj: Obj) -> None:
        self.queue.add(key_of(obj))

    def record(self, obj: Obj, kind: str, reason: str, message: str) -> None:
        component = self.component or f"{self.name}-controller"
        self.ctx.recorder.record(obj, kind, reason, message, action=self.name, component=component)

    @abstractmethod
    async def reconcile(self, key: str) -> Result | None:
        """Make the world match the object named ``key`` (``ns/name`` or ``name``)."""

    async def run(self) -> None:
        """Wait for the caches, then reconcile with ``workers`` workers until cancelled."""
        await asyncio.gather(*(i.synced.wait() for i in self._used))
        logger.info("controller started name=%s workers=%d", self.name, self.workers)
        workers = [
            asyncio.create_task(self._work(), name=f"{self.name}-worker-{i}")
            for i in range(self.workers)
        ]
        try:
            await asyncio.gather(*workers)
        finally:
            self.queue.shut_down()
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def _work(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            try:
                result = await self.reconcile(key)
            except asyncio.CancelledError:
                raise
            except errors.Conflict as e:
                # The cache was behind a write: normal, retried once the cache catches up.
                logger.debug("controller=%s key=%s conflict: %s", self.name, key, e.message)
                self.queue.add_rate_limited(key)
            except errors.ApiError as e:
                logger.warning(
                    "controller=%s key=%s retry=%d error=%s",
                    self.name, key, self.queue.requeues(key), e.message,
                )  # fmt: skip
                self.queue.add_rate_limited(key)
            except Exception:
                logger.exception("controller=%s key=%s reconcile failed", self.name, key)
                self.queue.add_rate_limited(key)
            else:
                self.queue.forget(key)
                if result is not None and result.requeue_after is not None:
                    self.queue.add_after(key, result.requeue_after)
            finally:
                self.queue.done(key)
