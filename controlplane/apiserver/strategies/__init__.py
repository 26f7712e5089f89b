"""Per-kind defaulting and validation for every kind bramble serves, registered into
``controlplane.apiserver.kinds``.

What the package owns: the behaviour of Kubernetes' ``pkg/apis/*/v1/defaults.go``,
``pkg/apis/*/validation`` and the registries' create/update strategies, for Namespace,
Node, Pod, Event, ConfigMap, Secret, Service, Endpoints, Deployment, ReplicaSet,
DaemonSet, ControllerRevision, Job and Lease, with Kubernetes' field paths, reasons and
messages. One module per kind (pods are a package); ``common`` and ``formats`` hold what they share.

Invariants: validators never raise on malformed input (a wrong type is a cause);
defaulting is idempotent, so an update may default again what create defaulted; the
functions are synchronous and pure (given the objects and ``now``), safe to call from
any task.
"""

from __future__ import annotations


def register_all() -> None:
    from controlplane.apiserver.strategies import (
        configdata,
        controllerrevisions,
        daemonsets,
        deployments,
        endpoints,
        events,
        jobs,
        leases,
        namespaces,
        nodes,
        pods,
        services,
    )

    for module in (
        pods, deployments, daemonsets, controllerrevisions, jobs, namespaces, nodes,
        services, endpoints, configdata, events, leases,
    ):  # fmt: skip
        module.register()
