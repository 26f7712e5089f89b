"""Bootstrap endpoints for agents, outside the Kubernetes API (``/bramble/v1/...``).

GET  /bramble/v1/cluster-info
     Anyone. The cluster CA (PEM) and its fingerprint. A joining agent fetches it
     without trusting the connection, then checks the fingerprint against the one it
     was given (``--ca-cert-hash``, as kubeadm's discovery-token-ca-cert-hash), so a
     spoofed server cannot capture it.
POST /bramble/v1/nodes/<name>/serving-certificate   {"hostnames": [...], "ips": [...]}
     Only the node itself (``system:node:<name>``) or an admin. A serving certificate
     and key for the agent's endpoint, signed by the cluster CA for the addresses the
     apiserver will dial (as k3s hands kubelets their serving certificates).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re

from api import errors
from controlplane.apiserver import bodies, respond
from controlplane.apiserver.auth import pki as pkis
from controlplane.apiserver.auth.identity import UserInfo
from controlplane.apiserver.httpd import Request, Response

PREFIX = "/bramble/v1/"
_SERVING = re.compile(r"^/bramble/v1/nodes/([a-z0-9]([-a-z0-9.]*[a-z0-9])?)/serving-certificate$")
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9.]{0,251}[A-Za-z0-9])?$")


async def serve(request: Request, pki: pkis.Pki | None, user: UserInfo) -> Response:
    if pki is None:
        raise errors.NotFound("this apiserver has no cluster PKI (it serves plain HTTP)")
    path = request.path
    if path == PREFIX + "cluster-info" and request.method in ("GET", "HEAD"):
        return respond.json({"ca": pki.ca_pem.decode(), "caHash": pkis.ca_fingerprint(pki)})
    match = _SERVING.match(path)
    if match is None:
        raise errors.NotFound("the server could not find the requested resource")
    if request.method != "POST":
        raise errors.MethodNotAllowed(f"{request.method} is not supported on {path}")
    node = match.group(1)
    if not (user.is_admin or user.node_name == node):
        raise errors.Forbidden(
            f'User "{user.name}" cannot get a serving certificate for node "{node}": '
            "only that node's agent can"
        )
    body = bodies.parse_object(request.body, request.headers.get("Content-Type"))
    hostnames = [str(h) for h in body.get("hostnames") or []]
    ips = [str(i) for i in body.get("ips") or []]
    causes = [errors.Cause("hostnames", "FieldValueInvalid", f"invalid hostname {h!r}")
              for h in hostnames if not _HOSTNAME.match(h)]  # fmt: skip
    for ip in ips:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            causes.append(errors.Cause("ips", "FieldValueInvalid", f"invalid IP address {ip!r}"))
    if not hostnames and not ips:
        causes.append(errors.Cause("ips", "FieldValueRequired", "give at least one address"))
    if causes:
        raise errors.invalid("ServingCertificateRequest", node, causes)
    cert, key = await asyncio.to_thread(
        pkis.issue_serving_certificate,
        pki, common_name=f"system:node:{node}", hostnames=hostnames, ips=ips, days=365,
    )  # fmt: skip
    return respond.json(
        {"certificate": cert.decode(), "key": key.decode(), "ca": pki.ca_pem.decode()}, status=201
    )
