"""ConfigMaps (NAME DATA AGE) and Secrets (NAME TYPE DATA AGE): DATA is the number of
keys, counting a ConfigMap's ``binaryData`` and a Secret's ``stringData`` too."""

from __future__ import annotations

from datetime import datetime

from controlplane.apiserver.printers.base import AGE, NAME, Cell, Column, Obj, Printer
from controlplane.apiserver.printers.format import age, field_map, field_str, name

CONFIGMAP_COLUMNS = (
    NAME,
    Column(
        "Data",
        "string",
        "Data contains the configuration data. Each key must consist of alphanumeric "
        "characters, '-', '_' or '.'.",
    ),
    AGE,
)


def _configmap(configmap: Obj, now: datetime) -> list[Cell]:
    keys = len(field_map(configmap, "data")) + len(field_map(configmap, "binaryData"))
    return [name(configmap), keys, age(configmap, now)]


SECRET_COLUMNS = (
    NAME,
    Column(
        "Type",
        "string",
        "Used to facilitate programmatic handling of secret data. More info: "
        "https://kubernetes.io/docs/concepts/configuration/secret/#secret-types",
    ),
    Column(
        "Data",
        "string",
        "Data contains the secret data. Each key must consist of alphanumeric characters, "
        "'-', '_' or '.'.",
    ),
    AGE,
)


def _secret(secret: Obj, now: datetime) -> list[Cell]:
    # Kubernetes merges the write-only stringData into data before storing; count the
    # union in case a stored Secret still carries it.
    keys = set(field_map(secret, "data")) | set(field_map(secret, "stringData"))
    return [name(secret), field_str(secret, "type") or "Opaque", len(keys), age(secret, now)]


CONFIGMAP = Printer(CONFIGMAP_COLUMNS, _configmap)
SECRET = Printer(SECRET_COLUMNS, _secret)
