"""Relisting against a stand-in for podman-py's client (the answers are Podman 4.3's
shapes, trimmed): what is asked of Podman, and what is remembered between relists."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from agent.runtime.podman_listing import list_pods

INFRA = "infra-1"


@dataclass
class Response:
    status_code: int
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def text(self) -> str:
        return json.dumps(self.body)

    def json(self) -> Any:
        return self.body


@dataclass
class Api:
    ip: str = ""  # the infra container's IP as inspect gives it ("" while not set up)
    network_mode: str = "bridge"
    gets: list[str] = field(default_factory=list)

    def get(self, path: str, params: Any = None) -> Response:
        self.gets.append(path)
        if path == "/pods/json":
            pod = {
                "Id": "pod-1",
                "InfraId": INFRA,
                "Containers": [{"Id": INFRA, "Status": "running"}],
                "Labels": {},
            }
            return Response(200, [pod])
        assert path == f"/containers/{INFRA}/json", path
        inspect = {
            "NetworkSettings": {"IPAddress": self.ip},
            "HostConfig": {"NetworkMode": self.network_mode},
        }
        return Response(200, inspect)


@dataclass
class Client:
    api: Api


def test_a_running_sandboxs_ip_is_inspected_once() -> None:
    client = Client(Api(ip="10.88.0.5"))
    _, ips = list_pods(client, {})
    _, again = list_pods(client, ips)
    assert again == ips == {INFRA: "10.88.0.5"}
    assert client.api.gets.count(f"/containers/{INFRA}/json") == 1


def test_an_ip_not_there_yet_is_read_again_at_the_next_relist() -> None:
    client = Client(Api(ip=""))  # the infra container runs, its network is not set up yet
    _, ips = list_pods(client, {})
    assert not ips.get(INFRA)
    client.api.ip = "10.88.0.5"
    _, ips = list_pods(client, ips)
    assert ips == {INFRA: "10.88.0.5"}


def test_a_host_network_sandbox_is_inspected_once() -> None:
    client = Client(Api(network_mode="host"))  # no IP of its own, ever
    _, ips = list_pods(client, {})
    _, again = list_pods(client, ips)
    assert again == ips == {INFRA: ""}
    assert client.api.gets.count(f"/containers/{INFRA}/json") == 1
