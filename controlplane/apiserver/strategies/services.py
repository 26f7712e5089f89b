"""Services: defaults and validation, as Kubernetes' ``SetDefaults_Service``,
``ValidateService`` and the service registry's handling of cluster IPs.

bramble has no service proxy and no service IP range yet, so it allocates no cluster IP
and no node port: a Service keeps the ``clusterIP`` its client gave (an IP, or ``None``
for a headless service) and has none otherwise, which kubectl shows as ``<none>``. What
Kubernetes does around allocated values is kept: ``clusterIPs`` follows ``clusterIP``,
an update that leaves them out keeps the stored ones (``kubectl apply`` of a manifest
without them works), and a set cluster IP cannot change.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from api import validation as v
from api.errors import Cause
from controlplane.apiserver import kinds
from controlplane.apiserver.strategies import formats
from controlplane.apiserver.strategies.common import (
    Obj,
    freeze,
    get_list,
    get_map,
    get_str,
    is_int,
    items,
    mapping,
    one_of,
    optional_one_of,
)
from controlplane.apiserver.strategies.pods.containers import PROTOCOLS

TYPES: Final = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
AFFINITIES: Final = ("ClientIP", "None")
TRAFFIC_POLICIES: Final = ("Cluster", "Local")
DEFAULT_CLIENT_IP_TIMEOUT: Final = 10800
MAX_CLIENT_IP_TIMEOUT: Final = 86400
_LB_ONLY: Final = "may only be used when `type` is 'LoadBalancer'"
_NOT_EXTERNAL_NAME: Final = "may not be set for ExternalName services"


def _externally_accessible(spec: Obj) -> bool:
    kind = spec.get("type")
    return kind in ("LoadBalancer", "NodePort") or (
        kind == "ClusterIP" and bool(get_list(spec, "externalIPs"))
    )


def _headless(spec: Obj) -> bool:
    return get_list(spec, "clusterIPs") == ["None"]


def default_service(service: Obj) -> None:
    spec = mapping(service, "spec")
    if not spec.get("sessionAffinity"):
        spec["sessionAffinity"] = "None"
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        client = get_map(get_map(spec, "sessionAffinityConfig"), "clientIP")
        if client.get("timeoutSeconds") is None:
            timeout = {"timeoutSeconds": DEFAULT_CLIENT_IP_TIMEOUT}
            spec["sessionAffinityConfig"] = {"clientIP": timeout}
    if not spec.get("type"):
        spec["type"] = "ClusterIP"
    for port in get_list(spec, "ports"):
        if isinstance(port, dict):
            if not port.get("protocol"):
                port["protocol"] = "TCP"
            if port.get("targetPort") in (None, 0, ""):
                port["targetPort"] = port.get("port")
    if _externally_accessible(spec) and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if spec.get("internalTrafficPolicy") is None and spec["type"] != "ExternalName":
        spec["internalTrafficPolicy"] = "Cluster"
    if spec["type"] == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True


def prepare_create(service: Obj, now: datetime) -> None:
    default_service(service)
    spec = get_map(service, "spec")
    if spec.get("clusterIP") and not spec.get("clusterIPs"):
        spec["clusterIPs"] = [spec["clusterIP"]]
    service["status"] = {"loadBalancer": {}}


def prepare_update(service: Obj, old: Obj, now: datetime) -> None:
    """Default, then keep what the server would have allocated (the registry's
    ``patchAllocatedValues`` and ``NormalizeClusterIPs``)."""
    default_service(service)
    spec, old_spec = get_map(service, "spec"), get_map(old, "spec")
    if spec.get("type") != "ExternalName" and old_spec.get("type") != "ExternalName":
        for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
            if not spec.get(key) and old_spec.get(key):
                spec[key] = old_spec[key]
    if spec.get("type") in ("NodePort", "LoadBalancer") and old_spec.get("type") in (
        "NodePort",
        "LoadBalancer",
    ):
        old_ports = {
            get_str(p, "name"): p.get("nodePort")
            for p in get_list(old_spec, "ports")
            if isinstance(p, dict)
        }
        used = {freeze(p.get("nodePort")) for p in get_list(spec, "ports") if isinstance(p, dict)}
        for port in get_list(spec, "ports"):
            if isinstance(port, dict) and not port.get("nodePort"):
                known = old_ports.get(get_str(port, "name"))
                if known and freeze(known) not in used:
                    port["nodePort"] = known
    ip, old_ip = spec.get("clusterIP", ""), old_spec.get("clusterIP", "")
    if ip != old_ip and spec.get("clusterIPs") == old_spec.get("clusterIPs"):
        if old_ip and not ip:
            spec.pop("clusterIPs", None)
        else:
            spec["clusterIPs"] = [ip]


def validate(service: Obj, old: Obj | None) -> list[Cause]:
    spec = get_map(service, "spec")
    kind = spec.get("type")
    headless = _headless(spec)
    causes: list[Cause] = []
    if not get_list(spec, "ports") and not headless and kind != "ExternalName":
        causes.append(v.required("spec.ports"))
    if kind in ("LoadBalancer", "NodePort") and headless:
        detail = f"may not be set to 'None' for {kind} services"
        causes.append(v.invalid_value("spec.clusterIPs[0]", "None", detail=detail))
    if kind == "ExternalName":
        for key in ("clusterIPs", "ipFamilies", "ipFamilyPolicy"):
            if spec.get(key):
                causes.append(v.forbidden(f"spec.{key}", _NOT_EXTERNAL_NAME))
        name = get_str(spec, "externalName").removesuffix(".")
        if name:
            causes += v.dns1123_subdomain(name, "spec.externalName")
        else:
            causes.append(v.required("spec.externalName"))
    causes += _ports(spec, headless=headless)
    if spec.get("selector") is not None:
        causes += v.labels(spec.get("selector"), "spec.selector")
    causes += _affinity(spec)
    causes += _cluster_ips(spec)
    for i, ip in enumerate(get_list(spec, "externalIPs")):
        errs = formats.ip(ip, f"spec.externalIPs[{i}]")
        causes += errs or formats.non_special_ip(ip, f"spec.externalIPs[{i}]")
    causes += one_of(spec, "type", "spec.type", TYPES)
    causes += _load_balancer(spec)
    causes += _traffic(spec)
    if old is not None:
        causes += _cluster_ip_update(spec, get_map(old, "spec"))
    return causes


def _go_service_port(protocol: object, port: object) -> str:
    return (
        f'core.ServicePort{{Name:"", Protocol:{v.quote(str(protocol))}, '
        f"AppProtocol:(*string)(nil), Port:{port}, "
        'TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}'
    )


def _ports(spec: Obj, *, headless: bool) -> list[Cause]:
    """k8s ``validateServicePort`` for each port, then unique (protocol, port) and node
    ports."""
    causes: list[Cause] = []
    ports = get_list(spec, "ports")
    names: set[object] = set()
    for path, port in items(spec, "ports", "spec.ports"):
        name = port.get("name")
        if len(ports) > 1 and not name:
            causes.append(v.required(f"{path}.name"))
        elif name:
            causes += v.dns1123_label(name, f"{path}.name")
            if freeze(name) in names:
                causes.append(v.duplicate(f"{path}.name", name))
            names.add(freeze(name))
        causes += v.port_number(port.get("port", 0), f"{path}.port")
        causes += one_of(port, "protocol", f"{path}.protocol", PROTOCOLS)
        causes += formats.port_num_or_name(port.get("targetPort", 0), f"{path}.targetPort")
        if port.get("appProtocol") is not None:
            causes += v.qualified_name(port["appProtocol"], f"{path}.appProtocol")
        if spec.get("type") == "ClusterIP" and port.get("nodePort"):
            causes.append(
                v.forbidden(f"{path}.nodePort", "may not be used when `type` is 'ClusterIP'")
            )
    node_ports: set[tuple[object, object]] = set()
    pairs: set[tuple[object, object]] = set()
    for path, port in items(spec, "ports", "spec.ports"):
        protocol, node_port = freeze(port.get("protocol")), freeze(port.get("nodePort"))
        if node_port:
            if (protocol, node_port) in node_ports:
                causes.append(v.duplicate(f"{path}.nodePort", node_port))
            node_ports.add((protocol, node_port))
    for path, port in items(spec, "ports", "spec.ports"):
        key = (freeze(port.get("protocol")), freeze(port.get("port")))
        if key in pairs:
            message = f"Duplicate value: {_go_service_port(*key)}"
            causes.append(Cause(path, v.DUPLICATE, message))
        pairs.add(key)
    return causes


def _affinity(spec: Obj) -> list[Cause]:
    causes = one_of(spec, "sessionAffinity", "spec.sessionAffinity", AFFINITIES)
    path = "spec.sessionAffinityConfig"
    config = spec.get("sessionAffinityConfig")
    if spec.get("sessionAffinity") == "ClientIP":
        when = "when session affinity type is ClientIP"
        if not isinstance(config, dict):
            return [*causes, v.required(path, when)]
        client = config.get("clientIP")
        if not isinstance(client, dict):
            return [*causes, v.required(f"{path}.clientIP", when)]
        timeout = client.get("timeoutSeconds")
        if timeout is None:
            return [*causes, v.required(f"{path}.clientIP.timeoutSeconds", when)]
        if not is_int(timeout) or not 0 < timeout <= MAX_CLIENT_IP_TIMEOUT:
            detail = f"must be greater than 0 and less than {MAX_CLIENT_IP_TIMEOUT}"
            causes.append(
                v.invalid_value(f"{path}.clientIP.timeoutSeconds", timeout, detail=detail)
            )
    elif spec.get("sessionAffinity") == "None" and config is not None:
        causes.append(v.forbidden(path, "must not be set when session affinity is None"))
    return causes


def _cluster_ips(spec: Obj) -> list[Cause]:
    """k8s ``ValidateServiceClusterIPsRelatedFields``."""
    if spec.get("type") == "ExternalName":
        return []
    path = "spec.clusterIPs"
    ip, ips = get_str(spec, "clusterIP"), get_list(spec, "clusterIPs")
    causes: list[Cause] = []
    if ip:
        if not ips:
            causes.append(v.required(path))
        elif ips[0] != ip:
            causes.append(v.invalid_value(path, ips, detail="first value must match `clusterIP`"))
    elif ips:
        detail = "must be empty when `clusterIP` is not specified"
        causes.append(v.invalid_value(path, ips, detail=detail))
    families = get_list(spec, "ipFamilies")
    for i, family in enumerate(families):
        if family not in ("IPv4", "IPv6"):
            causes.append(
                v.not_supported(f"spec.ipFamilies[{i}]", family, supported=("IPv4", "IPv6"))
            )
        if family in families[:i]:
            causes.append(v.duplicate(f"spec.ipFamilies[{i}]", family))
    policies = ("PreferDualStack", "RequireDualStack", "SingleStack")
    causes += optional_one_of(spec, "ipFamilyPolicy", "spec.ipFamilyPolicy", policies)
    bad = False
    for i, address in enumerate(ips):
        if i == 0 and address == "None":
            if len(ips) > 1:
                bad = True
                detail = "'None' must be the first and only value"
                causes.append(v.invalid_value(path, ips, detail=detail))
            continue
        errs = formats.ip(address, f"{path}[{i}]")
        bad = bad or bool(errs)
        causes += errs
    if len(ips) > 2:
        causes.append(v.invalid_value(path, ips, detail="may only hold up to 2 values"))
    if bad:
        return causes
    versions = [formats.parse_ip(str(a)) for a in ips]
    if len(ips) == 2 and versions[0] and versions[1] and versions[0].version == versions[1].version:
        detail = "may specify no more than one IP for each IP family"
        causes.append(v.invalid_value(path, ips, detail=detail))
    if not _headless(spec):
        for i, (address, family) in enumerate(zip(versions, families, strict=False)):
            expected = 4 if family == "IPv4" else 6
            if address is not None and address.version != expected:
                detail = f"expected an {family} value as indicated by `ipFamilies[{i}]`"
                causes.append(v.invalid_value(f"{path}[{i}]", str(address), detail=detail))
    return causes


def _cluster_ip_update(spec: Obj, old_spec: Obj) -> list[Cause]:
    """k8s ``validateUpgradeDowngradeClusterIPs``: a set cluster IP does not change."""
    if "ExternalName" in (spec.get("type"), old_spec.get("type")):
        return []
    if _headless(spec) and _headless(old_spec):
        return []
    ips, old_ips = get_list(spec, "clusterIPs"), get_list(old_spec, "clusterIPs")
    causes: list[Cause] = []
    if len(ips) == len(old_ips):
        for i, address in enumerate(old_ips):
            if ips[i] != address:
                causes.append(
                    v.invalid_value(f"spec.clusterIPs[{i}]", ips, detail="may not change once set")
                )
    elif len(old_ips) > len(ips):
        if not ips:
            causes.append(
                v.invalid_value(
                    "spec.clusterIPs[0]", ips, detail="primary clusterIP can not be unset"
                )
            )
        elif ips[0] != old_ips[0]:
            causes.append(
                v.invalid_value("spec.clusterIPs[0]", ips, detail="may not change once set")
            )
        if len(ips) == 1 and spec.get("ipFamilyPolicy") != "SingleStack":
            detail = "must be set to 'SingleStack' when releasing the secondary clusterIP"
            causes.append(
                v.invalid_value("spec.ipFamilyPolicy", spec.get("ipFamilyPolicy"), detail=detail)
            )
    elif old_ips and ips[0] != old_ips[0]:
        causes.append(v.invalid_value("spec.clusterIPs[0]", ips, detail="may not change once set"))
    return causes


def _load_balancer(spec: Obj) -> list[Cause]:
    causes: list[Cause] = []
    balancer = spec.get("type") == "LoadBalancer"
    ranges = get_list(spec, "loadBalancerSourceRanges")
    if ranges:
        path = "spec.LoadBalancerSourceRanges"  # sic: Kubernetes' capital L
        if not balancer:
            causes.append(v.forbidden(path, _LB_ONLY))
        for i, cidr in enumerate(ranges):
            causes += formats.cidr(str(cidr).strip(), f"{path}[{i}]")
    if spec.get("allocateLoadBalancerNodePorts") is not None and not balancer:
        causes.append(v.forbidden("spec.allocateLoadBalancerNodePorts", _LB_ONLY))
    if balancer and spec.get("allocateLoadBalancerNodePorts") is None:
        causes.append(v.required("allocateLoadBalancerNodePorts"))  # sic: no "spec."
    if spec.get("loadBalancerClass") is not None:
        if balancer:
            causes += v.qualified_name(spec["loadBalancerClass"], "spec.loadBalancerClass")
        else:
            causes.append(v.forbidden("spec.loadBalancerClass", _LB_ONLY))
    return causes


def _traffic(spec: Obj) -> list[Cause]:
    causes: list[Cause] = []
    policy = spec.get("externalTrafficPolicy")
    if not _externally_accessible(spec):
        if policy:
            detail = "may only be set for externally-accessible services"
            causes.append(v.invalid_value("spec.externalTrafficPolicy", policy, detail=detail))
    else:
        causes += one_of(
            spec, "externalTrafficPolicy", "spec.externalTrafficPolicy", TRAFFIC_POLICIES
        )
    health = spec.get("healthCheckNodePort")
    # bramble allocates no node ports, so a missing health check port is not an error.
    if health and not (spec.get("type") == "LoadBalancer" and policy == "Local"):
        detail = (
            "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"
        )
        causes.append(v.invalid_value("spec.healthCheckNodePort", health, detail=detail))
    elif health:
        causes += v.port_number(health, "spec.healthCheckNodePort")
    internal = spec.get("internalTrafficPolicy")
    if internal is None and spec.get("type") in ("ClusterIP", "NodePort", "LoadBalancer"):
        causes.append(v.required("spec.internalTrafficPolicy"))
    causes += optional_one_of(
        spec, "internalTrafficPolicy", "spec.internalTrafficPolicy", TRAFFIC_POLICIES
    )
    return causes + optional_one_of(
        spec, "trafficDistribution", "spec.trafficDistribution", ("PreferClose",)
    )


def validate_status(service: Obj, old: Obj) -> list[Cause]:
    """k8s ``ValidateLoadBalancerStatus``: only a LoadBalancer has ingress points."""
    path = "status.loadBalancer.ingress"
    balancer = get_map(get_map(service, "status"), "loadBalancer")
    if get_list(balancer, "ingress") and get_map(service, "spec").get("type") != "LoadBalancer":
        return [v.forbidden(path, "may only be used when `spec.type` is 'LoadBalancer'")]
    causes: list[Cause] = []
    for item_path, ingress in items(balancer, "ingress", path):
        if ingress.get("ip"):
            causes += formats.ip(ingress["ip"], f"{item_path}.ip")
        hostname = ingress.get("hostname")
        if hostname:
            causes += v.dns1123_subdomain(hostname, f"{item_path}.hostname")
            if isinstance(hostname, str) and formats.parse_ip(hostname) is not None:
                detail = "must be a DNS name, not an IP address"
                causes.append(v.invalid_value(f"{item_path}.hostname", hostname, detail=detail))
    return causes


def register() -> None:
    strategy = kinds.Strategy(
        prepare_create, prepare_update, validate, validate_status=validate_status
    )
    kinds.register("", "Service", strategy)
