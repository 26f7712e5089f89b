"""Pod configuration the agent turns into files and environment: volumes and env.

Both read ConfigMaps and Secrets through the API (a node may read exactly those its pods
reference). A missing reference is a ``ConfigError`` whose message says what is missing;
the container waits with reason CreateContainerConfigError, as on Kubernetes, and other
pods are unaffected. File work is blocking and runs in a thread.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import shutil
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from agent.runtime.interface import Mount

Obj = dict[str, Any]
Fetch = Callable[[str, str, str], Awaitable[Obj | None]]  # (kind, namespace, name) -> object

_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


class ConfigError(Exception):
    """A pod's configuration cannot be made (missing ConfigMap, key, bad hostPath...)."""

    def __init__(self, message: str, *, reason: str = "CreateContainerConfigError") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


# --- environment -----------------------------------------------------------------------------


def _field(pod: Obj, path: str, host_ip: str, pod_ip: str) -> str:
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.hostIP": host_ip,
        "status.podIP": pod_ip or status.get("podIP"),
    }
    if path in simple:
        return str(simple[path] or "")
    match = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    raise ConfigError(f"fieldRef {path!r} is not supported", reason="CreateContainerConfigError")


def _resource_field(container: Obj, ref: Obj) -> str:
    from api.quantity import QuantityError, parse_quantity

    resource = str(ref.get("resource", ""))
    section, _, name = resource.partition(".")
    value = ((container.get("resources") or {}).get(section) or {}).get(name)
    if value is None:
        return "0"
    try:
        quantity = parse_quantity(str(value))
    except QuantityError as e:
        raise ConfigError(f"resourceFieldRef {resource}: {e}") from e
    if name == "cpu":
        return str(max(1, -(-quantity.milli_value() // 1000)))  # whole cores, rounded up
    return str(quantity.value())


async def _lookup(fetch: Fetch, kind: str, namespace: str, name: str, key: str | None,
                  optional: bool) -> str | dict[str, str] | None:  # fmt: skip
    obj = await fetch(kind, namespace, name)
    if obj is None:
        if optional:
            return None
        raise ConfigError(f'{kind} "{name}" not found')
    data: dict[str, str] = dict(obj.get("data") or {})
    if kind == "secret":
        data = {k: base64.b64decode(v).decode(errors="replace") for k, v in data.items()}
    if key is None:
        return data
    if key not in data:
        if optional:
            return None
        raise ConfigError(f"couldn't find key {key} in {kind.capitalize()} {namespace}/{name}")
    return data[key]


async def environment(
    container: Obj, pod: Obj, fetch: Fetch, *, host_ip: str, pod_ip: str = ""
) -> dict[str, str]:
    """The container's environment, with envFrom, valueFrom and $(VAR) expansion.
    ``pod_ip``: the sandbox's address, known before the pod's status says it (a first
    start); the status's ``podIP`` when not given."""
    namespace = str((pod.get("metadata") or {}).get("namespace") or "default")
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = str(source.get("prefix") or "")
        for kind, ref in (
            ("configmap", source.get("configMapRef")),
            ("secret", source.get("secretRef")),
        ):
            if isinstance(ref, dict):
                found = await _lookup(fetch, kind, namespace, str(ref.get("name")), None,
                                      bool(ref.get("optional")))  # fmt: skip
                if isinstance(found, dict):
                    env.update({prefix + k: v for k, v in found.items()})
    for var in container.get("env") or []:
        name = str(var.get("name"))
        if "value" in var or "valueFrom" not in var:
            env[name] = _VAR.sub(
                lambda m: env.get(m.group(1), m.group(0)), str(var.get("value", ""))
            )
            continue
        source = var.get("valueFrom") or {}
        if "fieldRef" in source:
            path = str(source["fieldRef"].get("fieldPath", ""))
            env[name] = _field(pod, path, host_ip, pod_ip)
        elif "resourceFieldRef" in source:
            env[name] = _resource_field(container, source["resourceFieldRef"])
        else:
            for kind, key in (("configmap", "configMapKeyRef"), ("secret", "secretKeyRef")):
                ref = source.get(key)
                if not isinstance(ref, dict):
                    continue
                found = await _lookup(
                    fetch, kind, namespace, str(ref.get("name")), str(ref.get("key")),
                    bool(ref.get("optional")),
                )  # fmt: skip
                if isinstance(found, str):
                    env[name] = found
    return env


# --- volumes ---------------------------------------------------------------------------------


class Volumes:
    """Each pod's volumes under ``root/<pod uid>/volumes/``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def pod_dir(self, uid: str) -> Path:
        return self.root / uid

    async def prepare(self, pod: Obj, fetch: Fetch) -> dict[str, str]:
        """Make every volume of the pod; return volume name → host path."""
        meta = pod.get("metadata") or {}
        uid, namespace = str(meta.get("uid")), str(meta.get("namespace") or "default")
        paths: dict[str, str] = {}
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            name = str(volume.get("name"))
            if "emptyDir" in volume:
                target = self.pod_dir(uid) / "volumes" / "empty-dir" / name
                await asyncio.to_thread(target.mkdir, parents=True, exist_ok=True, mode=0o777)
                paths[name] = str(target)
            elif "hostPath" in volume:
                paths[name] = await asyncio.to_thread(_host_path, volume["hostPath"])
            elif "configMap" in volume or "secret" in volume:
                kind = "configmap" if "configMap" in volume else "secret"
                source = volume.get("configMap") or volume.get("secret") or {}
                ref_name = str(source.get("name") or source.get("secretName") or "")
                found = await _lookup(
                    fetch, kind, namespace, ref_name, None, bool(source.get("optional"))
                )
                target = self.pod_dir(uid) / "volumes" / kind / name
                files = _project(found if isinstance(found, dict) else {}, source)
                mode = int(source.get("defaultMode", 0o644))
                await asyncio.to_thread(_write_files, target, files, mode)
                paths[name] = str(target)
            else:
                raise ConfigError(
                    f'volume "{name}" has a source bramble does not support yet '
                    "(supported: emptyDir, hostPath, configMap, secret)"
                )
        return paths

    async def remove(self, uid: str) -> None:
        await asyncio.to_thread(shutil.rmtree, self.pod_dir(uid), True)

    async def known_pods(self) -> list[str]:
        def scan() -> list[str]:
            return [p.name for p in self.root.iterdir() if p.is_dir()] if self.root.exists() else []

        return await asyncio.to_thread(scan)


def mounts(container: Obj, paths: Mapping[str, str]) -> list[Mount]:
    result = []
    for m in container.get("volumeMounts") or []:
        name = str(m.get("name"))
        if name not in paths:
            raise ConfigError(f'volumeMount "{name}" names no volume of the pod')
        host = paths[name]
        if m.get("subPath"):
            host = os.path.join(host, str(m["subPath"]))
        result.append(Mount(host, str(m.get("mountPath")), bool(m.get("readOnly"))))
    return result


def _project(data: Mapping[str, str], source: Obj) -> dict[str, str]:
    items = source.get("items")
    if not items:
        return dict(data)
    files = {}
    for item in items:
        key = str(item.get("key"))
        if key not in data:
            if source.get("optional"):
                continue
            raise ConfigError(f"key {key} is not in the {source.get('name')} volume source")
        files[str(item.get("path") or key)] = data[key]
    return files


def _write_files(target: Path, files: Mapping[str, str], mode: int) -> None:
    """Replace the directory's content atomically-ish: write beside, then swap."""
    staging = target.with_name(target.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True, mode=0o755)
    for rel, content in files.items():
        path = (staging / rel).resolve()
        if staging.resolve() not in path.parents:
            raise ConfigError(f"volume item path {rel!r} leaves the volume")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        path.chmod(mode & 0o777)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)


def _host_path(source: Obj) -> str:
    path = Path(str(source.get("path") or ""))
    kind = str(source.get("type") or "")
    if not path.is_absolute():
        raise ConfigError(f"hostPath {str(path)!r} must be an absolute path", reason="FailedMount")
    if kind == "DirectoryOrCreate":
        path.mkdir(parents=True, exist_ok=True, mode=0o755)
    elif kind == "FileOrCreate":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)
    elif kind == "Directory" and not path.is_dir():
        raise ConfigError(
            f"hostPath type check failed: {path} is not a directory", reason="FailedMount"
        )
    elif kind == "File" and not path.is_file():
        raise ConfigError(f"hostPath type check failed: {path} is not a file", reason="FailedMount")
    elif kind == "Socket" and not path.is_socket():
        raise ConfigError(
            f"hostPath type check failed: {path} is not a socket", reason="FailedMount"
        )
    return str(path)
