"""String formats the kinds' rules need beyond ``api.validation``: config keys, port names,
percentages, HTTP header names, relaxed env var names, IPs and CIDRs.

Each ``is_*`` returns Kubernetes' messages for a bad value (k8s ``util/validation``); the
field helpers return ``Cause`` lists. IPs are parsed with ``ipaddress``, which, unlike
Go's ``ParseIPSloppy``, rejects IPv4 octets with leading zeros ("010.0.0.1").
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Final

from api import validation as v
from api.errors import Cause
from controlplane.apiserver.strategies.common import is_int

_CONFIG_KEY: Final = "[-._a-zA-Z0-9]+"
_PERCENT: Final = "[0-9]+%"
_HTTP_HEADER: Final = "[-A-Za-z0-9]+"
IP_DETAIL: Final = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
CIDR_DETAIL: Final = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
PORT_RANGE: Final = "must be between 1 and 65535, inclusive"


def inclusive_range(low: int, high: int) -> str:
    """k8s ``InclusiveRangeError``."""
    return f"must be between {low} and {high}, inclusive"


def is_config_key(value: str) -> list[str]:
    """k8s ``IsConfigMapKey``: the keys of ConfigMap and Secret data."""
    errs = [v.max_len_error(253)] if len(value.encode()) > 253 else []
    if re.fullmatch(_CONFIG_KEY, value) is None:
        message = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
        errs.append(v.regex_error(message, _CONFIG_KEY, "key.name", "KEY_NAME", "key-name"))
    if value in (".", ".."):
        errs.append(f"must not be '{value}'")
    elif value.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def is_port_name(value: str) -> list[str]:
    """k8s ``IsValidPortName`` (an IANA_SVC_NAME)."""
    errs = [v.max_len_error(15)] if len(value) > 15 else []
    if re.fullmatch("[-a-z0-9]+", value) is None:
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if re.search("[a-z]", value) is None:
        errs.append("must contain at least one letter (a-z)")
    if "--" in value:
        errs.append("must not contain consecutive hyphens")
    if value and (value[0] == "-" or value[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def is_percent(value: str) -> list[str]:
    """k8s ``IsValidPercent``."""
    if re.fullmatch(_PERCENT, value) is not None:
        return []
    message = "a valid percent string must be a numeric string followed by an ending '%'"
    return [v.regex_error(message, _PERCENT, "1%", "93%")]


def is_http_header_name(value: str) -> list[str]:
    if re.fullmatch(_HTTP_HEADER, value) is not None:
        return []
    message = "a valid HTTP header must consist of alphanumeric characters or '-'"
    return [v.regex_error(message, _HTTP_HEADER, "X-Header-Name")]


def is_relaxed_env_var_name(value: str) -> list[str]:
    """k8s ``IsRelaxedEnvVarName``: the rule of Kubernetes 1.32, whose version bramble
    reports (RelaxedEnvironmentVariableValidation is on by default there)."""
    if not value:
        return ["environment variable name must be non-empty"]
    if any(not (" " <= ch <= "~") or ch == "=" for ch in value):
        return [
            "a valid environment variable name must consist only of printable ASCII "
            "characters other than '='"
        ]
    return []


def check(value: object, path: str, rule: Callable[[str], list[str]]) -> list[Cause]:
    """One Invalid cause per problem ``rule`` finds in the string ``value``."""
    if not isinstance(value, str):
        return [v.type_invalid(path, value, detail="must be a string")]
    return [v.invalid_value(path, value, detail=m) for m in rule(value)]


def port_num_or_name(value: object, path: str) -> list[Cause]:
    """k8s ``ValidatePortNumOrName`` for an IntOrString port (targetPort, probe ports)."""
    if is_int(value):
        return [] if 1 <= value <= 65535 else [v.invalid_value(path, value, detail=PORT_RANGE)]
    if isinstance(value, str):
        return [v.invalid_value(path, value, detail=m) for m in is_port_name(value)]
    return [v.type_invalid(path, value, detail="must be an integer or a string")]


def parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def ip(value: object, path: str) -> list[Cause]:
    """k8s ``IsValidIP``."""
    if isinstance(value, str) and parse_ip(value) is not None:
        return []
    return [v.invalid_value(path, value, detail=IP_DETAIL)]


def cidr(value: object, path: str) -> list[Cause]:
    """k8s ``IsValidCIDR`` (host bits may be set, as ``ParseCIDRSloppy`` allows)."""
    if isinstance(value, str) and "/" in value:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            pass
        else:
            return []
    return [v.invalid_value(path, value, detail=CIDR_DETAIL)]


def non_special_ip(value: object, path: str) -> list[Cause]:
    """k8s ``ValidateNonSpecialIP``: endpoints and external IPs may not be unspecified,
    loopback or link-local."""
    address = parse_ip(value) if isinstance(value, str) else None
    if address is None:
        return [v.invalid_value(path, value, detail="must be a valid IP address")]
    causes: list[Cause] = []
    if address.is_unspecified:
        causes.append(v.invalid_value(path, value, detail=f"may not be unspecified ({value})"))
    if address.is_loopback:
        detail = "may not be in the loopback range (127.0.0.0/8, ::1/128)"
        causes.append(v.invalid_value(path, value, detail=detail))
    multicast = address in ipaddress.ip_network(
        "224.0.0.0/24" if address.version == 4 else "ff02::/16"
    )
    if address.is_link_local and not multicast:
        detail = "may not be in the link-local range (169.254.0.0/16, fe80::/10)"
        causes.append(v.invalid_value(path, value, detail=detail))
    if multicast:
        detail = "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"
        causes.append(v.invalid_value(path, value, detail=detail))
    return causes
