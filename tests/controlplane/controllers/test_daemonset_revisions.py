"""A DaemonSet's ControllerRevisions against a real apiserver, with hollow nodes: one per
template, pods labelled with its hash, renumbered on undo, old ones pruned to
``revisionHistoryLimit``, orphans adopted, all collected with their DaemonSet; and the
real kubectl's ``rollout history``, ``rollout undo`` and ``rollout status``.

No scheduler runs: daemon pods stay unbound (so a delete is immediate) and the tests play
the kubelets (``kubelet`` makes every new pod Running and Ready)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from api import errors
from api.client import ApiClient
from api.resources import resource
from controlplane.controllers.daemonset import DaemonSetController
from controlplane.controllers.daemonset.pods import REVISION_HASH, new_pod, template_hash
from controlplane.controllers.garbagecollector import GarbageCollector
from tests.controlplane.controllers.harness import DAEMONSETS, PODS, running
from tests.controlplane.controllers.test_daemonset import (
    daemon_set,
    hollow_nodes,
    on_nodes,
    set_image,
    wait_pods,
)
from tests.controlplane.controllers.test_deployment_kubectl import kubelet
from tests.controlplane.controllers.watching import wait_list
from tests.support.cluster import BrambleServer, Kubectl, unique
from tests.support.real import require_binary
from tests.support.waiting import wait_for

REVISIONS = resource("apps", "ControllerRevision")
Obj = dict[str, Any]
TIMEOUT = 20.0


def image(obj: Obj) -> str:
    """The first container's image of a pod, or of the template a revision restores."""
    spec = obj["data"]["spec"]["template"]["spec"] if "data" in obj else obj["spec"]
    return str(spec["containers"][0]["image"])


async def wait_revisions(
    client: ApiClient, namespace: str, name: str, wanted: dict[str, int], *, what: str
) -> list[Obj]:
    """The DaemonSet's revisions once they are exactly ``wanted`` (image -> number)."""
    return await wait_list(
        client, REVISIONS, namespace,
        lambda items: {image(r): r["revision"] for r in items} == wanted
        and len(items) == len(wanted),
        what=what, params={"labelSelector": f"app={name}"}, timeout=TIMEOUT,
    )  # fmt: skip


def rolled_to(tag: str, nodes: set[str]) -> Any:
    return lambda pods: on_nodes(nodes)(pods) and all(image(p) == tag for p in pods)


async def test_a_revision_per_template_renumbered_on_undo_pruned_and_collected(
    client: ApiClient, namespace: str
) -> None:
    lab = unique("lab")
    nodes = {f"{lab}-{i}" for i in range(2)}
    manifest = daemon_set("agent", lab)
    manifest["spec"]["revisionHistoryLimit"] = 2
    v1, v2, v3, v4 = (f"localhost/busybox:v{i}" for i in range(1, 5))
    manifest["spec"]["template"]["spec"]["containers"][0]["image"] = v1
    async with (
        hollow_nodes(client) as add,
        running(client, [DaemonSetController, GarbageCollector]),
        kubelet(client, namespace),
    ):
        for node in sorted(nodes):
            await add(node, labels={"lab": lab})
        created = await client.create(DAEMONSETS, namespace, manifest)
        [first] = await wait_revisions(client, namespace, "agent", {v1: 1}, what="revision 1")
        pods = await wait_pods(client, namespace, "agent", rolled_to(v1, nodes), what="placed")
        hashed = template_hash(created["spec"]["template"])
        assert first["metadata"]["name"] == f"agent-{hashed}"
        assert first["metadata"]["labels"] == {"app": "agent", REVISION_HASH: hashed}
        ref = first["metadata"]["ownerReferences"][0]
        assert (ref["kind"], ref["uid"], ref["controller"]) == (
            "DaemonSet", created["metadata"]["uid"], True
        )  # fmt: skip
        template = created["spec"]["template"]
        metadata = {"creationTimestamp": None, **template["metadata"]}
        assert first["data"] == {
            "spec": {"template": {**template, "metadata": metadata, "$patch": "replace"}}
        }
        assert {p["metadata"]["labels"][REVISION_HASH] for p in pods} == {hashed}

        await set_image(client, namespace, "agent", v2)
        await wait_pods(client, namespace, "agent", rolled_to(v2, nodes), what="at v2")
        await wait_revisions(client, namespace, "agent", {v1: 1, v2: 2}, what="revision 2")

        # Undo by hand: the first template comes back, and its revision becomes 3.
        await set_image(client, namespace, "agent", v1)
        again = await wait_pods(client, namespace, "agent", rolled_to(v1, nodes), what="v1 again")
        assert {p["metadata"]["labels"][REVISION_HASH] for p in again} == {hashed}
        await wait_revisions(client, namespace, "agent", {v2: 2, v1: 3}, what="v1 renumbered")

        # Two more templates: three old revisions, the history keeps two (the oldest goes).
        await set_image(client, namespace, "agent", v3)
        await wait_pods(client, namespace, "agent", rolled_to(v3, nodes), what="at v3")
        await set_image(client, namespace, "agent", v4)
        await wait_pods(client, namespace, "agent", rolled_to(v4, nodes), what="at v4")
        await wait_revisions(client, namespace, "agent", {v1: 3, v3: 4, v4: 5}, what="pruned")

        # A revision deleted by hand is made again; the DaemonSet's delete takes them all.
        latest = await client.get(DAEMONSETS, namespace, "agent")
        current = f"agent-{template_hash(latest['spec']['template'])}"
        gone = (await client.get(REVISIONS, namespace, current))["metadata"]["uid"]
        await client.delete(REVISIONS, namespace, current)
        await wait_for(
            client, REVISIONS, namespace, current,
            lambda r: r["metadata"]["uid"] != gone and r["revision"] == 5,
            what="made again", timeout=TIMEOUT,
        )  # fmt: skip
        await client.delete(DAEMONSETS, namespace, "agent")
        await wait_list(
            client, REVISIONS, namespace, lambda items: not items, what="collected",
            params={"labelSelector": "app=agent"}, timeout=TIMEOUT,
        )  # fmt: skip


