"""Image references and platforms: what "nginx" is called on a node, and which machines
an image can run on.

``normalize`` turns a pod's image into the full reference container runtimes report in
``status.images`` ("nginx" -> "docker.io/library/nginx:latest"), so ImageLocality finds
it on the node whatever spelling the pod used.

``Platform`` is an OCI platform (os, architecture, variant) and ``node_platform`` reads a
Node's: ``kubernetes.io/os``, ``kubernetes.io/arch`` and bramble's
``bramble.io/arch-variant`` (v6/v7 on 32-bit ARM). ``runs_on`` decides whether an image
built for one platform runs on a node: same OS and architecture; for 32-bit ARM an older
variant runs on a newer CPU (a v6 image on a v7 Pi 2), not the other way round.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

DEFAULT_REGISTRY: Final = "docker.io"
LABEL_OS: Final = "kubernetes.io/os"
LABEL_ARCH: Final = "kubernetes.io/arch"
LABEL_ARCH_VARIANT: Final = "bramble.io/arch-variant"


@dataclass(frozen=True, slots=True)
class Reference:
    registry: str  # "docker.io", "ghcr.io", "127.0.0.1:5000"
    repository: str  # "library/nginx"
    tag: str  # "latest" when neither tag nor digest was given
    digest: str = ""  # "sha256:..."

    @property
    def reference(self) -> str:
        """What to ask the registry for: the digest if pinned, else the tag."""
        return self.digest or self.tag

    def __str__(self) -> str:
        name = f"{self.registry}/{self.repository}"
        if self.digest:
            return f"{name}:{self.tag}@{self.digest}" if self.tag else f"{name}@{self.digest}"
        return f"{name}:{self.tag}"


def parse_reference(image: str) -> Reference:
    """Docker's reference grammar, normalized as ``docker pull`` does."""
    name, _, digest = image.partition("@")
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, remainder = first, rest
    else:
        registry, remainder = DEFAULT_REGISTRY, name
    if registry == DEFAULT_REGISTRY and "/" not in remainder:
        remainder = f"library/{remainder}"
    repository, colon, tag = remainder.rpartition(":")
    if not colon or "/" in tag:
        repository, tag = remainder, ""
    if not tag and not digest:
        tag = "latest"
    return Reference(registry, repository, tag, digest)


def normalize(image: str) -> str:
    return str(parse_reference(image.strip()))


@dataclass(frozen=True, slots=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        return f"{text}/{self.variant}" if self.variant else text


def node_platform(labels: Mapping[str, str]) -> Platform | None:
    arch = labels.get(LABEL_ARCH)
    if not arch:
        return None
    return Platform(labels.get(LABEL_OS, "linux"), arch, labels.get(LABEL_ARCH_VARIANT, ""))


def _arm_level(variant: str) -> int | None:
    return int(variant[1:]) if variant[:1] == "v" and variant[1:].isdigit() else None


def runs_on(image: Platform, node: Platform) -> bool:
    if image.os != node.os or image.architecture != node.architecture:
        return False
    if not image.variant or not node.variant or image.variant == node.variant:
        return True
    if image.architecture == "arm":
        have, need = _arm_level(node.variant), _arm_level(image.variant)
        return have is not None and need is not None and need <= have
    return False
