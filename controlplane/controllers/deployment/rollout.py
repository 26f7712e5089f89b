"""The strategies: what one reconcile of a Deployment does (Kubernetes' syncDeployment
and its rolling.go, recreate.go and sync.go steps), on top of ``Sync``'s writes.

Order of the checks, as Kubernetes: a Deployment being deleted only gets its status; a
pause or resume is noted in the Progressing condition; a paused Deployment, or one whose
``spec.replicas`` changed (a ReplicaSet's desired-replicas annotation differs), is only
scaled, proportionally; otherwise the strategy rolls:

* RollingUpdate: grow the new ReplicaSet within maxSurge, else shrink old ones within
  maxUnavailable; one step per reconcile, the next comes with the ReplicaSets' status;
* Recreate: scale every old ReplicaSet to zero, wait until none of their pods exists,
  then create and scale up the new one.

A rollout that has completed trims the history to ``revisionHistoryLimit``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from controlplane.controllers.base import Result
from controlplane.controllers.deployment import status as st
from controlplane.controllers.deployment.objects import Obj, meta, replicas, view
from controlplane.controllers.deployment.rolling import (
    max_unavailable,
    new_rs_new_replicas,
    proportional_scale,
    rolling_scale_down,
)
from controlplane.controllers.deployment.sync import Sync

PodsOf = Callable[[str], list[Obj]]  # the pods whose controller has this uid


async def run(sync: Sync, pods_of: PodsOf) -> Result | None:
    if meta(sync.d).get("deletionTimestamp"):
        new, _old = await sync.new_and_old(create=False)
        return await sync_status(sync, new)
    cond = st.paused_condition(sync.d, sync.now)
    if cond is not None:
        st.set_condition(sync.status, cond)
        await sync.write_status()
    if (sync.d.get("spec") or {}).get("paused") or await scaling_event(sync):
        return await scale(sync)
    if not sync.spec.rolling:
        return await recreate(sync, pods_of)
    return await rolling(sync)


async def scaling_event(sync: Sync) -> bool:
    new, old = await sync.new_and_old(create=False)
    for rs in ([new] if new is not None else []) + old:
        desired = view(rs).desired
        if replicas(rs) > 0 and desired is not None and desired != sync.spec.replicas:
            return True
    return False


def _by_name(sync: Sync, name: str) -> Obj:
    return next(rs for rs in sync.rs_list if meta(rs).get("name") == name)


async def _apply(sync: Sync, sizes: dict[str, int]) -> bool:
    scaled = False
    for name, size in sizes.items():
        scaled = await sync.scale(_by_name(sync, name), size) or scaled
    return scaled


async def scale(sync: Sync) -> Result | None:
    """Scaling only (sync): proportional, no rollout progress; a paused Deployment
    still trims its history."""
    new, old = await sync.new_and_old(create=False)
    replicas_now = int(sync.status.get("replicas") or 0)
    sizes = proportional_scale(
        sync.spec,
        view(new) if new is not None else None,
        [view(rs) for rs in old],
        status_replicas=replicas_now,
    )
    await _apply(sync, sizes)
    new, old = _refresh(sync, new)
    if (sync.d.get("spec") or {}).get("paused"):
        await sync.cleanup(old)
    status = st.calculate_status(
        sync.d, sync.rs_list, new, max_unavailable=max_unavailable(sync.spec), now=sync.now
    )
    sync.d["status"] = status
    await sync.write_status()
    return None


def _refresh(sync: Sync, new: Obj | None) -> tuple[Obj | None, list[Obj]]:
    """The new and old ReplicaSets again, as last written."""
    if new is None:
        return None, list(sync.rs_list)
    fresh = _by_name(sync, str(meta(new).get("name")))
    return fresh, [rs for rs in sync.rs_list if rs is not fresh]


async def rolling(sync: Sync) -> Result | None:
    new, old = await sync.new_and_old(create=True)
    assert new is not None
    wanted = sync.spec.replicas
    if replicas(new) != wanted:
        all_views = [view(rs) for rs in sync.rs_list]
        target = (
            wanted
            if replicas(new) > wanted
            else new_rs_new_replicas(sync.spec, all_views, view(new))
        )
        if await sync.scale(new, target):
            return await sync_rollout(sync, _refresh(sync, new)[0])
    active = [view(rs) for rs in old if replicas(rs) > 0]
    if await _apply(sync, rolling_scale_down(sync.spec, active, view(new))):
        return await sync_rollout(sync, _refresh(sync, new)[0])
    if st.complete(sync.d, sync.status):
        await sync.cleanup(old)
    return await sync_rollout(sync, new)


async def recreate(sync: Sync, pods_of: PodsOf) -> Result | None:
    new, old = await sync.new_and_old(create=False)
    scaled = await _apply(sync, {meta(rs)["name"]: 0 for rs in old if replicas(rs) > 0})
    if scaled:
        return await sync_rollout(sync, _refresh(sync, new)[0])
    if old_pods_running(new, old, pods_of):
        return await sync_rollout(sync, new)
    if new is None:
        new, old = await sync.new_and_old(create=True)
        assert new is not None
    if replicas(new) != sync.spec.replicas:
        await sync.scale(new, sync.spec.replicas)
        new = _refresh(sync, new)[0]
    if st.complete(sync.d, sync.status):
        await sync.cleanup(old)
    return await sync_rollout(sync, new)


def old_pods_running(new: Obj | None, old: Sequence[Obj], pods_of: PodsOf) -> bool:
    """Whether any pod of an old ReplicaSet still exists (terminating counts) and has
    not finished: Recreate never lets two templates run at once."""
    if sum(int((rs.get("status") or {}).get("replicas") or 0) for rs in old) > 0:
        return True
    for rs in old:
        for pod in pods_of(str(meta(rs).get("uid"))):
            if (pod.get("status") or {}).get("phase") not in ("Failed", "Succeeded"):
                return True
    return False


def _replica_failure(all_rs: Sequence[Obj], new: Obj | None) -> Obj | None:
    """A ReplicaFailure condition of the new ReplicaSet (else of an old one), carried to
    the Deployment as Kubernetes' getReplicaFailures does."""
    ordered = ([new] if new is not None else []) + [rs for rs in all_rs if rs is not new]
    for rs in ordered:
        cond = st.get_condition(rs.get("status") or {}, st.REPLICA_FAILURE)
        if cond is not None and cond.get("status") == "True":
            return {
                "type": st.REPLICA_FAILURE,
                "status": "True",
                "lastUpdateTime": cond.get("lastTransitionTime"),
                "lastTransitionTime": cond.get("lastTransitionTime"),
                "reason": cond.get("reason"),
                "message": cond.get("message"),
            }
    return None


async def sync_rollout(sync: Sync, new: Obj | None) -> Result | None:
    """The status of a rolling-out Deployment, with its Progressing condition
    (syncRolloutStatus); asks to be looked at again when a deadline could pass."""
    d = sync.d
    status = st.calculate_status(
        d, sync.rs_list, new, max_unavailable=max_unavailable(sync.spec), now=sync.now
    )
    st.rollout_status(d, status, meta(new).get("name") if new is not None else None, now=sync.now)
    failure = _replica_failure(sync.rs_list, new)
    if failure is not None:
        st.set_condition(status, failure)
    else:
        st.remove_condition(status, st.REPLICA_FAILURE)
    if status == sync.status:
        later = st.requeue_after(d, status, sync.now)
        return Result(requeue_after=later) if later is not None else None
    sync.d["status"] = status
    await sync.write_status()
    return None


async def sync_status(sync: Sync, new: Obj | None) -> Result | None:
    status = st.calculate_status(
        sync.d, sync.rs_list, new, max_unavailable=max_unavailable(sync.spec), now=sync.now
    )
    sync.d["status"] = status
    await sync.write_status()
    return None
