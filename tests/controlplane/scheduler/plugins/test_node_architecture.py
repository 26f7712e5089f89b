"""NodeArchitecture as tables: which node platforms the images' platforms run on, the
pod's own arch selector, and the queue gate while the registry is asked."""

from __future__ import annotations

import pytest

from controlplane.scheduler.framework import SKIP, Code, CycleState
from controlplane.scheduler.images import Platform, normalize, runs_on
from controlplane.scheduler.platforms import PlatformResolver
from controlplane.scheduler.plugins import node_architecture as na
from tests.controlplane.scheduler.builders import cluster, filter_all, fits, info, node, pod

LAB = [
    node("pi5", arch="arm64"),
    node("pi2", arch="arm", labels={"bramble.io/arch-variant": "v7"}),
    node("zero", arch="arm", labels={"bramble.io/arch-variant": "v6"}),
    node("pc", arch="amd64"),
    node("mystery", arch=None),  # says nothing: never held against it
]
AMD64 = Platform("linux", "amd64")
ARM64 = Platform("linux", "arm64", "v8")
ARMV7 = Platform("linux", "arm", "v7")
ARMV6 = Platform("linux", "arm", "v6")


def resolver(**known: frozenset[Platform] | None) -> PlatformResolver:
    r = PlatformResolver()
    for image, platforms in known.items():
        r.remember(normalize(image), platforms)
    return r


@pytest.mark.parametrize(
    ("platforms", "expected"),
    [
        ({AMD64}, ["mystery", "pc"]),
        ({ARM64}, ["mystery", "pi5"]),
        ({ARMV7}, ["mystery", "pi2"]),  # a v7 image does not run on a v6 Pi Zero
        ({ARMV6}, ["mystery", "pi2", "zero"]),  # a v6 image runs on v7 too
        ({AMD64, ARM64, ARMV7}, ["mystery", "pc", "pi2", "pi5"]),
        ({Platform("windows", "amd64")}, ["mystery"]),
        (None, ["mystery", "pc", "pi2", "pi5", "zero"]),  # unknown: no constraint
    ],
)
def test_filter(platforms: set[Platform] | None, expected: list[str]) -> None:
    plugin = na.NodeArchitecture(resolver(app=frozenset(platforms) if platforms else None))
    assert fits(plugin, info(pod(images=["app"])), cluster(LAB)) == expected


def test_every_image_of_the_pod_must_run() -> None:
    plugin = na.NodeArchitecture(
        resolver(app=frozenset({AMD64, ARM64}), sidecar=frozenset({ARM64, ARMV7}))
    )
    assert fits(plugin, info(pod(images=["app", "sidecar"])), cluster(LAB)) == ["mystery", "pi5"]
    result = filter_all(plugin, info(pod(images=["app", "sidecar"])), cluster(LAB))
    assert isinstance(result, dict)
    assert result["pc"] is not None
    assert result["pc"].reasons == ("node(s) didn't match the architectures of Pod's images",)
    assert result["pc"].code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE


def test_an_arch_selector_the_images_lack_is_rejected_at_once() -> None:
    plugin = na.NodeArchitecture(resolver(app=frozenset({AMD64})))
    bad = info(pod(images=["app"], node_selector={"kubernetes.io/arch": "arm64"}))
    status = plugin.pre_filter(CycleState(), bad, [])
    assert status is not None
    assert status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert status.message == (
        "Pod's node selector asks for kubernetes.io/arch=arm64, but its image "
        "docker.io/library/app:latest is built only for linux/amd64"
    )


def test_without_a_resolver_or_knowledge_it_skips() -> None:
    assert na.NodeArchitecture(None).pre_filter(CycleState(), info(pod()), []) is SKIP
    assert na.NodeArchitecture(resolver()).pre_filter(CycleState(), info(pod()), []) is SKIP


async def test_the_pod_waits_in_the_queue_while_the_registry_is_asked() -> None:
    r = PlatformResolver(insecure={"127.0.0.1:1"}, timeout=2.0)
    done: list[set[str]] = []
    r.on_known = done.append
    plugin = na.NodeArchitecture(r)
    p = info(pod(images=["127.0.0.1:1/app:1"]))
    try:
        status = plugin.pre_enqueue(p)
        assert status is not None
        assert status.code == Code.PENDING
        # port 1 refuses at once: the answer is "unknown" and the pod is let through
        while not done:
            await r._running[normalize("127.0.0.1:1/app:1")]
        assert done == [{p.key}]
        assert plugin.pre_enqueue(p) is None
        # the registry is now known to be down: the next image is not even asked for
        assert plugin.pre_enqueue(info(pod(images=["127.0.0.1:1/other"]))) is None
    finally:
        await r.close()


@pytest.mark.parametrize(
    ("image", "normalized"),
    [
        ("nginx", "docker.io/library/nginx:latest"),
        ("nginx:1.27", "docker.io/library/nginx:1.27"),
        ("bitnami/redis", "docker.io/bitnami/redis:latest"),
        (
            "ghcr.io/home-assistant/home-assistant:stable",
            "ghcr.io/home-assistant/home-assistant:stable",
        ),
        ("localhost/busybox", "localhost/busybox:latest"),
        ("127.0.0.1:5000/app", "127.0.0.1:5000/app:latest"),
        ("nginx@sha256:abc", "docker.io/library/nginx@sha256:abc"),
        ("nginx:1.27@sha256:abc", "docker.io/library/nginx:1.27@sha256:abc"),
    ],
)
def test_normalize(image: str, normalized: str) -> None:
    assert normalize(image) == normalized


@pytest.mark.parametrize(
    ("image", "node_", "ok"),
    [
        (AMD64, AMD64, True),
        (ARM64, Platform("linux", "arm64"), True),  # a node that names no variant
        (ARMV6, ARMV7, True),
        (ARMV7, ARMV6, False),
        (ARM64, ARMV7, False),
        (Platform("linux", "arm", "v8"), ARMV7, False),
    ],
)
def test_runs_on(image: Platform, node_: Platform, ok: bool) -> None:
    assert runs_on(image, node_) is ok
