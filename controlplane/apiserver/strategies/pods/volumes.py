"""Volumes and volume mounts, as k8s ``ValidateVolumes`` and ``ValidateVolumeMounts``.

A volume names exactly one source. The sources bramble's agent runs (emptyDir, hostPath,
configMap, secret, persistentVolumeClaim, projected, downwardAPI) and nfs are checked in
detail; the other Kubernetes sources are counted (so two sources are refused) but their
contents are not checked. A volume with no source at all never gets here: defaulting gave
it an ``emptyDir``, as Kubernetes does.

Field paths keep Kubernetes' quirks: a second ``downwardAPI`` source is reported at
``downwarAPI``, a downward API file's errors name the source rather than the item, and a
mount's ``subPath`` errors carry no index.
"""

from __future__ import annotations

import posixpath
from typing import Final

from api import validation as v
from api.errors import Cause
from api.quantity import parse_quantity
from controlplane.apiserver.strategies.common import (
    Obj,
    expect_list,
    get_list,
    get_str,
    is_int,
    items,
    not_found,
    optional_one_of,
)
from controlplane.apiserver.strategies.pods.defaults import VOLUME_SOURCES
from controlplane.apiserver.strategies.pods.downward import field_ref, resource_field_ref

FILE_MODE_DETAIL: Final = "must be a number between 0 and 0777 (octal), both inclusive"
MORE_THAN_ONE: Final = "may not specify more than 1 volume type"
# The order in which k8s' validateVolumeSource counts sources: the second one found is
# the one reported, under the name k8s gives it.
_COUNT_ORDER: Final = (
    "emptyDir", "hostPath", "gitRepo", "gcePersistentDisk", "awsElasticBlockStore", "secret",
    "nfs", "iscsi", "glusterfs", "flocker", "persistentVolumeClaim", "rbd", "cinder", "cephfs",
    "quobyte", "downwardAPI", "fc", "flexVolume", "configMap", "azureFile", "vsphereVolume",
    "photonPersistentDisk", "portworxVolume", "azureDisk", "storageos", "projected", "scaleIO",
    "csi", "ephemeral", "image",
)  # fmt: skip
_REPORTED_AS: Final = {"downwardAPI": "downwarAPI", "cephfs": "cephFS"}
HOST_PATH_TYPES: Final = (
    "", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate",
    "Socket",
)  # fmt: skip
PROPAGATIONS: Final = ("Bidirectional", "HostToContainer", "None")
assert set(_COUNT_ORDER) == set(VOLUME_SOURCES)


def validate_volumes(spec: Obj, path: str) -> tuple[set[str], list[Cause]]:
    """The causes, and the names of the volumes that are valid (mounts may use only
    those, as in Kubernetes)."""
    causes = expect_list(spec, "volumes", path)
    names: set[str] = set()
    for item_path, volume in items(spec, "volumes", path):
        errs = _source(volume, item_path)
        name = volume.get("name")
        if not name:
            errs.append(v.required(f"{item_path}.name"))
        else:
            errs += v.dns1123_label(name, f"{item_path}.name")
        if isinstance(name, str) and name in names:
            errs.append(v.duplicate(f"{item_path}.name", name))
        if errs:
            causes += errs
        elif isinstance(name, str):
            names.add(name)
    return names, causes


def _source(volume: Obj, path: str) -> list[Cause]:
    causes: list[Cause] = []
    found = 0
    for source in _COUNT_ORDER:
        body = volume.get(source)
        if body is None:
            continue
        if found:
            causes.append(v.forbidden(f"{path}.{_REPORTED_AS.get(source, source)}", MORE_THAN_ONE))
            continue
        found += 1
        if not isinstance(body, dict):
            causes.append(v.type_invalid(f"{path}.{source}", body, detail="must be an object"))
            continue
        check = _CHECKS.get(source)
        if check is not None:
            causes += check(body, f"{path}.{source}")
    if not found:
        causes.append(v.required(path, "must specify a volume type"))
    return causes


def _empty_dir(body: Obj, path: str) -> list[Cause]:
    limit = body.get("sizeLimit")
    if limit is None:
        return []
    causes = v.quantity(limit, f"{path}.sizeLimit", allow_negative=True)
    if not causes and parse_quantity(str(limit).strip()).nanos < 0:
        detail = "SizeLimit field must be a valid resource quantity"
        causes.append(v.forbidden(f"{path}.sizeLimit", detail))
    return causes


def _host_path(body: Obj, path: str) -> list[Cause]:
    target = body.get("path")
    if not target:
        return [v.required(f"{path}.path")]
    causes = _no_backsteps(target, f"{path}.path")
    return causes + optional_one_of(body, "type", f"{path}.type", HOST_PATH_TYPES)


