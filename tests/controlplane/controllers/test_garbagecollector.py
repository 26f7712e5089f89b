"""The garbage collector: its per-object rules as a table, then against a real apiserver
with ``kubectl delete --cascade=background|foreground|orphan``, owners that are gone or
replaced, dependents with two owners, and owners created a moment before their
dependents (which a lagging cache must not make look gone)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from api import errors
from api.client import ApiClient
from api.resources import resource
from controlplane.controllers.garbagecollector import GarbageCollector
from controlplane.controllers.garbagecollector.decide import (
    Delete,
    Keep,
    Owner,
    RemoveReferences,
    decide,
)
from controlplane.controllers.garbagecollector.owners import Owners
from controlplane.controllers.replicaset import ReplicaSetController
from tests.controlplane.controllers.harness import (
    CONFIGMAPS,
    PODS,
    REPLICASETS,
    pod_template,
    running,
)
from tests.controlplane.controllers.watching import wait_list
from tests.support.cluster import BrambleServer, Kubectl
from tests.support.real import require_binary
from tests.support.waiting import wait_for

Obj = dict[str, Any]
SECRETS = resource("", "Secret")
S, D, W, U = Owner.SOLID, Owner.DANGLING, Owner.WAITING, Owner.UNRESOLVABLE


def item(*finalizers: str) -> Obj:
    return {"metadata": {"name": "x", "finalizers": list(finalizers)}}


@pytest.mark.parametrize(
    ("owners", "finalizers", "has_dependents", "action"),
    [
        ([], (), False, Keep()),
        ([("a", S)], (), False, Keep()),
        ([("a", U)], (), False, Keep()),  # cannot be checked: never collected
        ([("a", D)], (), False, Delete("Background")),
        ([("a", D), ("b", D)], (), False, Delete("Background")),
        ([("a", D), ("b", S)], (), False, RemoveReferences(frozenset({"a"}))),
        ([("a", W), ("b", S), ("c", D)], (), True, RemoveReferences(frozenset({"a", "c"}))),
        ([("a", D), ("b", U)], (), False, RemoveReferences(frozenset({"a"}))),
        ([("a", W)], (), False, Delete("Background")),
        ([("a", W)], (), True, Delete("Foreground")),  # its own dependents go first
        ([("a", D)], ("orphan",), True, Delete("Orphan")),
        ([("a", D)], ("foregroundDeletion",), True, Delete("Foreground")),
    ],
)
def test_decide(
    owners: list[tuple[str, Owner]], finalizers: tuple[str, ...], has_dependents: bool, action: Any
) -> None:
    assert decide(item(*finalizers), owners, has_dependents=has_dependents) == action


class FakeApi:
    """Answers GETs from ``live`` (name -> object; absent: 404) and counts them."""

    def __init__(self, live: dict[str, Obj]) -> None:
        self.live = live
        self.gets = 0

    async def get(self, _res: object, _ns: object, name: str) -> Obj:
        self.gets += 1
        if name not in self.live:
            raise errors.NotFound(f"{name} not found")
        return self.live[name]


class FakeCache:
    def __init__(self, cached: dict[str, Obj]) -> None:
        self.cached = cached

    def get(self, key: str) -> Obj | None:
        return self.cached.get(key)


def cm(uid: str, *, foreground: bool = False) -> Obj:
    meta: Obj = {"name": "owner", "namespace": "ns", "uid": uid}
    if foreground:
        meta |= {"deletionTimestamp": "2026-01-01T00:00:00Z", "finalizers": ["foregroundDeletion"]}
    return {"metadata": meta}


OWNER_REF = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": "u1"}


@pytest.mark.parametrize(
    ("cached", "live", "reference", "namespace", "state", "gets"),
    [
        pytest.param(cm("u1"), cm("u1"), OWNER_REF, "ns", S, 0, id="cached-no-get"),
        pytest.param(None, cm("u1"), OWNER_REF, "ns", S, 1, id="cache-lags-live-wins"),
        pytest.param(cm("u0"), cm("u1"), OWNER_REF, "ns", S, 1, id="cache-stale-uid"),
        pytest.param(None, None, OWNER_REF, "ns", D, 1, id="gone"),
        pytest.param(None, cm("u2"), OWNER_REF, "ns", D, 1, id="replaced"),
        pytest.param(cm("u1", foreground=True), None, OWNER_REF, "ns", W, 0, id="waiting"),
        pytest.param(None, None, {**OWNER_REF, "kind": "Widget"}, "ns", U, 0, id="unknown-kind"),
        pytest.param(None, None, OWNER_REF, None, U, 0, id="namespaced-owner-of-cluster-object"),
    ],
)
async def test_owner_lookup_asks_the_apiserver_unless_the_cache_shows_the_owner(
    cached: Obj | None,
    live: Obj | None,
    reference: Obj,
    namespace: str | None,
    state: Owner,
    gets: int,
) -> None:
    api = FakeApi({"owner": live} if live else {})
    cache = FakeCache({"ns/owner": cached} if cached else {})
    owners = Owners(api, {CONFIGMAPS: cache})  # type: ignore[arg-type,dict-item]
    assert await owners.state(reference, namespace) is state
    assert api.gets == gets
    if state is D:  # remembered: a thousand dependents cost one GET
        assert await owners.state(reference, namespace) is D
        assert api.gets == gets


# --- against the apiserver ---------------------------------------------------------------


@pytest.fixture
def kubectl(server: BrambleServer, tmp_path: Path) -> Kubectl:
    return Kubectl(require_binary("kubectl", package="kubectl"), server.kubeconfig, tmp_path / "kc")


def replicaset(name: str, replicas: int) -> Obj:
    return {
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": pod_template({"app": name}),
        },
    }


def ref(owner: Obj, **extra: Any) -> Obj:
    return {
        "apiVersion": owner.get("apiVersion", "v1"),
        "kind": owner.get("kind", "ConfigMap"),
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        **extra,
    }


def configmap(name: str, *owners: Obj) -> Obj:
    meta: Obj = {"name": name}
    if owners:
        meta["ownerReferences"] = [ref(o) for o in owners]
    return {"metadata": meta, "data": {}}


async def pods_of(client: ApiClient, ns: str, app: str, count: int) -> list[Obj]:
    return await wait_list(
        client, PODS, ns, lambda pods: len(pods) == count,
        what=f"{count} pods of {app}", params={"labelSelector": f"app={app}"},
    )  # fmt: skip


async def gone(client: ApiClient, res: Any, ns: str, name: str) -> None:
    await wait_list(
        client, res, ns, lambda items: not items, what=f"{name} gone",
        params={"fieldSelector": f"metadata.name={name}"},
    )  # fmt: skip


async def test_background_deletes_the_pods_of_a_deleted_replicaset(
    client: ApiClient, namespace: str, kubectl: Kubectl
) -> None:
    async with running(client, [ReplicaSetController, GarbageCollector]):
        await client.create(REPLICASETS, namespace, replicaset("bg", 3))
        await pods_of(client, namespace, "bg", 3)
        await asyncio.to_thread(kubectl.ok, "-n", namespace, "delete", "rs", "bg")
        await pods_of(client, namespace, "bg", 0)


async def test_foreground_waits_for_the_pods_then_deletes_the_owner(
    client: ApiClient, namespace: str, kubectl: Kubectl
) -> None:
    async with running(client, [ReplicaSetController, GarbageCollector]):
        await client.create(REPLICASETS, namespace, replicaset("fg", 2))
        pods = await pods_of(client, namespace, "fg", 2)
        # A pod on a node is deleted gracefully: it stays until its "kubelet" confirms.
        held = pods[0]["metadata"]["name"]
        binding = {
            "apiVersion": "v1", "kind": "Binding", "metadata": {"name": held},
            "target": {"kind": "Node", "name": "node-1"},
        }  # fmt: skip
        await client.request(
            "POST", f"/api/v1/namespaces/{namespace}/pods/{held}/binding", body=binding
        )
        deleting = asyncio.create_task(
            asyncio.to_thread(
                kubectl, "-n", namespace, "delete", "rs", "fg", "--cascade=foreground",
                "--timeout=30s",
            )
        )  # fmt: skip
        await wait_for(
            client, PODS, namespace, held,
            lambda p: bool(p["metadata"].get("deletionTimestamp")), what="being deleted",
        )  # fmt: skip
        await pods_of(client, namespace, "fg", 1)  # the unbound one is gone already
        rs = await client.get(REPLICASETS, namespace, "fg")
        assert rs["metadata"]["deletionTimestamp"]
        assert rs["metadata"]["finalizers"] == ["foregroundDeletion"]
        assert not deleting.done()  # kubectl still waits

        await client.delete(PODS, namespace, held, grace_period=0)  # the kubelet confirms
        result = await asyncio.wait_for(deleting, 30)
        assert result.returncode == 0, result.stderr
        with pytest.raises(errors.NotFound):
            await client.get(REPLICASETS, namespace, "fg")
        await pods_of(client, namespace, "fg", 0)


async def test_orphan_leaves_the_pods_without_the_reference(
    client: ApiClient, namespace: str, kubectl: Kubectl
) -> None:
    async with running(client, [ReplicaSetController, GarbageCollector]):
        await client.create(REPLICASETS, namespace, replicaset("orph", 2))
        await pods_of(client, namespace, "orph", 2)
        await asyncio.to_thread(
            kubectl.ok, "-n", namespace, "delete", "rs", "orph", "--cascade=orphan",
            "--timeout=30s",
        )  # fmt: skip
        with pytest.raises(errors.NotFound):
            await client.get(REPLICASETS, namespace, "orph")
        pods = await pods_of(client, namespace, "orph", 2)
        assert all(not p["metadata"].get("ownerReferences") for p in pods)
        assert all(not p["metadata"].get("deletionTimestamp") for p in pods)


async def test_a_dependent_lives_while_one_owner_remains(client: ApiClient, namespace: str) -> None:
    async with running(client, [GarbageCollector]):
        first = await client.create(CONFIGMAPS, namespace, configmap("first"))
        second = await client.create(CONFIGMAPS, namespace, configmap("second"))
        await client.create(CONFIGMAPS, namespace, configmap("shared", first, second))
        await client.delete(CONFIGMAPS, namespace, "first")
        shared = await wait_for(
            client, CONFIGMAPS, namespace, "shared",
            lambda c: len(c["metadata"].get("ownerReferences") or []) == 1,
            what="left with one owner",
        )  # fmt: skip
        assert shared["metadata"]["ownerReferences"][0]["uid"] == second["metadata"]["uid"]
        await client.delete(CONFIGMAPS, namespace, "second")
        await gone(client, CONFIGMAPS, namespace, "shared")


async def test_owners_that_never_existed_or_were_replaced(
    client: ApiClient, namespace: str
) -> None:
    async with running(client, [GarbageCollector]):
        ghost = {"metadata": {"name": "ghost", "uid": "00000000-0000-0000-0000-000000000000"}}
        await client.create(CONFIGMAPS, namespace, configmap("haunted", ghost))
        old = await client.create(CONFIGMAPS, namespace, configmap("reborn"))
        await client.delete(CONFIGMAPS, namespace, "reborn")
        await client.create(CONFIGMAPS, namespace, configmap("reborn"))  # a new uid
        await client.create(CONFIGMAPS, namespace, configmap("stale", old))
        await gone(client, CONFIGMAPS, namespace, "haunted")
        await gone(client, CONFIGMAPS, namespace, "stale")
        await client.get(CONFIGMAPS, namespace, "reborn")  # the new owner is untouched


async def test_fresh_owners_are_not_taken_for_gone(client: ApiClient, namespace: str) -> None:
    """Owners (Secrets) and dependents (ConfigMaps, another watch) created back to back,
    faster than the caches may follow: nothing live is collected."""
    async with running(client, [GarbageCollector]):
        for i in range(20):
            secret = {"metadata": {"name": f"owner-{i}"}, "data": {}}
            owner = await client.create(SECRETS, namespace, secret)
            owner |= {"kind": "Secret", "apiVersion": "v1"}
            await client.create(CONFIGMAPS, namespace, configmap(f"dep-{i}", owner))
        # A marker whose owner is gone: once it is collected, the collector has been
        # through everything made before it.
        marker = await client.create(CONFIGMAPS, namespace, configmap("marker-owner"))
        await client.create(CONFIGMAPS, namespace, configmap("marker", marker))
        await client.delete(CONFIGMAPS, namespace, "marker-owner")
        await gone(client, CONFIGMAPS, namespace, "marker")
        names = {c["metadata"]["name"] for c in (await client.list(CONFIGMAPS, namespace))["items"]}
        assert {f"dep-{i}" for i in range(20)} <= names