async def test_an_orphaned_revision_is_adopted_instead_of_copied(
    client: ApiClient, namespace: str
) -> None:
    """``kubectl delete ds --cascade=orphan`` leaves the revisions; the DaemonSet made
    again takes its template's revision back, with its number."""
    lab = unique("lab")
    async with (
        hollow_nodes(client) as add,
        running(client, [DaemonSetController, GarbageCollector]),
    ):
        await add(f"{lab}-0", labels={"lab": lab})
        await client.create(DAEMONSETS, namespace, daemon_set("keep", lab))
        [before] = await wait_list(
            client, REVISIONS, namespace, lambda items: len(items) == 1, what="revision 1",
            params={"labelSelector": "app=keep"}, timeout=TIMEOUT,
        )  # fmt: skip
        await client.delete(DAEMONSETS, namespace, "keep", propagation_policy="Orphan")
        await wait_for(
            client, REVISIONS, namespace, before["metadata"]["name"],
            lambda r: not r["metadata"].get("ownerReferences"), what="orphaned", timeout=TIMEOUT,
        )  # fmt: skip
        await wait_list(
            client, DAEMONSETS, namespace, lambda items: not items, what="deleted",
            params={"fieldSelector": "metadata.name=keep"}, timeout=TIMEOUT,
        )  # fmt: skip
        second = await client.create(DAEMONSETS, namespace, daemon_set("keep", lab))
        adopted = await wait_for(
            client, REVISIONS, namespace, before["metadata"]["name"],
            lambda r: (r["metadata"].get("ownerReferences") or [{}])[0].get("uid")
            == second["metadata"]["uid"],
            what="adopted", timeout=TIMEOUT,
        )  # fmt: skip
        assert adopted["metadata"]["uid"] == before["metadata"]["uid"]
        assert adopted["revision"] == 1
        listed = await client.list(REVISIONS, namespace, params={"labelSelector": "app=keep"})
        assert len(listed["items"]) == 1


