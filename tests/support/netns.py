"""Network namespaces on one switch, for clusters of several nodes on one machine.

A ``Switch`` is a network namespace of its own holding a Linux bridge ``br0``; every node
is another namespace whose ``eth0`` is one end of a veth pair whose other end is a port of
that bridge. The bridge lives in a namespace, not in the machine's own, so the only thing
the root namespace gets is one veth (``<id>h``) into the bridge, carrying the switch's
``.1`` address: the test process, kubectl and the apiserver reach the nodes through it,
and the nodes reach the apiserver at that address (environment.md section 3, option ii).

Why these choices:

* Addresses come from 198.18.0.0/15, the block RFC 2544 reserves for benchmarking
  networks, one free /24 per switch: no real network uses it, so no test can talk to a
  machine outside this one by accident. A ``blackhole`` route for the /24 (metric 4242,
  under the veth's own route) guarantees it: when the veth is gone, packets to the nodes'
  addresses are dropped instead of following the default route out of the machine.
* The root-namespace veth has IPv6 switched off before it comes up, so it sends no router
  solicitations or MLD reports (multicast) from the machine's namespace. Nothing else of
  ours lives in the root namespace; names inside our namespaces cannot collide with other
  test runs, so only netns names and the host veth's name carry the switch's unique id.
* Nodes have no default route: nothing in a node can reach beyond the switch.
* Programs run in a node with ``nsenter --net=``, never ``ip netns exec``, which remounts
  /sys and hides the cgroup hierarchy from Podman (environment.md section 1).

Several test runs share the machine, so ``reserve_subnet`` takes a file lock, skips every
/24 another switch (alive or leftover) has claimed in STATE_DIR and every one overlapping
a root-namespace route, and records its claim before releasing the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import random
import signal
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

NETNS_DIR = Path("/run/netns")
STATE_DIR = Path("/run/bramble-multinode")  # tmpfs: claims vanish with the namespaces
POOL = ipaddress.IPv4Network("198.18.0.0/15")  # RFC 2544: never a real network
GUARD_METRIC = 4242
HOST_OFFSET = 1  # the switch's address in the root namespace (and the apiserver's)
NODE_OFFSET = 10  # node i (1-based) gets .10+i
COMMAND_TIMEOUT = 60.0


class NetnsError(RuntimeError):
    """A command that sets up or tears down a namespace failed; the message has its output."""


def run(*command: str, check: bool = True, timeout: float = COMMAND_TIMEOUT) -> str:
    """Run ``command`` (no shell); its stdout. NetnsError with stderr when it fails."""
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=timeout)
    if check and result.returncode != 0:
        raise NetnsError(f"{' '.join(command)} exited {result.returncode}: {result.stderr.strip()}")
    return result.stdout


def netns_path(name: str) -> Path:
    return NETNS_DIR / name


def enter(netns: str) -> list[str]:
    """The prefix that runs a program in ``netns`` (and only there: mounts, cgroups,
    PIDs and the UTS name stay the machine's)."""
    return ["nsenter", f"--net={netns_path(netns)}"]


def netns_exists(name: str) -> bool:
    return netns_path(name).exists()


def list_netns(prefix: str) -> list[str]:
    """Names of the namespaces in /run/netns that start with ``prefix``."""
    try:
        return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(prefix))
    except FileNotFoundError:
        return []


def add_netns(name: str) -> None:
    run("ip", "netns", "add", name)
    run("ip", "-n", name, "link", "set", "lo", "up")


def delete_netns(name: str) -> None:
    """Kill what still runs in ``name`` (only our programs can be there), then delete it."""
    if not netns_exists(name):
        return
    kill_processes(pids_in_netns(name))
    run("ip", "netns", "delete", name, check=False)


def _netns_inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except OSError:
        return None


def pids_in_netns(name: str) -> list[int]:
    """Processes whose network namespace is ``name``."""
    inode = _netns_inode(netns_path(name))
    if inode is None:
        return []
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if os.stat(entry / "ns" / "net").st_ino == inode:
                found.append(int(entry.name))
    return found


def pids_mentioning(text: str) -> list[int]:
    """Processes whose command line contains ``text`` (a directory only we use)."""
    needle = text.encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if needle in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return found