def _mode(body: Obj, key: str, path: str) -> list[Cause]:
    mode = body.get(key)
    if mode is None:
        return []
    if not is_int(mode):
        return [v.type_invalid(path, mode, detail="must be an integer")]
    return [] if 0 <= mode <= 0o777 else [v.invalid_value(path, mode, detail=FILE_MODE_DETAIL)]


def _key_to_paths(body: Obj, path: str) -> list[Cause]:
    causes = expect_list(body, "items", f"{path}.items")
    for item_path, item in items(body, "items", f"{path}.items"):
        if not item.get("key"):
            causes.append(v.required(f"{item_path}.key"))
        if not item.get("path"):
            causes.append(v.required(f"{item_path}.path"))
        causes += local_non_reserved_path(item.get("path"), f"{item_path}.path")
        causes += _mode(item, "mode", f"{item_path}.mode")
    return causes


def _secret(body: Obj, path: str) -> list[Cause]:
    causes = [] if body.get("secretName") else [v.required(f"{path}.secretName")]
    return causes + _mode(body, "defaultMode", f"{path}.defaultMode") + _key_to_paths(body, path)


def _config_map(body: Obj, path: str) -> list[Cause]:
    causes = [] if body.get("name") else [v.required(f"{path}.name")]
    return causes + _mode(body, "defaultMode", f"{path}.defaultMode") + _key_to_paths(body, path)


def _claim(body: Obj, path: str) -> list[Cause]:
    return [] if body.get("claimName") else [v.required(f"{path}.claimName")]


def _nfs(body: Obj, path: str) -> list[Cause]:
    causes = [] if body.get("server") else [v.required(f"{path}.server")]
    target = get_str(body, "path")
    if not target:
        causes.append(v.required(f"{path}.path"))
    if not target.startswith("/"):
        causes.append(v.invalid_value(f"{path}.path", target, detail="must be an absolute path"))
    return causes


def _downward_file(item: Obj, path: str) -> list[Cause]:
    """One downward API file; ``path`` is the source's, as in Kubernetes."""
    causes = [] if item.get("path") else [v.required(f"{path}.path")]
    causes += local_non_reserved_path(item.get("path"), f"{path}.path")
    ref, resource = item.get("fieldRef"), item.get("resourceFieldRef")
    if isinstance(ref, dict):
        causes += field_ref(ref, f"{path}.fieldRef", volume=True)
        if resource is not None:
            detail = "fieldRef and resourceFieldRef can not be specified simultaneously"
            causes.append(v.invalid_value(path, "resource", detail=detail))
    elif isinstance(resource, dict):
        causes += resource_field_ref(resource, f"{path}.resourceFieldRef", volume=True)
    else:
        causes.append(v.required(path, "one of fieldRef and resourceFieldRef is required"))
    return causes + _mode(item, "mode", f"{path}.mode")


def _downward(body: Obj, path: str) -> list[Cause]:
    causes = _mode(body, "defaultMode", f"{path}.defaultMode")
    causes += expect_list(body, "items", f"{path}.items")
    for _, item in items(body, "items", f"{path}.items"):
        causes += _downward_file(item, path)
    return causes


def _projected(body: Obj, path: str) -> list[Cause]:
    causes = _mode(body, "defaultMode", f"{path}.defaultMode")
    causes += expect_list(body, "sources", f"{path}.sources")
    seen: set[str] = set()
    for source_path, source in items(body, "sources", f"{path}.sources"):
        kinds = [k for k in _PROJECTIONS if source.get(k) is not None]
        for kind in kinds:
            part = source[kind]
            if isinstance(part, dict):
                causes += _PROJECTIONS[kind](part, f"{source_path}.{kind}", path, seen)
        if len(kinds) > 1:
            detail = "may not specify more than 1 volume type per source"
            causes.append(v.forbidden(source_path, detail))
    return causes


def _projected_object(part: Obj, path: str, volume_path: str, seen: set[str]) -> list[Cause]:
    causes = [] if part.get("name") else [v.required(f"{path}.name")]
    causes += _key_to_paths(part, path)
    for item in get_list(part, "items"):
        target = item.get("path") if isinstance(item, dict) else None
        if isinstance(target, str) and target:
            if target in seen:
                detail = "conflicting duplicate paths"
                causes.append(v.invalid_value(volume_path, part.get("name"), detail=detail))
            seen.add(target)
    return causes


def _projected_downward(part: Obj, path: str, volume_path: str, seen: set[str]) -> list[Cause]:
    causes: list[Cause] = []
    for _, item in items(part, "items", f"{path}.items"):
        causes += _downward_file(item, path)
        target = item.get("path")
        if isinstance(target, str) and target:
            if target in seen:
                detail = "conflicting duplicate paths"
                causes.append(v.invalid_value(volume_path, target, detail=detail))
            seen.add(target)
    return causes


