"""Taking a multi-node test cluster down, and removing what a dead one left behind.

Every cluster (tests/support/multinode.py) writes a record, STATE_DIR/<prefix>.json, with
its prefix, subnet, work directory, and the pids (with start times) of its owner and its
``bramble server``, *before* it creates anything. From a record and the naming scheme
alone, ``teardown`` removes everything, whether or not its processes still run:

1. the programs in the node namespaces except Podman and conmon (agents, sshds), so that
   nothing re-creates pods while they are removed;
2. every pod and container of each node's storage, with the node's podman run *inside*
   the node's namespace (netavark tears networks down in the caller's namespace, so
   running it in the machine's own could touch the machine's firewall);
3. whatever else runs in the node namespaces, and conmons of our storage;
4. mounts below the work directory (Podman's overlay driver bind-mounts its home);
5. the node namespaces, the switch, the host veth and guard route, the directory, the
   record.

``cleanup_leftovers`` does this for every record whose owner is gone, and removes any
``bmn*`` namespace, host veth or guard route no record explains (a record is written
under the state lock before anything it names exists, so such a thing is a leftover).
``python -m tests.support.cleanup RECORD`` is the reaper: it waits for EOF on stdin (its
owner holds the other end of the pipe, so EOF means the owner closed it or died, even
by SIGKILL) and then tears down whatever the record still lists.

Processes are never found by a broad name: they are ours because they run in our
namespaces, are conmons whose command line names our storage, or are the server (and its
children) whose pid and start time the record holds.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support import netns
from tests.support.processes import alive, comm, descendants

PREFIX = "bmn"  # every cluster's names start with this plus 6 hex digits


def remove_containers(netns_name: str, env: dict[str, str]) -> None:
    """Remove every pod and container of one node's storage, from inside its namespace
    (netavark tears networks down in the caller's namespace: never run it in ours). A
    node whose namespace is already gone gets an empty stand-in for the removal."""
    if not (Path(env["CONTAINERS_STORAGE_CONF"]).exists()):
        return
    stand_in = not netns.netns_exists(netns_name)
    if stand_in:
        netns.add_netns(netns_name)
    try:
        for what in (["pod", "rm"], ["rm"]):
            subprocess.run(
                [*netns.enter(netns_name), "podman", *what, "-a", "-f", "-t", "0"],
                capture_output=True, env=env, check=False, timeout=120,
            )  # fmt: skip
    finally:
        if stand_in:
            netns.delete_netns(netns_name)


def teardown(prefix: str, subnet: ipaddress.IPv4Network | None, directory: Path) -> None:
    """Remove what a cluster ``prefix`` left, whether or not its processes still run."""
    nodes = sorted(netns.list_netns(f"{prefix}-n"))
    node_dirs = sorted((directory / "nodes").glob("node*")) if directory.is_dir() else []
    for name in nodes:  # agents first, so nothing re-creates pods during the removal
        netns.kill_processes(
            [p for p in netns.pids_in_netns(name) if comm(p) not in {"podman", "conmon"}]
        )
    for node_dir in node_dirs:
        index = node_dir.name.removeprefix("node")
        env = {
            **os.environ,
            "CONTAINERS_CONF": str(node_dir / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(node_dir / "storage.conf"),
        }
        remove_containers(f"{prefix}-n{index}", env)
    for name in nodes:
        netns.kill_processes(netns.pids_in_netns(name))
    if directory.is_dir():  # conmons that outlived their containers' removal
        netns.kill_processes(
            [p for p in netns.pids_mentioning(str(directory)) if comm(p) == "conmon"]
        )
        netns.unmount_below(directory)
    for name in nodes:
        netns.delete_netns(name)
    netns.destroy_switch(prefix, subnet)
    shutil.rmtree(directory, ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        (netns.STATE_DIR / f"{prefix}.json").unlink()


def teardown_record(record: dict[str, Any]) -> None:
    """Tear down a cluster from its record (its owner is gone)."""
    server = record.get("server_pid")
    if isinstance(server, int) and alive(server, record.get("server_start")):
        netns.kill_processes([server, *descendants(server)])
    subnet = ipaddress.IPv4Network(record["subnet"]) if record.get("subnet") else None
    teardown(record["prefix"], subnet, Path(record["dir"]))


def cleanup_leftovers() -> list[str]:
    """Tear down every cluster whose owner process is gone, and every ``bmn*`` namespace,
    host veth or guard route no record explains; the prefixes cleaned up."""
    cleaned = []
    with netns.state_lock():
        live = set()
        for path in sorted(netns.STATE_DIR.glob(f"{PREFIX}*.json")):
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError):
                path.unlink(missing_ok=True)
                continue
            if alive(record["owner_pid"], record.get("owner_start")):
                live.add(record["prefix"])
                continue
            teardown_record(record)
            cleaned.append(record["prefix"])
        orphans = {n.split("-", 1)[0] for n in netns.list_netns(PREFIX)}
        links = netns.run("ip", "-o", "link", "show").split("\n")
        for line in links:
            words = line.split()
            if len(words) > 1 and words[1].startswith(PREFIX):
                orphans.add(words[1].split("@")[0].rstrip(":").removesuffix("h"))
        for prefix in sorted(orphans - live - set(cleaned)):
            netns.destroy_switch(prefix, None)
            for name in netns.list_netns(f"{prefix}-"):
                netns.delete_netns(name)
            cleaned.append(prefix)
        claimed = netns.claimed_subnets()
        for line in netns.run("ip", "-4", "route", "show", "table", "all").splitlines():
            words = line.split()
            if words[:1] == ["blackhole"] and f"metric {netns.GUARD_METRIC}" in line:
                subnet = ipaddress.IPv4Network(words[1], strict=False)
                if subnet.subnet_of(netns.POOL) and subnet not in claimed:
                    netns.run("ip", "route", "delete", *words[:2], "metric",
                              str(netns.GUARD_METRIC), check=False)  # fmt: skip
    return cleaned


def reap(record_path: Path) -> None:
    """Wait for EOF on stdin (the owner closed it or died), then tear down whatever the
    record still lists."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.stdin.buffer.read()
    with netns.state_lock():
        try:
            record = json.loads(record_path.read_text())
        except FileNotFoundError:
            return  # the owner took everything down itself
        sys.stderr.write(f"owner gone: tearing down {record['prefix']}\n")
        teardown_record(record)


if __name__ == "__main__":
    reap(Path(sys.argv[1]))
