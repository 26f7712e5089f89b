"""Per-kind defaulting and validation, registered into ``kinds``."""

from __future__ import annotations


def register_all() -> None:
    from controlplane.apiserver.strategies import apps, core, pods

    pods.register()
    apps.register()
    core.register()
