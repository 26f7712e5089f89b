"""NodeArchitecture: a pod lands only where its images can run.

A mixed home lab has arm64 Pi 4s and 5s, armv7 Pi 2s and 3s on 32-bit systems, and
amd64 PCs; an image built for one of them fails on the others with "exec format
error". When the image's registry says which platforms an image has (``platforms``;
unknown images constrain nothing), a node whose ``kubernetes.io/arch`` (and
``bramble.io/arch-variant``) none of them runs on is filtered out. The lookup happens
before the pod is first tried (PreEnqueue holds it until the answer or a timeout).

Args: ``registryLookup`` (default true; false makes the plugin a no-op),
``lookupTimeoutSeconds`` and ``insecureRegistries`` (see ``platforms``).

A pod that pins an architecture (``nodeSelector`` ``kubernetes.io/arch``) that one of
its images lacks can never run: it is rejected at once with a message naming both.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Final

from controlplane.scheduler.framework import (
    SKIP,
    ClusterEvent,
    Code,
    CycleState,
    Handle,
    Status,
    unresolvable,
)
from controlplane.scheduler.images import LABEL_ARCH, Platform, runs_on
from controlplane.scheduler.nodeinfo import NodeInfo
from controlplane.scheduler.platforms import PlatformResolver
from controlplane.scheduler.podinfo import PodInfo

NAME: Final = "NodeArchitecture"
ERR_REASON: Final = "node(s) didn't match the architectures of Pod's images"
ERR_REASON_SELECTOR: Final = (
    "Pod's node selector asks for {key}={arch}, but its image {image} is built only for {have}"
)
WAITING: Final = "waiting for the image registry to say which architectures the images have"
_REJECT: Final = unresolvable(NAME, ERR_REASON)


class NodeArchitecture:
    name = NAME

    def __init__(self, resolver: PlatformResolver | None) -> None:
        self.resolver = resolver

    def events(self) -> frozenset[ClusterEvent]:
        return frozenset(
            {ClusterEvent.NODE_ADD, ClusterEvent.NODE_LABEL, ClusterEvent.IMAGE_PLATFORMS}
        )

    def pre_enqueue(self, pod: PodInfo) -> Status | None:
        resolver = self.resolver
        if resolver is None or not pod.images:
            return None
        pending = resolver.pending(pod.images)
        if not pending:
            return None
        resolver.request(pending, pod.key)
        if not resolver.pending(pending):
            return None
        return Status(Code.PENDING, (WAITING,), NAME)

    def pre_filter(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]
    ) -> Status | None:
        resolver = self.resolver
        if resolver is None:
            return SKIP
        known: list[tuple[str, frozenset[Platform]]] = []
        for image in pod.images:
            found = resolver.lookup(image)
            if found is not None and found.platforms:
                known.append((image, found.platforms))
        if not known:
            return SKIP
        arch = pod.node_selector.get(LABEL_ARCH)
        if arch:
            for image, platforms in known:
                if not any(p.architecture == arch for p in platforms):
                    have = ", ".join(sorted(str(p) for p in platforms))
                    message = ERR_REASON_SELECTOR.format(
                        key=LABEL_ARCH, arch=arch, image=image, have=have
                    )
                    return unresolvable(NAME, message)
        state.data[NAME] = known
        return None

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        platform = node.platform
        if platform is None:
            return None  # a node that does not say: nothing to hold against it
        for _, platforms in state.data[NAME]:
            if not any(runs_on(p, platform) for p in platforms):
                return _REJECT
        return None

    def sign_filter(self, state: CycleState, pod: PodInfo) -> Hashable:
        return tuple(state.data[NAME])  # what PreFilter found the images run on


def new(args: Mapping[str, Any], handle: Handle) -> NodeArchitecture:
    """Args: ``registryLookup`` (default true), ``lookupTimeoutSeconds`` (3),
    ``insecureRegistries`` (hosts spoken to over plain HTTP). The resolver is shared
    through the handle (``extras["platform_resolver"]``) so the scheduler can close it
    and re-queue the pods it was waiting for."""
    if not args.get("registryLookup", True):
        return NodeArchitecture(None)
    resolver = handle.extras.get("platform_resolver")
    if not isinstance(resolver, PlatformResolver):
        resolver = PlatformResolver(
            timeout=float(args.get("lookupTimeoutSeconds", 3.0)),
            insecure=[str(r) for r in args.get("insecureRegistries") or []],
        )
        handle.extras["platform_resolver"] = resolver
    return NodeArchitecture(resolver)
