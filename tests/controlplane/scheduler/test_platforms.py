"""Image platforms from a real registry (Debian's docker-registry): a multi-arch index, a
single-platform image, a missing one; then the scheduler in a real server placing pods
by the architectures their images have."""

from __future__ import annotations

import hashlib
import json
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from api.client import ApiClient
from controlplane.scheduler.images import Platform
from controlplane.scheduler.platforms import PlatformResolver
from tests.controlplane.scheduler.lab import Lab
from tests.support.cluster import BrambleServer, unique
from tests.support.real import require_binary
from tests.support.registry import Registry
from tests.support.waiting import new_namespace

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


def _request(method: str, url: str, body: bytes, content_type: str) -> Any:
    req = urllib.request.Request(
        url, data=body, method=method, headers={"Content-Type": content_type}
    )
    return urllib.request.urlopen(req, timeout=10)


def push_blob(base: str, repo: str, data: bytes) -> tuple[str, int]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with _request("POST", f"{base}/v2/{repo}/blobs/uploads/", b"", "application/octet-stream") as r:
        location = r.headers["Location"]
    if location.startswith("/"):
        location = base + location
    sep = "&" if "?" in location else "?"
    with _request("PUT", f"{location}{sep}digest={digest}", data, "application/octet-stream"):
        pass
    return digest, len(data)


def push_manifest(base: str, repo: str, ref: str, manifest: dict[str, Any]) -> tuple[str, int]:
    data = json.dumps(manifest).encode()
    with _request("PUT", f"{base}/v2/{repo}/manifests/{ref}", data, manifest["mediaType"]):
        pass
    return "sha256:" + hashlib.sha256(data).hexdigest(), len(data)


def push_image(base: str, repo: str, ref: str, *platforms: Platform) -> None:
    """An image for ``platforms``: one manifest, or an index of one per platform."""
    layer, layer_size = push_blob(base, repo, f"layer of {repo}".encode())
    manifests = []
    for p in platforms:
        config = {
            "architecture": p.architecture,
            "os": p.os,
            "rootfs": {"type": "layers", "diff_ids": []},
        }
        if p.variant:
            config["variant"] = p.variant
        cdigest, csize = push_blob(base, repo, json.dumps(config).encode())
        manifest = {
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": cdigest, "size": csize},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": layer, "size": layer_size}],
        }  # fmt: skip
        ref_for = ref if len(platforms) == 1 else f"{ref}-{p.architecture}{p.variant}"
        digest, size = push_manifest(base, repo, ref_for, manifest)
        platform = {"architecture": p.architecture, "os": p.os}
        if p.variant:
            platform["variant"] = p.variant
        manifests.append(
            {"mediaType": OCI_MANIFEST, "digest": digest, "size": size, "platform": platform}
        )
    if len(platforms) > 1:
        push_manifest(
            base, repo, ref, {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
        )


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    require_binary("docker-registry", package="docker-registry")
    reg = Registry(tmp_path_factory.mktemp("registry"))
    reg.start()
    base = f"http://{reg.location}"
    push_image(base, "multi", "1", Platform("linux", "arm64", "v8"), Platform("linux", "arm", "v7"))
    push_image(base, "x86only", "1", Platform("linux", "amd64"))
    try:
        yield reg
    finally:
        reg.stop()


async def test_resolver_reads_indexes_and_single_manifests(registry: Registry) -> None:
    resolver = PlatformResolver(insecure=[registry.location])
    known: list[set[str]] = []
    resolver.on_known = known.append
    images = [f"{registry.location}/{name}" for name in ("multi:1", "x86only:1", "missing:1")]
    try:
        resolver.request(images, "ns/p")
        for task in list(resolver._running.values()):
            await task
        found = {i.split("/", 1)[1]: resolver.lookup(i) for i in images}
        assert found["multi:1"] is not None
        assert found["multi:1"].platforms == frozenset(
            {Platform("linux", "arm64", "v8"), Platform("linux", "arm", "v7")}
        )
        assert found["x86only:1"] is not None
        assert found["x86only:1"].platforms == frozenset({Platform("linux", "amd64")})
        assert found["missing:1"] is not None
        assert found["missing:1"].platforms is None  # unknown
        assert known == [{"ns/p"}]  # once every image of the waiter was answered
    finally:
        await resolver.close()
    paths = [p for m, p, _ in registry.requests() if m == "GET"]
    assert "/v2/multi/manifests/1" in paths


@pytest.fixture
def server(tmp_path: Path, registry: Registry) -> Iterator[BrambleServer]:
    config = tmp_path / "scheduler.yaml"
    config.write_text(
        "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"
        "profiles:\n- pluginConfig:\n  - name: NodeArchitecture\n"
        f"    args: {{insecureRegistries: ['{registry.location}']}}\n"
    )
    srv = BrambleServer.start(
        tmp_path / "data", "--no-controllers", "--scheduler-config", str(config)
    )
    try:
        yield srv
    finally:
        assert srv.stop() == 0


@pytest.fixture
async def lab(server: BrambleServer) -> AsyncIterator[Lab]:
    client = await ApiClient.from_kubeconfig(server.kubeconfig)
    try:
        yield Lab(server, client, None)
    finally:
        await client.close()


async def test_pods_land_where_their_images_run(lab: Lab, registry: Registry) -> None:
    ns = unique("arch")
    await new_namespace(lab.client, ns)
    await lab.add_node("pc", arch="amd64", cpu="64")
    await lab.add_node("pi5", arch="arm64")
    await lab.add_node("pi2", arch="arm", labels={"bramble.io/arch-variant": "v7"})
    await lab.add_node("zero", arch="arm", labels={"bramble.io/arch-variant": "v6"})
    multi, x86 = f"{registry.location}/multi:1", f"{registry.location}/x86only:1"
    for i in range(4):
        await lab.create_pod(ns, f"multi-{i}", images=[multi])
    await lab.create_pod(ns, "x86", images=[x86])
    await lab.create_pod(ns, "wrong", images=[x86], node_selector={"kubernetes.io/arch": "arm64"})
    placed = {await lab.bound(ns, f"multi-{i}") for i in range(4)}
    assert placed <= {"pi5", "pi2"}  # never the PC (the roomiest) nor the v6 Zero
    assert await lab.bound(ns, "x86") == "pc"
    assert await lab.unschedulable(ns, "wrong") == (
        "0/4 nodes are available: Pod's node selector asks for kubernetes.io/arch=arm64, but "
        f"its image {x86} is built only for linux/amd64. preemption: 0/4 nodes are available: "
        "4 Preemption is not helpful for scheduling.."
    )
