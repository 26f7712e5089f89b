"""Leader election through a ``coordination.k8s.io/v1`` Lease, as client-go's
``leaderelection`` package does it, so that of several replicas of a component only one
acts at a time (the scheduler: ``kube-system/bramble-scheduler``; the controllers reuse it).

The Lease is the lock::

    spec.holderIdentity        who leads ("" after a release)
    spec.leaseDurationSeconds  how long the others wait after the last renewal they saw
    spec.acquireTime           when the current holder took it
    spec.renewTime             the holder's last renewal
    spec.leaseTransitions      how many times it changed hands

Every write is a compare-and-swap on ``metadata.resourceVersion`` (create when absent,
update otherwise), so two candidates can never both win the same round: the loser gets
409 Conflict and tries again later.

Expiry is judged on the candidate's own monotonic clock, not on the ``renewTime`` the
holder wrote: a candidate remembers when it last *saw the record change* and takes the
lock only once it has seen no change for ``lease_duration``. Clock skew between machines
therefore never makes a live leader look expired (client-go's ``observedTime``).

``try_acquire_or_renew`` is one round and never raises for API errors (they count as a
lost round); ``run`` loops: acquire (every ``retry_period``), call ``lead`` while leading,
renew every ``retry_period``, and give up leadership when no renewal succeeded for
``renew_deadline`` (``lead`` is then cancelled). ``release`` hands the lock back so a
successor need not wait for expiry. Both clocks are injectable for tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from api import errors
from api.client import ApiClient
from api.resources import resource

logger = logging.getLogger(__name__)

LEASES = resource("coordination.k8s.io", "Lease")
Obj = dict[str, Any]


def micro_time(moment: datetime) -> str:
    """A Kubernetes MicroTime: RFC 3339 with microseconds, in UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class ElectionConfig:
    """client-go's defaults (kube-scheduler's too): 15 s lease, 10 s renew deadline, 2 s
    retry period. ``renew_deadline`` must be below ``lease_duration``, so a leader that
    cannot renew stops acting before anyone else may start."""

    namespace: str
    name: str
    identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not self.identity:
            raise ValueError("leader election needs a non-empty identity")
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError(
                "leader election needs retry_period < renew_deadline < lease_duration, got "
                f"{self.retry_period} < {self.renew_deadline} < {self.lease_duration}"
            )