def _projected_token(part: Obj, path: str, volume_path: str, seen: set[str]) -> list[Cause]:
    causes: list[Cause] = []
    expiration = part.get("expirationSeconds")
    if is_int(expiration):
        if expiration < 10 * 60:
            detail = "may not specify a duration less than 10 minutes"
            causes.append(v.invalid_value(f"{path}.expirationSeconds", expiration, detail=detail))
        if expiration > 1 << 32:
            detail = "may not specify a duration larger than 2^32 seconds"
            causes.append(v.invalid_value(f"{path}.expirationSeconds", expiration, detail=detail))
    if not part.get("path"):
        causes.append(v.required(f"{volume_path}.path"))
    else:
        causes += local_non_reserved_path(part.get("path"), f"{volume_path}.path")
    return causes


_PROJECTIONS: Final = {
    "secret": _projected_object,
    "configMap": _projected_object,
    "downwardAPI": _projected_downward,
    "serviceAccountToken": _projected_token,
}
_CHECKS: Final = {
    "emptyDir": _empty_dir,
    "hostPath": _host_path,
    "secret": _secret,
    "configMap": _config_map,
    "persistentVolumeClaim": _claim,
    "nfs": _nfs,
    "downwardAPI": _downward,
    "projected": _projected,
}


def _no_backsteps(target: object, path: str) -> list[Cause]:
    if isinstance(target, str) and ".." in target.replace("\\", "/").split("/"):
        return [v.invalid_value(path, target, detail="must not contain '..'")]
    return []


def local_descending_path(target: object, path: str) -> list[Cause]:
    """k8s ``validateLocalDescendingPath``: relative, no ``..`` element."""
    causes: list[Cause] = []
    if isinstance(target, str) and posixpath.isabs(target):
        causes.append(v.invalid_value(path, target, detail="must be a relative path"))
    return causes + _no_backsteps(target, path)


def local_non_reserved_path(target: object, path: str) -> list[Cause]:
    causes = local_descending_path(target, path)
    if isinstance(target, str) and target.startswith("..") and not target.startswith("../"):
        causes.append(v.invalid_value(path, target, detail="must not start with '..'"))
    return causes


def validate_mounts(container: Obj, volumes: set[str], path: str) -> list[Cause]:
    """k8s ``ValidateVolumeMounts`` (paths without index where Kubernetes has none)."""
    causes = expect_list(container, "volumeMounts", path)
    mount_points: set[object] = set()
    security = container.get("securityContext")
    privileged = isinstance(security, dict) and security.get("privileged") is True
    for mount_path, mount in items(container, "volumeMounts", path):
        name, target = mount.get("name"), mount.get("mountPath")
        if not name:
            causes.append(v.required(f"{mount_path}.name"))
        if not isinstance(name, str) or name not in volumes:
            causes.append(not_found(f"{mount_path}.name", name if name is not None else ""))
        if not target:
            causes.append(v.required(f"{mount_path}.mountPath"))
        if isinstance(target, str) and target in mount_points:
            causes.append(
                v.invalid_value(f"{mount_path}.mountPath", target, detail="must be unique")
            )
        mount_points.add(target if isinstance(target, str) else None)
        sub, expr = mount.get("subPath"), mount.get("subPathExpr")
        if sub:
            causes += local_descending_path(sub, f"{path}.subPath")
        if expr:
            if sub:
                detail = "subPathExpr and subPath are mutually exclusive"
                causes.append(v.invalid_value(f"{mount_path}.subPathExpr", expr, detail=detail))
            causes += local_descending_path(expr, f"{path}.subPathExpr")
        propagation = mount.get("mountPropagation")
        if propagation is not None:
            causes += _propagation(propagation, privileged, f"{path}.mountPropagation")
        causes += _recursive_read_only(mount, f"{path}.recursiveReadOnly")
    return causes


def _propagation(value: object, privileged: bool, path: str) -> list[Cause]:
    causes: list[Cause] = []
    if value not in PROPAGATIONS:
        causes.append(v.not_supported(path, value, supported=PROPAGATIONS))
    if value == "Bidirectional" and not privileged:
        detail = "Bidirectional mount propagation is available only to privileged containers"
        causes.append(v.forbidden(path, detail))
    return causes


def _recursive_read_only(mount: Obj, path: str) -> list[Cause]:
    value = mount.get("recursiveReadOnly")
    if value is None or value == "Disabled":
        return []
    if value not in ("Enabled", "IfPossible"):
        return [v.not_supported(path, value, supported=("Disabled", "Enabled", "IfPossible"))]
    causes: list[Cause] = []
    if mount.get("readOnly") is not True:
        causes.append(v.forbidden(path, "may only be specified when readOnly is true"))
    if mount.get("mountPropagation") not in (None, "None"):
        detail = "may only be specified when mountPropagation is None or not specified"
        causes.append(v.forbidden(path, detail))
    return causes