async def test_pods_made_before_revisions_existed_are_kept_up_to_date(
    client: ApiClient, namespace: str
) -> None:
    """An upgrade from a bramble without ControllerRevisions: the pods already carry the
    template hash, which names the revision now made, so no daemon is replaced."""
    lab = unique("lab")
    node = f"{lab}-0"
    created = await client.create(DAEMONSETS, namespace, daemon_set("old", lab))
    hashed = template_hash(created["spec"]["template"])
    async with hollow_nodes(client) as add:
        await add(node, labels={"lab": lab})
        # The pod as the controller made it before, of a generation since left behind
        # (as after a change of the update strategy): only the hash says it is current.
        old_pod = new_pod(created, node, hashed)
        old_pod["metadata"]["labels"]["pod-template-generation"] = "0"
        before = await client.create(PODS, namespace, old_pod)
        async with running(client, [DaemonSetController]):
            [made] = await wait_revisions(
                client, namespace, "old", {"localhost/busybox": 1}, what="made"
            )
            assert made["metadata"]["labels"][REVISION_HASH] == hashed
            await wait_for(
                client, DAEMONSETS, namespace, "old",
                lambda d: d.get("status", {}).get("updatedNumberScheduled") == 1
                and d["status"].get("observedGeneration") == 1,
                what="counted as updated", timeout=TIMEOUT,
            )  # fmt: skip
            pods = await wait_pods(client, namespace, "old", on_nodes({node}), what="kept")
            assert [p["metadata"]["uid"] for p in pods] == [before["metadata"]["uid"]]


async def test_a_hash_collision_raises_the_collision_count(
    client: ApiClient, namespace: str
) -> None:
    """Another template's revision already has the name: the DaemonSet's
    ``status.collisionCount`` goes to 1 and its revision and pods take the new hash."""
    lab = unique("lab")
    # Stored before the controller runs, so the hash of the defaulted template is known.
    created = await client.create(DAEMONSETS, namespace, daemon_set("clash", lab))
    taken = template_hash(created["spec"]["template"])
    squatter: Obj = {
        "apiVersion": "apps/v1", "kind": "ControllerRevision",
        "metadata": {"name": f"clash-{taken}", "labels": {"app": "other"}},
        "data": {"spec": {"template": {"$patch": "replace"}}}, "revision": 1,
    }  # fmt: skip
    await client.create(REVISIONS, namespace, squatter)
    async with hollow_nodes(client) as add, running(client, [DaemonSetController]):
        await add(f"{lab}-0", labels={"lab": lab})
        await wait_for(
            client, DAEMONSETS, namespace, "clash",
            lambda d: d.get("status", {}).get("collisionCount") == 1, what="collided",
            timeout=TIMEOUT,
        )  # fmt: skip
        rehashed = template_hash(created["spec"]["template"], 1)
        [made] = await wait_revisions(
            client, namespace, "clash", {"localhost/busybox": 1}, what="made"
        )
        assert made["metadata"]["name"] == f"clash-{rehashed}"
        pods = await wait_pods(client, namespace, "clash", on_nodes({f"{lab}-0"}), what="placed")
        assert pods[0]["metadata"]["labels"][REVISION_HASH] == rehashed
    untouched = await client.get(REVISIONS, namespace, f"clash-{taken}")
    assert untouched["metadata"]["labels"] == {"app": "other"}


async def test_the_api_refuses_a_revision_without_data_and_a_changed_data(
    client: ApiClient, namespace: str
) -> None:
    body: Obj = {
        "apiVersion": "apps/v1", "kind": "ControllerRevision",
        "metadata": {"name": "by-hand", "labels": {"app": "by-hand"}}, "revision": -1,
    }  # fmt: skip
    with pytest.raises(errors.Invalid) as refused:
        await client.create(REVISIONS, namespace, body)
    assert refused.value.code == 422
    assert {(c.field, c.message) for c in refused.value.causes} == {
        ("data", "Required value: data is mandatory"),
        ("revision", "Invalid value: -1: must be greater than or equal to 0"),
    }
    stored = await client.create(REVISIONS, namespace, {**body, "data": {"a": 1}, "revision": 1})
    with pytest.raises(errors.Invalid) as refused:
        await client.update(REVISIONS, namespace, "by-hand", {**stored, "data": {"a": 2}})
    assert [c.field for c in refused.value.causes] == ["data"]
    assert "field is immutable" in refused.value.causes[0].message
    renumbered = await client.update(REVISIONS, namespace, "by-hand", {**stored, "revision": 7})
    assert renumbered["revision"] == 7
    listed = await client.list(REVISIONS, namespace, params={"labelSelector": "app=by-hand"})
    assert [r["metadata"]["name"] for r in listed["items"]] == ["by-hand"]


@pytest.fixture
def kubectl(server: BrambleServer, tmp_path: Path) -> Kubectl:
    return Kubectl(require_binary("kubectl", package="kubectl"), server.kubeconfig, tmp_path / "kc")