class LeaderElector:
    def __init__(
        self,
        client: ApiClient,
        config: ElectionConfig,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self.config = config
        self._now = now
        self._monotonic = monotonic
        self._observed: tuple[str, str] | None = None  # (holder, renewTime) last seen
        self._observed_at = 0.0  # monotonic time it was first seen
        self._lease: Obj | None = None  # the newest copy we read or wrote
        self.leading = False

    @property
    def holder(self) -> str:
        """The holder in the newest copy of the Lease this elector has seen."""
        spec = (self._lease or {}).get("spec") or {}
        return str(spec.get("holderIdentity") or "")

    async def try_acquire_or_renew(self) -> bool:
        """One round: take the Lease if it is free or expired, renew it if it is ours.
        True when this elector holds it afterwards."""
        cfg = self.config
        now = self._now()
        try:
            current: Obj | None = await self._client.get(LEASES, cfg.namespace, cfg.name)
        except errors.NotFound:
            current = None
        except errors.ApiError as e:
            logger.warning("lease=%s/%s read failed: %s", cfg.namespace, cfg.name, e.message)
            return False
        if current is None:
            return await self._write(None, self._spec(None, now))
        spec = current.get("spec") or {}
        holder = str(spec.get("holderIdentity") or "")
        record = (holder, str(spec.get("renewTime") or ""))
        if record != self._observed:
            self._observed = record
            self._observed_at = self._monotonic()
        self._lease = current
        duration = spec.get("leaseDurationSeconds") or cfg.lease_duration
        expired = self._monotonic() >= self._observed_at + float(duration)
        if holder and holder != cfg.identity and not expired:
            self.leading = False
            return False
        return await self._write(current, self._spec(spec, now))

    def _spec(self, old: Obj | None, now: datetime) -> Obj:
        cfg = self.config
        stamp = micro_time(now)
        ours = old is not None and old.get("holderIdentity") == cfg.identity
        spec: Obj = {
            "holderIdentity": cfg.identity,
            "leaseDurationSeconds": max(1, round(cfg.lease_duration)),
            "renewTime": stamp,
            "acquireTime": (old or {}).get("acquireTime") if ours else stamp,
            "leaseTransitions": int((old or {}).get("leaseTransitions") or 0),
        }
        if old is not None and not ours:
            spec["leaseTransitions"] += (
                1  # it changes hands (client-go counts a take after a release too)
            )
        return spec

    async def _write(self, current: Obj | None, spec: Obj) -> bool:
        cfg = self.config
        try:
            if current is None:
                body = {"metadata": {"name": cfg.name, "namespace": cfg.namespace}, "spec": spec}
                written = await self._client.create(LEASES, cfg.namespace, body)
            else:
                body = {**current, "spec": {**(current.get("spec") or {}), **spec}}
                written = await self._client.update(LEASES, cfg.namespace, cfg.name, body)
        except (errors.Conflict, errors.AlreadyExists):
            logger.debug("lease=%s/%s lost a race; trying later", cfg.namespace, cfg.name)
            self.leading = False
            return False
        except errors.ApiError as e:
            logger.warning("lease=%s/%s write failed: %s", cfg.namespace, cfg.name, e.message)
            return False
        self._lease = written
        self._observed = (cfg.identity, str(spec["renewTime"]))
        self._observed_at = self._monotonic()
        if not self.leading:
            logger.info("lease=%s/%s acquired identity=%s", cfg.namespace, cfg.name, cfg.identity)
        self.leading = True
        return True

    async def release(self) -> bool:
        """Give the Lease up if we hold it (holder cleared, duration 1 s), so a successor
        takes over at once. True when released."""
        cfg = self.config
        self.leading = False
        try:
            current = await self._client.get(LEASES, cfg.namespace, cfg.name)
        except errors.ApiError:
            return False
        spec = current.get("spec") or {}
        if spec.get("holderIdentity") != cfg.identity:
            return False
        stamp = micro_time(self._now())
        released = {
            **spec,
            "holderIdentity": "",
            "leaseDurationSeconds": 1,
            "renewTime": stamp,
            "acquireTime": stamp,
        }
        try:
            await self._client.update(
                LEASES, cfg.namespace, cfg.name, {**current, "spec": released}
            )
        except errors.ApiError as e:
            logger.warning("lease=%s/%s release failed: %s", cfg.namespace, cfg.name, e.message)
            return False
        logger.info("lease=%s/%s released identity=%s", cfg.namespace, cfg.name, cfg.identity)
        return True

    async def run(
        self, lead: Callable[[], Coroutine[Any, Any, None]], *, release: bool = True
    ) -> None:
        """Campaign forever: while leading, ``lead()`` runs; it is cancelled when the
        lease is lost, and started again on the next win. Returns only if ``lead``
        returns by itself; the Lease is released on the way out (also on cancellation)."""
        try:
            while True:
                await self._acquire()
                task = asyncio.create_task(lead(), name=f"leader-{self.config.name}")
                renewer = asyncio.create_task(self._keep_renewing(), name="lease-renewer")
                try:
                    await asyncio.wait({task, renewer}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    # Also when we are cancelled: neither may outlive this campaign (a
                    # renewer left running would take the lease back after the release).
                    for child in (task, renewer):
                        child.cancel()
                    await asyncio.gather(task, renewer, return_exceptions=True)
                if not task.cancelled():
                    task.result()  # lead() returned (or raised) by itself: we are finished
                    return
                logger.warning(
                    "lease=%s/%s lost identity=%s; stopped leading",
                    self.config.namespace, self.config.name, self.config.identity,
                )  # fmt: skip
        finally:
            if release and self.leading:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self.release())
            self.leading = False

    async def _acquire(self) -> None:
        while True:
            if await self.try_acquire_or_renew():
                return
            await asyncio.sleep(self._jittered(self.config.retry_period))

    async def _keep_renewing(self) -> None:
        """Returns when leadership is lost: no successful renewal for renew_deadline."""
        last_ok = self._monotonic()
        while True:
            await asyncio.sleep(self.config.retry_period)
            try:
                renewed = await asyncio.wait_for(
                    self.try_acquire_or_renew(), timeout=self.config.renew_deadline
                )
            except TimeoutError:
                renewed = False
            if renewed:
                last_ok = self._monotonic()
            elif not self.leading or self._monotonic() - last_ok >= self.config.renew_deadline:
                self.leading = False
                return

    @staticmethod
    def _jittered(period: float) -> float:
        return period * (1 + 0.2 * random.random())  # client-go's JitterFactor 1.2