def kill_processes(pids: Sequence[int]) -> None:
    """SIGKILL each pid (resuming stopped ones is unnecessary: SIGKILL ends them too)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def unmount_below(directory: Path) -> None:
    """Unmount every mount point under ``directory``, deepest first (Podman's overlay
    driver bind-mounts its own home and mounts each container's root there)."""
    prefix = str(directory.resolve()).rstrip("/") + "/"
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point.startswith(prefix):
            points.append(point)
    for point in sorted(points, key=len, reverse=True):
        run("umount", point, check=False)
        if _mounted(point):  # busy: detach it now, the kernel frees it when unused
            run("umount", "-l", point, check=False)


def _mounted(point: str) -> bool:
    return any(
        line.split()[4] == point for line in Path("/proc/self/mountinfo").read_text().splitlines()
    )


# --- subnets -----------------------------------------------------------------------------


@contextlib.contextmanager
def state_lock() -> Iterator[None]:
    """The machine-wide lock over STATE_DIR (subnet claims and cluster records)."""
    STATE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    with (STATE_DIR / ".lock").open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def claimed_subnets() -> set[ipaddress.IPv4Network]:
    """The subnets recorded in STATE_DIR's cluster records (``"subnet"`` keys)."""
    claimed = set()
    for record in STATE_DIR.glob("*.json"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            claimed.add(ipaddress.IPv4Network(json.loads(record.read_text())["subnet"]))
    return claimed


def routed_subnets() -> list[ipaddress.IPv4Network]:
    """Every IPv4 destination the root namespace routes somewhere, in any table."""
    routes = []
    for line in run("ip", "-4", "route", "show", "table", "all").splitlines():
        words = line.split()
        if not words:
            continue
        dest = (
            words[1] if words[0] in {"blackhole", "unreachable", "local", "broadcast"} else words[0]
        )
        if dest == "default":
            continue
        with contextlib.suppress(ValueError):
            routes.append(ipaddress.IPv4Network(dest, strict=False))
    return routes


def free_subnet() -> ipaddress.IPv4Network:
    """A /24 of POOL that nobody claimed and the root namespace does not route; call it
    under ``state_lock`` and record the claim before releasing the lock."""
    taken = claimed_subnets()
    routed = routed_subnets()
    candidates = list(POOL.subnets(new_prefix=24))
    random.shuffle(candidates)
    for subnet in candidates:
        if subnet not in taken and not any(subnet.overlaps(r) for r in routed):
            return subnet
    raise NetnsError(f"no free /24 left in {POOL}: run `scripts/cluster down`")


# --- the switch ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Switch:
    """A bridge in namespace ``<prefix>-sw`` with a host veth ``<prefix>h`` on it."""

    prefix: str  # unique on this machine, e.g. "bmn3fa2c1"; at most 12 characters
    subnet: ipaddress.IPv4Network

    @property
    def netns(self) -> str:
        return f"{self.prefix}-sw"

    @property
    def host_link(self) -> str:
        return f"{self.prefix}h"  # in the root namespace: at most 15 characters

    @property
    def host_address(self) -> str:
        return str(self.subnet[HOST_OFFSET])

    def node_address(self, index: int) -> str:
        return str(self.subnet[NODE_OFFSET + index])

    def node_netns(self, index: int) -> str:
        return f"{self.prefix}-n{index}"

    def port(self, index: int) -> str:
        """The bridge port (in the switch's namespace) that node ``index`` is plugged into."""
        return f"n{index}"

    def create(self) -> None:
        """The switch, the host veth with its address, and the blackhole guard route."""
        assert len(self.host_link) <= 15, self.host_link
        add_netns(self.netns)
        run("ip", "-n", self.netns, "link", "add", "br0", "type", "bridge")
        run("ip", "-n", self.netns, "link", "set", "br0", "up")
        run("ip", "route", "add", "blackhole", str(self.subnet), "metric", str(GUARD_METRIC))
        run(
            "ip", "link", "add", self.host_link, "type", "veth",
            "peer", "name", "host", "netns", self.netns,
        )  # fmt: skip
        Path(f"/proc/sys/net/ipv6/conf/{self.host_link}/disable_ipv6").write_text("1")
        run(
            "ip",
            "addr",
            "add",
            f"{self.host_address}/{self.subnet.prefixlen}",
            "dev",
            self.host_link,
        )
        run("ip", "link", "set", self.host_link, "up")
        run("ip", "-n", self.netns, "link", "set", "host", "master", "br0", "up")

    def plug(self, index: int) -> tuple[str, str]:
        """A new node namespace plugged into the switch; (its netns name, its address)."""
        netns, address = self.node_netns(index), self.node_address(index)
        add_netns(netns)
        run(
            "ip", "link", "add", "eth0", "netns", netns, "type", "veth",
            "peer", "name", self.port(index), "netns", self.netns,
        )  # fmt: skip
        run("ip", "-n", netns, "addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", "eth0")
        run("ip", "-n", netns, "link", "set", "eth0", "up")
        run("ip", "-n", self.netns, "link", "set", self.port(index), "master", "br0", "up")
        return netns, address

    def set_port(self, index: int, *, up: bool) -> None:
        """Pull (or put back) node ``index``'s cable: its switch port goes down (up)."""
        run("ip", "-n", self.netns, "link", "set", self.port(index), "up" if up else "down")

    def destroy(self) -> None:
        """Remove the host veth, the guard route and the switch namespace. The node
        namespaces are the caller's (their programs must stop first)."""
        destroy_switch(self.prefix, self.subnet)


def destroy_switch(prefix: str, subnet: ipaddress.IPv4Network | None) -> None:
    """What ``Switch.create`` made, from names alone (also for a leftover of a dead run)."""
    run("ip", "link", "delete", f"{prefix}h", check=False)
    if subnet is not None:
        run(
            "ip", "route", "delete", "blackhole", str(subnet), "metric", str(GUARD_METRIC),
            check=False,
        )  # fmt: skip
    delete_netns(f"{prefix}-sw")
