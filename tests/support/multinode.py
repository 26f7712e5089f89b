"""A real bramble cluster of several nodes on one machine: the multi-node test cluster.

``Cluster`` owns everything one cluster consists of, and takes all of it down again:

* a ``Switch`` (tests/support/netns.py): a bridge in a namespace of its own on a free /24
  of 198.18.0.0/15, with one veth into the machine's namespace at ``.1``;
* the control plane: ``bramble server --no-agent`` listening on that ``.1`` address (its
  serving certificate names every local address, so the nodes can verify it there), with
  its scheduler;
* N ``ClusterNode``s. Node i is namespace ``<prefix>-n<i>`` at ``.10+i``, with its own
  Podman service (own storage, run and tmp directories, network configuration and pod
  subnet 10.244.<i>.0/24, so its pods are visible to its ``podman`` only) holding a copy
  of ``localhost/busybox:latest``, its own ``bramble agent`` (node token, CA hash, its
  endpoint on :10250 of the node's address) and, optionally, an sshd on :22. The agent
  and sshd run in a UTS namespace whose hostname is the node's name.

Node operations for failure tests: ``kill`` (SIGKILL the agent), ``freeze``/``thaw``
(SIGSTOP/SIGCONT), ``cut_off``/``restore`` (the node's switch port down/up) and
``restart_agent``.

Cleanup must leave nothing behind (no namespace, process, veth, route, mount or
container) however the run ends, so it happens in three places:

1. ``Cluster.stop()``, from the fixture's ``finally`` or ``with`` block;
2. a reaper: a small process of its own session that holds the read end of a pipe from
   the owner; when the owner dies, even by SIGKILL, the pipe reaches EOF and the reaper
   tears down whatever the owner's record (STATE_DIR/<prefix>.json) still lists;
3. ``cleanup_leftovers()``, at every fixture start and in ``scripts/cluster down``: the
   records whose owner process is gone, and any ``bmn*`` namespace, host veth or guard
   route that no record explains (a run killed while it was writing its record).

Nothing is ever found by a broad process name: processes are ours because they run in
our namespaces, are conmons of our Podman storage, or are the server whose pid the record
holds (checked against its start time, so a reused pid is never hit).

tests/support/cleanup.py holds the teardown and the reaper; tests/support/multinode_cli.py
is ``scripts/cluster``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ipaddress
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tests.support import netns
from tests.support.cleanup import PREFIX, cleanup_leftovers, remove_containers, teardown
from tests.support.cluster import BrambleServer, Kubectl
from tests.support.podman import BUSYBOX, EXIT_COMMAND_DELAY, containers_conf, ping
from tests.support.processes import (
    READY_TIMEOUT,
    ClusterError,
    Service,
    start_time,
    wait_until,
)

REPO = Path(__file__).resolve().parents[2]
AGENT_PORT = 10250  # each node has its own network namespace: the default port is free
LEASE_INTERVAL = 1.0  # seconds between Lease renewals: failure tests see a stop quickly


def _set_in_section(text: str, section: str, key: str, value: str) -> str:
    """``key = value`` in ``[section]`` of a TOML file (replacing an existing key)."""
    lines = [ln for ln in text.splitlines() if not ln.strip().startswith(f"{key} ")]
    setting = f"{key} = {value}"
    stripped = [ln.strip() for ln in lines]
    if f"[{section}]" in stripped:
        lines.insert(stripped.index(f"[{section}]") + 1, setting)
    else:
        lines += ["", f"[{section}]", setting]
    return "\n".join(lines) + "\n"


class ClusterNode:
    """One node: a namespace on the switch, its Podman, its agent, maybe its sshd."""

    def __init__(self, cluster: Cluster, index: int) -> None:
        assert 1 <= index <= 200, "addresses .11-.210 and pod subnets 10.244.1-200.0/24"
        self.cluster = cluster
        self.index = index
        self.name = f"node{index}"
        self.dir = cluster.dir / "nodes" / self.name
        self.netns = cluster.switch.node_netns(index)
        self.address = cluster.switch.node_address(index)
        self.pod_subnet = ipaddress.IPv4Network(f"10.244.{index}.0/24")
        self.podman_socket = self.dir / "podman.sock"
        self.podman_env = {
            **os.environ,
            "CONTAINERS_CONF": str(self.dir / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(self.dir / "storage.conf"),
        }
        self.podman_service: Service | None = None
        self.agent: Service | None = None
        self.sshd: Service | None = None

    def __repr__(self) -> str:
        return f"ClusterNode({self.name} {self.address} netns={self.netns})"

    # --- bring-up ----------------------------------------------------------------------

    def start(self, image_archive: Path) -> None:
        """Namespace, Podman with the test image, agent (and sshd): ready when the agent
        has registered its Node."""
        self.dir.mkdir(parents=True)
        self.cluster.switch.plug(self.index)
        self._write_podman_config()
        self.podman("load", "-q", "-i", str(image_archive))
        self.podman_service = Service(
            f"{self.name} podman",
            [*netns.enter(self.netns), "podman", "system", "service", "--time=0",
             f"unix://{self.podman_socket}"],
            self.dir / "podman.log",
            self.podman_env,
        )  # fmt: skip
        self.podman_service.start()
        wait_until(
            lambda: ping(self.podman_socket) or not self._check(self.podman_service),
            timeout=READY_TIMEOUT,
            what=f"{self.name}'s podman service answering /_ping",
        )
        token = self.cluster.server.create_token(user=f"system:node:{self.name}", role="node")
        token_file = self.dir / "agent-token"
        token_file.touch(mode=0o600)
        token_file.write_text(token)
        self.agent = Service(f"{self.name} agent", self._agent_command(token_file),
                             self.dir / "agent.log", self._agent_env())  # fmt: skip
        self.start_agent()
        if self.cluster.sshd:
            self._start_sshd()

    def _check(self, service: Service | None) -> bool:
        if service is None or not service.running():
            log = service.log() if service is not None else ""
            raise ClusterError(f"{self.name}: a service exited:\n{log[-4000:]}")
        return True

    def _write_podman_config(self) -> None:
        for sub in ("root", "run", "tmp", "net"):
            (self.dir / sub).mkdir()
        (self.dir / "storage.conf").write_text(
            f'[storage]\ndriver = "overlay"\ngraphroot = "{self.dir / "root"}"\n'
            f'runroot = "{self.dir / "run"}"\n'
        )
        conf = containers_conf(exit_command_delay=EXIT_COMMAND_DELAY)
        conf = _set_in_section(conf, "engine", "tmp_dir", f'"{self.dir / "tmp"}"')
        conf = _set_in_section(conf, "network", "network_config_dir", f'"{self.dir / "net"}"')
        conf = _set_in_section(conf, "network", "default_subnet", f'"{self.pod_subnet}"')
        (self.dir / "containers.conf").write_text(conf)

    def _agent_command(self, token_file: Path) -> list[str]:
        server = self.cluster.server
        return [
            *netns.enter(self.netns), *_with_hostname(self.name),
            sys.executable, "-m", "bramble", "agent",
            "--server", f"https://{self.cluster.switch.host_address}:{server.port}",
            "--token-file", str(token_file), "--ca-cert-hash", self.cluster.ca_hash,
            "--name", self.name, "--data-dir", str(self.dir / "agent"),
            "--podman-url", f"unix://{self.podman_socket}",
            "--address", self.address, "--endpoint-port", str(AGENT_PORT),
            "--lease-interval", str(self.cluster.lease_interval),
            "--status-interval", "2", "--housekeeping-interval", "2",
            *self.cluster.agent_args,
        ]  # fmt: skip

    def _agent_env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "BRAMBLE_MDNS": "off",  # no multicast from the agents, even inside our netns
            "PYTHONPATH": str(REPO),
        }

    def _start_sshd(self) -> None:
        keys = self.cluster.ssh_keys()
        config = self.dir / "sshd_config"
        config.write_text(
            f"Port 22\nListenAddress {self.address}\nHostKey {keys / 'host'}\n"
            f"AuthorizedKeysFile {keys / 'client.pub'}\nPermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
            "StrictModes no\nPidFile none\n"
            # Sessions use this node's Podman storage, as a person on the node would.
            f"SetEnv CONTAINERS_CONF={self.dir / 'containers.conf'}"
            f" CONTAINERS_STORAGE_CONF={self.dir / 'storage.conf'}\n"
        )
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation
        self.sshd = Service(
            f"{self.name} sshd",
            [*netns.enter(self.netns), *_with_hostname(self.name),
             "/usr/sbin/sshd", "-D", "-e", "-f", str(config)],
            self.dir / "sshd.log",
            dict(os.environ),
        )  # fmt: skip
        self.sshd.start()
        self.sshd.wait_for_log("Server listening on")

    # --- operations for failure tests ---------------------------------------------------

    def start_agent(self, *, wait: bool = True) -> None:
        """Start the agent; with ``wait``, until it has registered (or updated) its Node."""
        assert self.agent is not None
        since = len(self.agent.log())
        self.agent.start()
        if wait:
            self._wait_registered(since)

    def _wait_registered(self, since: int) -> None:
        assert self.agent is not None

        def registered() -> bool:
            text = self.agent.log()[since:] if self.agent is not None else ""
            if "node registered" in text or "node updated" in text:
                return True
            self._check(self.agent)
            return False

        try:
            wait_until(registered, timeout=READY_TIMEOUT, what=f"{self.name}'s agent registering")
        except ClusterError as e:
            raise ClusterError(f"{e}\n{self.agent.log()[-4000:]}") from None

    def kill(self) -> None:
        """SIGKILL the agent (its containers live on under Podman)."""
        assert self.agent is not None
        self.agent.kill()

    def freeze(self) -> None:
        """SIGSTOP the agent: its connections stay open, nothing answers."""
        assert self.agent is not None
        self.agent.signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.agent is not None
        self.agent.signal(signal.SIGCONT)

    def cut_off(self) -> None:
        """The node's switch port goes down: it can reach nothing and nothing reaches it."""
        self.cluster.switch.set_port(self.index, up=False)

    def restore(self) -> None:
        self.cluster.switch.set_port(self.index, up=True)

    def restart_agent(self, *, graceful: bool = True) -> None:
        """Stop (SIGTERM, or SIGKILL when not ``graceful``) and start the agent again."""
        assert self.agent is not None
        if graceful:
            self.agent.stop()
        else:
            self.agent.kill()
        self.start_agent()

    # --- looking at the node ------------------------------------------------------------

    def run(self, *command: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run a program in the node's network namespace (never raises on its status)."""
        return subprocess.run(
            [*netns.enter(self.netns), *command],
            capture_output=True, text=True, check=False, timeout=timeout,
            env=self.podman_env,
        )  # fmt: skip

    def podman(self, *args: str, check: bool = True) -> str:
        """This node's podman CLI (local mode on its storage, in its namespace, so that
        network teardown happens where its network is); its stdout."""
        result = self.run("podman", *args, timeout=120)
        if check and result.returncode != 0:
            raise ClusterError(f"{self.name}: podman {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout

    def containers(self, **labels: str) -> list[dict[str, Any]]:
        """The containers in this node's Podman (all states), filtered by labels."""
        filters = [arg for k, v in labels.items() for arg in ("--filter", f"label={k}={v}")]
        out = self.podman("ps", "-a", "--format", "json", *filters)
        return list(json.loads(out) if out.strip() else [])


def _with_hostname(name: str) -> list[str]:
    """A UTS namespace of its own whose hostname is ``name``, then exec the rest."""
    return ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', name]


class Cluster:
    """A control plane and N nodes on one machine (see the module docstring).

    ``with Cluster.running(workdir, nodes=3) as cluster:`` brings it up and takes it
    down however the block ends. ``cluster.kubectl`` is the real kubectl with the admin
    kubeconfig; ``cluster.nodes`` the ``ClusterNode``s; ``add_node()`` joins another."""

    def __init__(
        self,
        workdir: Path,
        *,
        sshd: bool = False,
        lease_interval: float = LEASE_INTERVAL,
        agent_args: Sequence[str] = (),
        server_args: Sequence[str] = (),
    ) -> None:
        self.prefix = f"{PREFIX}{secrets.token_hex(3)}"
        self.dir = workdir.resolve() / self.prefix
        self.record = netns.STATE_DIR / f"{self.prefix}.json"
        self.sshd = sshd
        self.lease_interval = lease_interval
        self.agent_args = list(agent_args)
        self.server_args = list(server_args)
        self.nodes: list[ClusterNode] = []
        self._server: BrambleServer | None = None
        self._switch: netns.Switch | None = None
        self._reaper: subprocess.Popen[bytes] | None = None
        self.ca_hash = ""
        self._ssh_keys_lock = threading.Lock()

    @classmethod
    @contextlib.contextmanager
    def running(cls, workdir: Path, *, nodes: int = 3, **options: Any) -> Iterator[Cluster]:
        cluster = cls(workdir, **options)
        try:
            cluster.start(nodes)
            yield cluster
        finally:
            cluster.stop()

    @property
    def server(self) -> BrambleServer:
        assert self._server is not None, "the cluster is not running"
        return self._server

    @property
    def switch(self) -> netns.Switch:
        assert self._switch is not None, "the cluster is not running"
        return self._switch

    @property
    def kubeconfig(self) -> Path:
        return self.server.kubeconfig

    @property
    def kubectl(self) -> Kubectl:
        return Kubectl("kubectl", self.kubeconfig, self.dir / "kubectl-cache")

    def node(self, name: str) -> ClusterNode:
        return next(n for n in self.nodes if n.name == name)

    def start(self, nodes: int) -> None:
        """Switch, reaper, control plane, then the nodes (in parallel)."""
        cleanup_leftovers()
        self.dir.mkdir(parents=True)
        with netns.state_lock():
            self._switch = netns.Switch(self.prefix, netns.free_subnet())
            self._write_record()  # before anything exists: leftovers are always explained
        self._start_reaper()
        self.switch.create()
        self._server = BrambleServer.start(
            self.dir / "server", "--listen", f"{self.switch.host_address}:0", *self.server_args
        )
        self._write_record()
        self.ca_hash = _ca_hash(self.server)
        subprocess.run(
            ["podman", "save", "-q", "-o", str(self.dir / "busybox.tar"), BUSYBOX],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        self.add_nodes(nodes)

    def add_nodes(self, count: int) -> list[ClusterNode]:
        """Join ``count`` more nodes (started in parallel); ready when all registered."""
        first = len(self.nodes) + 1
        new = [ClusterNode(self, i) for i in range(first, first + count)]
        self.nodes += new
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(count, 1)) as pool:
            for future in [pool.submit(n.start, self.dir / "busybox.tar") for n in new]:
                future.result()
        return new

    def add_node(self) -> ClusterNode:
        return self.add_nodes(1)[0]

    def lease(self, node: str) -> dict[str, Any]:
        """The node's Lease in kube-node-lease (the agent's heartbeat)."""
        path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node}"
        lease: dict[str, Any] = self.server.admin().ok("GET", path)
        return lease

    # --- teardown -------------------------------------------------------------------------

    def stop(self) -> None:
        """Everything down, in order: agents (gracefully), pods, Podman, sshd, server,
        mounts, namespaces, switch, files. Idempotent; the reaper redoes what fails."""
        try:
            for node in self.nodes:
                for service in (node.agent, node.sshd):
                    if service is not None:
                        service.stop()
            for node in self.nodes:
                remove_containers(node.netns, node.podman_env)
                if node.podman_service is not None:
                    node.podman_service.stop()
            if self._server is not None:
                self._server.stop()
            if self._switch is not None:
                teardown(self.prefix, self._switch.subnet, self.dir)
        finally:
            if self._reaper is not None:
                assert self._reaper.stdin is not None
                self._reaper.stdin.close()  # EOF: it checks the record, gone if all went well
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._reaper.wait(60)
                self._reaper = None

    def _write_record(self) -> None:
        record = {
            "prefix": self.prefix,
            "subnet": str(self.switch.subnet),
            "dir": str(self.dir),
            "owner_pid": os.getpid(),
            "owner_start": start_time(os.getpid()),
        }
        if self._server is not None:
            record["server_pid"] = self._server.proc.pid
            record["server_start"] = start_time(self._server.proc.pid)
        tmp = self.record.with_suffix(".tmp")
        tmp.write_text(json.dumps(record))
        tmp.replace(self.record)

    def _start_reaper(self) -> None:
        with (self.dir / "reaper.log").open("ab") as log:
            self._reaper = subprocess.Popen(
                [sys.executable, "-m", "tests.support.cleanup", str(self.record)],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=log,
                cwd=REPO,
                start_new_session=True,  # a Ctrl-C to the owner must not reach it
            )

    def ssh_keys(self) -> Path:
        """The cluster's SSH host key and client key pair (created on first use, once:
        nodes start in parallel threads and all ask for them)."""
        keys = self.dir / "ssh"
        with self._ssh_keys_lock:
            if not keys.is_dir():
                keys.mkdir(mode=0o700)
                for name in ("host", "client"):
                    subprocess.run(
                        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name,
                         "-f", str(keys / name)],
                        check=True, capture_output=True, timeout=30,
                    )  # fmt: skip
        return keys


def _ca_hash(server: BrambleServer) -> str:
    for line in server.log.text().splitlines():
        if "ca-cert-hash=" in line:
            return line.rsplit("ca-cert-hash=", 1)[1].split()[0]
    raise ClusterError("the server did not log its ca-cert-hash")
