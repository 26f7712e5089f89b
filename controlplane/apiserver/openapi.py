"""The small OpenAPI v3 that lets a plain ``kubectl apply`` (default validation) work.

kubectl only checks, per group-version, that each kind's PATCH operation carries
``x-kubernetes-group-version-kind`` and a ``fieldValidation`` query parameter; it then asks
the server to validate (``fieldValidation=Strict``) instead of validating against schemas.
So each document lists one PATCH path per kind and no schemas (kubectl-surface.md, 9).
"""

from __future__ import annotations

import hashlib
from functools import cache
from typing import Any

import orjson

from api.resources import RESOURCES, group_versions

Obj = dict[str, Any]


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


@cache
def document(group: str, version: str) -> bytes | None:
    resources = [
        r for r in RESOURCES if r.group == group and r.version == version and "patch" in r.verbs
    ]
    if not resources:
        return None
    paths: Obj = {}
    for r in resources:
        scope = "/namespaces/{namespace}" if r.namespaced else ""
        path = f"/{_gv_path(group, version)}{scope}/{r.plural}/{{name}}"
        paths[path] = {
            "patch": {
                "x-kubernetes-group-version-kind": {
                    "group": group,
                    "version": version,
                    "kind": r.kind,
                },
                "parameters": [
                    {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
                    {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
                    {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {"200": {"description": "OK"}},
            }
        }
    return orjson.dumps(
        {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": "v1.32.4"},
            "paths": paths,
            "components": {"schemas": {}},
        }
    )


@cache
def root() -> bytes:
    paths: Obj = {}
    for group, version in group_versions():
        doc = document(group, version)
        if doc is None:
            continue
        digest = hashlib.sha256(doc).hexdigest()[:32].upper()
        paths[_gv_path(group, version)] = {
            "serverRelativeURL": f"/openapi/v3/{_gv_path(group, version)}?hash={digest}"
        }
    return orjson.dumps({"paths": paths})


def lookup(path: str) -> bytes | None:
    """The document for ``/openapi/v3/<gv path>``, None if there is none."""
    rest = path.removeprefix("/openapi/v3/").strip("/")
    parts = rest.split("/")
    if parts[:1] == ["api"] and len(parts) == 2:
        return document("", parts[1])
    if parts[:1] == ["apis"] and len(parts) == 3:
        return document(parts[1], parts[2])
    return None
