"""Discovery documents, aggregated (apidiscovery.k8s.io/v2) and legacy, from the registry.

kubectl asks for the aggregated form on ``/api`` and ``/apis`` and recognises it only by
the exact Content-Type; ``kubectl drain`` reads the legacy ``/api/v1`` list to find
``pods/eviction``. Both are built once from api/resources.py.
"""

from __future__ import annotations

from typing import Any

from api.resources import RESOURCES, Resource, group_versions

AGGREGATED_CONTENT_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
_AGGREGATED_MARK = "as=APIGroupDiscoveryList"

Obj = dict[str, Any]


def wants_aggregated(accept: str) -> tuple[bool, str]:
    """Whether the Accept header asks for aggregated discovery, and which version."""
    for part in accept.split(","):
        if _AGGREGATED_MARK in part and "g=apidiscovery.k8s.io" in part:
            version = "v2beta1" if "v=v2beta1" in part else "v2"
            return True, version
    return False, ""


def _resources(group: str, version: str) -> list[Resource]:
    return [r for r in RESOURCES if r.group == group and r.version == version]


def _aggregated_resource(r: Resource) -> Obj:
    entry: Obj = {
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": "Namespaced" if r.namespaced else "Cluster",
        "singularResource": r.singular,
        "verbs": list(r.verbs),
    }
    if r.short_names:
        entry["shortNames"] = list(r.short_names)
    if r.categories:
        entry["categories"] = list(r.categories)
    if r.subresources:
        entry["subresources"] = [
            {
                "subresource": s.name,
                "responseKind": {
                    "group": s.group if s.group else r.group,
                    "version": s.version,
                    "kind": s.kind,
                },
                "verbs": list(s.verbs),
            }
            for s in r.subresources
        ]
    return entry


def aggregated(core: bool, version: str = "v2") -> Obj:
    groups: list[Obj] = []
    for group, gv_version in group_versions():
        if (group == "") != core:
            continue
        item = next((g for g in groups if g["metadata"]["name"] == group), None)
        if item is None:
            item = {"metadata": {"name": group}, "versions": []}
            groups.append(item)
        item["versions"].append(
            {
                "version": gv_version,
                "freshness": "Current",
                "resources": [_aggregated_resource(r) for r in _resources(group, gv_version)],
            }
        )
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": f"apidiscovery.k8s.io/{version}",
        "metadata": {},
        "items": groups,
    }


def api_versions(server_address: str) -> Obj:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _group(group: str) -> Obj:
    versions = [
        {"groupVersion": f"{group}/{v}", "version": v} for g, v in group_versions() if g == group
    ]
    return {"name": group, "versions": versions, "preferredVersion": versions[0]}


def api_group_list() -> Obj:
    names: list[str] = []
    for group, _ in group_versions():
        if group and group not in names:
            names.append(group)
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group(g) for g in names]}


def api_group(group: str) -> Obj | None:
    if not any(g == group for g, _ in group_versions()) or not group:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(group)}


def resource_list(group: str, version: str) -> Obj | None:
    resources = _resources(group, version)
    if not resources:
        return None
    items: list[Obj] = []
    for r in resources:
        entry: Obj = {
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": list(r.verbs),
        }
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        items.append(entry)
        for s in r.subresources:
            sub: Obj = {
                "name": f"{r.plural}/{s.name}",
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": s.kind,
                "verbs": list(s.verbs),
            }
            if s.group and s.group != r.group:
                sub["group"] = s.group
                sub["version"] = s.version
            items.append(sub)
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": items,
    }
