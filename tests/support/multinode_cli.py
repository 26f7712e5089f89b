"""``scripts/cluster``: the multi-node test cluster for a person at a terminal.

``up`` brings up ``Cluster`` (tests/support/multinode.py) and prints how to reach it:
first the ``export KUBECONFIG=...`` line to paste into another shell, then the apiserver's
URL and each node's address, namespace, log directory and how to run its podman (and ssh
to it, with ``--sshd``). It stays up until Ctrl-C or SIGTERM, then takes everything down.
``down`` removes what clusters whose owner died left behind (cleanup.cleanup_leftovers);
clusters whose owner is alive are listed, not touched.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from tests.support import netns
from tests.support.cleanup import PREFIX, cleanup_leftovers
from tests.support.multinode import Cluster

DEFAULT_DIR = Path("/tmp/bramble-cluster")


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def up(*, nodes: int, workdir: Path, sshd: bool) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    stop = False

    def interrupted(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    # Until the cluster is up, Ctrl-C raises KeyboardInterrupt: Cluster.running's
    # ``finally`` takes down what was started so far.
    with Cluster.running(workdir, nodes=nodes, sshd=sshd) as cluster:
        signal.signal(signal.SIGINT, interrupted)
        signal.signal(signal.SIGTERM, interrupted)
        say(f"export KUBECONFIG={cluster.kubeconfig}")
        say(f"# apiserver {cluster.server.url}  (cluster {cluster.prefix} in {cluster.dir})")
        for node in cluster.nodes:
            say(f"# {node.name}  {node.address}  netns={node.netns}  logs in {node.dir}")
            say(
                f"#   nsenter --net=/run/netns/{node.netns} env"
                f" CONTAINERS_CONF={node.dir}/containers.conf"
                f" CONTAINERS_STORAGE_CONF={node.dir}/storage.conf podman ps"
            )
            if cluster.sshd:
                say(f"#   ssh -i {cluster.dir}/ssh/client root@{node.address} (host {node.name})")
        say("# Ctrl-C takes it all down")
        while not stop:
            signal.pause()
        say("# stopping")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/cluster", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    up_parser = commands.add_parser("up", help="a cluster that runs until Ctrl-C")
    up_parser.add_argument("--nodes", type=int, default=3)
    up_parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="work directory")
    up_parser.add_argument("--sshd", action="store_true", help="an sshd on every node")
    commands.add_parser("down", help="remove what dead clusters left behind")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("network namespaces need root")
    if args.command == "up":
        up(nodes=args.nodes, workdir=args.dir, sshd=args.sshd)
        return 0
    cleaned = cleanup_leftovers()
    say("removed: " + (", ".join(cleaned) if cleaned else "nothing"))
    for record in sorted(netns.STATE_DIR.glob(f"{PREFIX}*.json")):
        say(f"still running (its owner is alive): {record.stem}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