async def kc(kubectl: Kubectl, namespace: str, *args: str) -> str:
    return await asyncio.to_thread(kubectl.ok, "-n", namespace, *args, timeout=90)


def history_rows(text: str) -> list[str]:
    """The REVISION column of ``kubectl rollout history``."""
    return [line.split()[0] for line in text.splitlines()[2:] if line.strip()]


async def test_kubectl_rollout_history_undo_and_status(
    client: ApiClient, namespace: str, kubectl: Kubectl
) -> None:
    lab = unique("lab")
    nodes = {f"{lab}-{i}" for i in range(2)}
    v1, v2, v3 = (f"localhost/busybox:v{i}" for i in range(1, 4))
    manifest = daemon_set("web", lab)
    manifest["spec"]["template"]["spec"]["containers"][0]["image"] = v1
    async with (
        hollow_nodes(client) as add,
        running(client, [DaemonSetController]),
        kubelet(client, namespace),
    ):
        for node in sorted(nodes):
            await add(node, labels={"lab": lab})
        await client.create(DAEMONSETS, namespace, manifest)
        out = await kc(kubectl, namespace, "rollout", "status", "ds/web", "--timeout=60s")
        assert 'daemon set "web" successfully rolled out' in out
        for tag in (v2, v3):
            await kc(kubectl, namespace, "set", "image", "ds/web", f"app={tag}")
            out = await kc(kubectl, namespace, "rollout", "status", "ds/web", "--timeout=60s")
            assert 'daemon set "web" successfully rolled out' in out
            await wait_pods(client, namespace, "web", rolled_to(tag, nodes), what=tag)

        listed = await kc(kubectl, namespace, "rollout", "history", "daemonset/web")
        assert listed.splitlines()[0].strip() == "daemonset.apps/web"
        assert listed.split("\n")[1].split() == ["REVISION", "CHANGE-CAUSE"]
        assert history_rows(listed) == ["1", "2", "3"], listed

        one = await kc(kubectl, namespace, "rollout", "history", "daemonset/web", "--revision=1")
        assert "daemonset.apps/web with revision #1" in one
        assert re.search(rf"Image:\s+{re.escape(v1)}\n", one), one
        assert v2 not in one
        assert v3 not in one

        out = await kc(kubectl, namespace, "rollout", "undo", "daemonset/web", "--to-revision=1")
        assert out.strip() == "daemonset.apps/web rolled back"
        out = await kc(kubectl, namespace, "rollout", "status", "ds/web", "--timeout=60s")
        assert 'daemon set "web" successfully rolled out' in out
        pods = await wait_pods(client, namespace, "web", rolled_to(v1, nodes), what="undone")
        assert len(pods) == 2
        listed = await kc(kubectl, namespace, "rollout", "history", "daemonset/web")
        assert history_rows(listed) == ["2", "3", "4"], listed  # revision 1 became 4
        four = await kc(kubectl, namespace, "rollout", "history", "daemonset/web", "--revision=4")
        assert re.search(rf"Image:\s+{re.escape(v1)}\n", four), four

        # Undoing to the template in use changes nothing, as kubectl finds by comparing
        # the revision's data with the DaemonSet's own patch byte for byte.
        out = await kc(kubectl, namespace, "rollout", "undo", "daemonset/web", "--to-revision=4")
        assert "skipped rollback (current template already matches revision 4)" in out
        # No --to-revision: back to the previous one (3).
        out = await kc(kubectl, namespace, "rollout", "undo", "daemonset/web")
        assert out.strip() == "daemonset.apps/web rolled back"
        await kc(kubectl, namespace, "rollout", "status", "ds/web", "--timeout=60s")
        await wait_pods(client, namespace, "web", rolled_to(v3, nodes), what="back at v3")
        bad = await asyncio.to_thread(
            kubectl, "-n", namespace, "rollout", "undo", "ds/web", "--to-revision=1"
        )
        assert bad.returncode == 1
        assert "unable to find specified revision 1 in history" in bad.stderr

        table = await kc(kubectl, namespace, "get", "controllerrevisions", "-l", "app=web")
        lines = [line.split() for line in table.splitlines()]
        assert lines[0] == ["NAME", "CONTROLLER", "REVISION", "AGE"]
        assert sorted(line[2] for line in lines[1:]) == ["2", "4", "5"]
        assert {line[1] for line in lines[1:]} == {"daemonset.apps/web"}
