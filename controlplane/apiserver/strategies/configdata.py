"""Secrets and ConfigMaps: defaults and validation, as Kubernetes' ``ValidateSecret``,
``ValidateConfigMap`` and their update rules.

Keys are config keys (``[-._a-zA-Z0-9]+``, not ``.``/``..``); a Secret's ``data`` and a
ConfigMap's ``binaryData`` hold base64; the payload is at most 1 MiB. A Secret is
``Opaque`` unless it says otherwise, its type never changes, and the well-known types
need their keys (``tls.crt`` and ``tls.key`` for ``kubernetes.io/tls``, ...).
``stringData`` is write-only: folded into ``data`` (its keys win) and never stored. An
object marked ``immutable: true`` keeps its data and the mark.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Final

from api import validation as v
from api.errors import Cause
from controlplane.apiserver import kinds
from controlplane.apiserver.strategies import formats
from controlplane.apiserver.strategies.common import (
    Obj,
    expect_map,
    get_map,
    immutable,
    mapping,
    same,
)

MAX_SIZE: Final = 1024 * 1024  # core.MaxSecretSize, for ConfigMaps too
_REQUIRED_KEYS: Final = {
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
}
_IMMUTABLE_DETAIL: Final = "field is immutable when `immutable` is set"


def _decode(value: object) -> bytes | str:
    """The bytes of a base64 value, or the decoding error's message."""
    if not isinstance(value, str):
        return "must be a base64 string"
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as e:
        return f"illegal base64 data: {e}"


def default_secret(secret: Obj) -> None:
    if not secret.get("type"):
        secret["type"] = "Opaque"
    string_data = secret.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = mapping(secret, "data")
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()


def validate_secret(secret: Obj, old: Obj | None) -> list[Cause]:
    causes = expect_map(secret, "data", "data")
    data = get_map(secret, "data")
    decoded: dict[str, bytes] = {}
    size = 0
    for key, value in data.items():
        causes += formats.check(key, f"data[{key}]", formats.is_config_key)
        content = _decode(value)
        if isinstance(content, str):
            causes.append(
                v.invalid_value(f"data[{key}]", "<secret contents redacted>", detail=content)
            )
        else:
            decoded[key] = content
            size += len(content)
    if size > MAX_SIZE:
        causes.append(v.too_long("data", MAX_SIZE))
    causes += _typed(secret, decoded)
    if old is not None:
        causes += immutable("type", secret.get("type"), old.get("type"))
        causes += _immutable_data(secret, old, ("data",))
    return causes


def _typed(secret: Obj, data: dict[str, bytes]) -> list[Cause]:
    kind = secret.get("type")
    if kind == "kubernetes.io/service-account-token":
        annotations = get_map(get_map(secret, "metadata"), "annotations")
        if not annotations.get("kubernetes.io/service-account.name"):
            return [v.required("metadata.annotations[kubernetes.io/service-account.name]")]
        return []
    if kind == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            return [v.required("data[username]"), v.required("data[password]")]
        return []
    causes: list[Cause] = []
    for key in _REQUIRED_KEYS.get(str(kind), ()):
        if key not in data or (key == "ssh-privatekey" and not data[key]):
            causes.append(v.required(f"data[{key}]"))
        elif key.startswith(".docker"):
            try:
                parsed = json.loads(data[key])
                if not isinstance(parsed, dict):
                    raise ValueError("the content is not a JSON object")
            except ValueError as e:
                causes.append(
                    v.invalid_value(f"data[{key}]", "<secret contents redacted>", detail=str(e))
                )
    return causes


def _immutable_data(obj: Obj, old: Obj, keys: tuple[str, ...]) -> list[Cause]:
    if old.get("immutable") is not True:
        return []
    causes: list[Cause] = []
    if obj.get("immutable") is not True:
        causes.append(v.forbidden("immutable", _IMMUTABLE_DETAIL))
    for key in keys:
        if not same(obj.get(key), old.get(key)):
            causes.append(v.forbidden(key, _IMMUTABLE_DETAIL))
    return causes


def validate_config_map(config_map: Obj, old: Obj | None) -> list[Cause]:
    causes = expect_map(config_map, "data", "data") + expect_map(
        config_map, "binaryData", "binaryData"
    )
    data, binary = get_map(config_map, "data"), get_map(config_map, "binaryData")
    size = 0
    for key, value in data.items():
        causes += formats.check(key, f"data[{key}]", formats.is_config_key)
        if key in binary:
            detail = "duplicate of key present in binaryData"
            causes.append(v.invalid_value(f"data[{key}]", key, detail=detail))
        if isinstance(value, str):
            size += len(value.encode())
        else:
            causes.append(v.type_invalid(f"data[{key}]", value, detail="must be a string"))
    for key, value in binary.items():
        causes += formats.check(key, f"binaryData[{key}]", formats.is_config_key)
        content = _decode(value)
        if isinstance(content, str):
            causes.append(v.invalid_value(f"binaryData[{key}]", "<binary data>", detail=content))
        else:
            size += len(content)
    if size > MAX_SIZE:
        causes.append(v.too_long("", MAX_SIZE))  # "" names the whole object, as in k8s
    if old is not None:
        causes += _immutable_data(config_map, old, ("data", "binaryData"))
    return causes


def _secret_create(secret: Obj, now: datetime) -> None:
    default_secret(secret)


def _secret_update(secret: Obj, old: Obj, now: datetime) -> None:
    default_secret(secret)


def register() -> None:
    kinds.register("", "Secret", kinds.Strategy(_secret_create, _secret_update, validate_secret))
    kinds.register("", "ConfigMap", kinds.Strategy(validate=validate_config_map))
