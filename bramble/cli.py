"""The ``bramble`` command line. Errors reach the user as one line: what is wrong and
what to do (exit status 1), never a traceback."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import click

from api import runner
from bramble import __version__, logs


def default_data_dir() -> Path:
    """/var/lib/bramble for root (a system service), else the user's data directory."""
    if os.geteuid() == 0:
        return Path("/var/lib/bramble")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "bramble"


def fail(message: str) -> None:
    click.echo(f"bramble: error: {message}", err=True)
    sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bramble")
@click.option(
    "--log-level",
    type=click.Choice(logs.LEVELS),
    default="info",
    show_default=True,
    help="How much to log (to stderr).",
)
def main(log_level: str) -> None:
    """bramble: a small Kubernetes for home labs."""
    logs.setup(log_level)


@main.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=default_data_dir,
    show_default="/var/lib/bramble as root, else ~/.local/share/bramble",
    help="Where the control plane keeps its state (the SQLite store, certificates).",
)
@click.option(
    "--store",
    "store_url",
    metavar="URL",
    help="The store: sqlite:///path/state.db (default: DATA_DIR/state.db) or "
    "etcd://host:2379[,host:2379] (etcds:// for TLS; see docs/operations.md).",
)
@click.option(
    "--listen",
    default="0.0.0.0:6443",
    show_default=True,
    metavar="ADDR:PORT",
    help="Where the apiserver listens (HTTPS).",
)
@click.option(
    "--max-requests-inflight",
    "max_inflight",
    type=click.IntRange(min=1),
    default=400,
    show_default=True,
    help="Requests served at once (watches excluded); more get 429 and Retry-After.",
)
@click.option(
    "--compact-interval",
    type=click.FloatRange(min=1.0),
    default=300.0,
    show_default=True,
    help="Seconds between store compactions (history older than this is forgotten).",
)
@click.option(
    "--watch-cache-size",
    type=click.IntRange(min=1),
    default=4096,
    show_default=True,
    help="Changes the watch cache remembers per resource; a watch from an older "
    "resourceVersion gets 410 Gone and the client lists again.",
)
@click.option(
    "--no-agent",
    is_flag=True,
    help="Do not run a node agent for this machine (a control plane only).",
)
@click.option(
    "--agent-runtime",
    type=click.Choice(["podman", "fake"]),
    default="podman",
    show_default=True,
    help="The embedded agent's container runtime (fake: hollow node, nothing runs).",
)
@click.option(
    "--agent-podman-url",
    default="unix:///run/podman/podman.sock",
    show_default=True,
    help="The embedded agent's Podman API socket; when the default is absent the agent "
    "runs its own service.",
)
@click.option(
    "--agent-endpoint-port",
    type=click.IntRange(min=0, max=65535),
    default=10250,
    show_default=True,
    help="The embedded agent's endpoint (logs, exec, metrics for the apiserver); 0 = any.",
)
@click.option("--node-name", help="This machine's node name (default: its hostname).")
@click.option(
    "--no-scheduler",
    is_flag=True,
    help="Do not run the scheduler here (another server's, or none: pods stay Pending).",
)
@click.option(
    "--no-controllers",
    is_flag=True,
    help="Do not run the controllers here (another server's, or none: Deployments, "
    "DaemonSets and Jobs make no pods, dead nodes keep theirs).",
)
@click.option(
    "--controllers",
    "controller_names",
    metavar="NAMES",
    help="Run only these controllers (comma-separated; default: all of them).",
)
@click.option(
    "--scheduler-in-process",
    is_flag=True,
    help="Run the scheduler inside the server's process (about 40 MB less memory, but "
    "slower under load) instead of a process of its own.",
)
@click.option(
    "--scheduler-config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A KubeSchedulerConfiguration file (profiles, plugins, weights, sampling).",
)
@click.option(
    "--node-monitor-grace-period",
    type=float,
    default=20.0,
    show_default=True,
    help="Seconds without a lease renewal before a node is NotReady and tainted "
    "unreachable (more than the agents' 10 s renewal interval).",
)
@click.option(
    "--node-monitor-period",
    type=float,
    default=5.0,
    show_default=True,
    help="Seconds between looks at every node's health, events or not.",
)
@click.option(
    "--node-startup-grace-period",
    type=float,
    default=60.0,
    show_default=True,
    help="Seconds a node that never posted a Ready status has before it is NotReady.",
)
@click.option(
    "--unhealthy-zone-threshold",
    type=float,
    default=0.55,
    show_default=True,
    help="Share (0-1) of a zone's nodes (more than 2) that, unhealthy at once, stops "
    "evictions in the zone.",
)
@click.option(
    "--node-eviction-rate",
    type=float,
    default=0.1,
    show_default=True,
    help="Newly unhealthy nodes per second, per zone, whose pods start their eviction "
    "clock (0.1: one node every 10 s; the first at once).",
)
@click.option(
    "--terminated-pod-gc-threshold",
    type=int,
    default=1000,
    show_default=True,
    help="Finished pods kept; the oldest beyond it are deleted (0: keep them all).",
)
@click.option(
    "--default-not-ready-toleration-seconds",
    type=int,
    default=30,
    show_default=True,
    help="Seconds a new pod tolerates a not-ready node before it is evicted.",
)
@click.option(
    "--default-unreachable-toleration-seconds",
    type=int,
    default=30,
    show_default=True,
    help="Seconds a new pod tolerates an unreachable node before it is evicted.",
)
def server(
    data_dir: Path,
    store_url: str | None,
    listen: str,
    max_inflight: int,
    compact_interval: float,
    watch_cache_size: int,
    no_agent: bool,
    agent_runtime: str,
    agent_podman_url: str,
    agent_endpoint_port: int,
    node_name: str | None,
    no_scheduler: bool,
    no_controllers: bool,
    controller_names: str | None,
    scheduler_in_process: bool,
    scheduler_config: Path | None,
    node_monitor_grace_period: float,
    node_monitor_period: float,
    node_startup_grace_period: float,
    unhealthy_zone_threshold: float,
    node_eviction_rate: float,
    terminated_pod_gc_threshold: int,
    default_not_ready_toleration_seconds: int,
    default_unreachable_toleration_seconds: int,
) -> None:
    """Run the control plane on this machine (apiserver on HTTPS; DATA_DIR/admin.kubeconfig
    is written for kubectl)."""
    from bramble.server import ServerError, ServerOptions, parse_listen, run
    from controlplane.controllers.settings import (
        ControllerSettings,
        NodeLifecycleSettings,
        PodGCSettings,
    )
    from controlplane.store import StoreError

    settings = ControllerSettings(
        node_lifecycle=NodeLifecycleSettings(
            node_monitor_grace_period=node_monitor_grace_period,
            node_monitor_period=node_monitor_period,
            node_startup_grace_period=node_startup_grace_period,
            unhealthy_zone_threshold=unhealthy_zone_threshold,
            node_eviction_rate=node_eviction_rate,
        ),
        pod_gc=PodGCSettings(terminated_pod_gc_threshold=terminated_pod_gc_threshold),
    )

    try:
        host, port = parse_listen(listen)
        options = ServerOptions(
            data_dir=data_dir,
            store_url=store_url,
            host=host,
            port=port,
            compact_interval=compact_interval,
            max_inflight=max_inflight,
            watch_cache_size=watch_cache_size,
            agent=not no_agent,
            agent_runtime=agent_runtime,
            agent_podman_url=agent_podman_url,
            agent_endpoint_port=agent_endpoint_port,
            node_name=node_name,
            scheduler=not no_scheduler,
            controllers=not no_controllers,
            controller_names=controller_names,
            scheduler_config=scheduler_config,
            scheduler_in_process=scheduler_in_process,
            controller_settings=settings,
            default_not_ready_toleration_seconds=default_not_ready_toleration_seconds,
            default_unreachable_toleration_seconds=default_unreachable_toleration_seconds,
        )
        runner.run(run(options))
    except (StoreError, ServerError) as e:
        fail(str(e))


@main.command()
@click.option("--server", "server_url", metavar="URL", help="The apiserver, https://HOST:6443.")
@click.option(
    "--token",
    envvar="BRAMBLE_TOKEN",
    help="A node token (`bramble token create --role node --node NAME`). Visible to `ps`: "
    "prefer --token-file or the BRAMBLE_TOKEN environment variable.",
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A file holding the node token.",
)
@click.option(
    "--ca-cert-hash",
    metavar="sha256:HEX",
    help="The cluster CA's hash (bramble server prints it); the agent trusts only that CA.",
)
@click.option("--ca-file", type=click.Path(dir_okay=False, path_type=Path), help="The cluster CA.")
@click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Credentials in a kubeconfig instead of --server/--token.",
)
@click.option("--name", "node_name", help="The node's name (default: the hostname).")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=lambda: default_data_dir() / "agent",
    show_default="DATA_DIR/agent",
    help="Where the agent keeps its checkpoint, certificates and pod volumes.",
)
@click.option(
    "--runtime", type=click.Choice(["podman", "fake"]), default="podman", show_default=True
)
@click.option(
    "--podman-url",
    default="unix:///run/podman/podman.sock",
    show_default=True,
    help="Podman's API socket; when the default is absent the agent runs its own service.",
)
@click.option("--address", help="The node's IP address (default: the default route's).")
@click.option(
    "--endpoint-port",
    type=click.IntRange(min=0, max=65535),
    default=10250,
    show_default=True,
    help="The agent's HTTPS endpoint for the apiserver (logs, exec, metrics).",
)
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="Extra node labels.")
@click.option(
    "--lease-interval",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds between renewals of the node's Lease.",
)
@click.option(
    "--status-interval",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds between readings of the hardware for the Node's status.",
)
@click.option(
    "--housekeeping-interval",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="Seconds between sweeps for containers and volumes of pods that are gone.",
)
def agent(
    server_url: str | None,
    token: str | None,
    token_file: Path | None,
    ca_cert_hash: str | None,
    ca_file: Path | None,
    kubeconfig: Path | None,
    node_name: str | None,
    data_dir: Path,
    runtime: str,
    podman_url: str,
    address: str | None,
    endpoint_port: int,
    labels: tuple[str, ...],
    lease_interval: float,
    status_interval: float,
    housekeeping_interval: float,
) -> None:
    """Run the node agent: make this machine a node of the cluster."""
    from agent.main import AgentError, AgentOptions
    from bramble.agent import run_agent

    if token_file is not None:
        try:
            token = token_file.read_text().strip()
        except OSError as e:
            fail(f"cannot read --token-file {token_file}: {e.strerror}")
    extra: dict[str, str] = {}
    for label in labels:
        key, sep, value = label.partition("=")
        if not sep or not key:
            fail(f"--label {label!r}: write KEY=VALUE")
        extra[key] = value
    options = AgentOptions(
        data_dir=data_dir,
        kubeconfig=kubeconfig,
        server=server_url,
        token=token,
        ca_file=ca_file,
        ca_cert_hash=ca_cert_hash,
        runtime=runtime,
        podman_url=podman_url,
        address=address,
        endpoint_port=endpoint_port,
        extra_labels=extra,
        lease_interval=lease_interval,
        status_interval=status_interval,
        housekeeping_interval=housekeeping_interval,
    )
    if node_name:
        options.name = node_name
    try:
        runner.run(run_agent(options))
    except AgentError as e:
        fail(str(e))


def _admin_kubeconfig(path: Path | None) -> Path:
    return path if path is not None else default_data_dir() / "admin.kubeconfig"


_KUBECONFIG_OPTION = click.option(
    "--kubeconfig",
    "kubeconfig_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="An admin kubeconfig (default: DATA_DIR/admin.kubeconfig of this machine's server).",
)


@main.group()
def token() -> None:
    """Bearer tokens: create, list, revoke."""


@token.command("create")
@click.option(
    "--role",
    type=click.Choice(["viewer", "admin", "node"]),
    required=True,
    help="viewer: read everything but secrets; admin: everything; node: an agent's rights.",
)
@click.option("--user", help="The user name the token acts as (default bramble:<role>).")
@click.option("--node", "node_name", help="With --role node: the node's name.")
@click.option("--ttl", default="24h", show_default=True, help="Lifetime: 30m, 24h, 7d; 0 = never.")
@click.option("--description", default="", help="A note shown by `bramble token list`.")
@click.option(
    "--print-kubeconfig",
    is_flag=True,
    help="Print a kubeconfig using the token instead of the bare token.",
)
@_KUBECONFIG_OPTION
def token_create(
    role: str,
    user: str | None,
    node_name: str | None,
    ttl: str,
    description: str,
    print_kubeconfig: bool,
    kubeconfig_path: Path | None,
) -> None:
    """Issue a token (shown once; only a hash is stored). A node's token is printed as a
    join token (K10<CA hash>::<token>) that also names the cluster's CA."""
    from api import errors
    from api.client import KubeconfigError
    from bramble import tokens

    if role == "node":
        if not node_name:
            fail("--role node needs --node NAME (the node the token is for)")
        user = f"system:node:{node_name}"
    elif node_name:
        fail("--node is only for --role node")
    admin = _admin_kubeconfig(kubeconfig_path)
    try:
        lifetime = tokens.parse_ttl(ttl)
        full, record = asyncio.run(
            tokens.create(
                admin,
                role=tokens.role(role),
                user=user,
                ttl=lifetime,
                description=description,
            )
        )
        if print_kubeconfig:
            click.echo(tokens.token_kubeconfig(admin, full, record.user), nl=False)
        elif role == "node":
            # a join token: `bramble agent --server URL --token TOKEN` needs nothing else
            click.echo(tokens.join_token(admin, full))
        else:
            click.echo(full)
    except tokens.TokenError as e:
        fail(str(e))
    except KubeconfigError as e:
        fail(f"{e}; run this on the server host, or pass --kubeconfig")
    except errors.ApiError as e:
        fail(f"the apiserver refused: {e.message}")


@token.command("list")
@_KUBECONFIG_OPTION
def token_list(kubeconfig_path: Path | None) -> None:
    """Show the tokens (never their secrets)."""
    from api import errors
    from api.client import KubeconfigError
    from bramble import tokens

    try:
        records = asyncio.run(tokens.list_records(_admin_kubeconfig(kubeconfig_path)))
    except KubeconfigError as e:
        fail(f"{e}; run this on the server host, or pass --kubeconfig")
    except errors.ApiError as e:
        fail(f"the apiserver refused: {e.message}")
    click.echo(tokens.table(records))


@token.command("revoke")
@click.argument("token_id")
@_KUBECONFIG_OPTION
def token_revoke(token_id: str, kubeconfig_path: Path | None) -> None:
    """End a token at once (TOKEN_ID is the part before the dot)."""
    from api import errors
    from api.client import KubeconfigError
    from bramble import tokens

    try:
        asyncio.run(tokens.revoke(_admin_kubeconfig(kubeconfig_path), token_id.split(".")[0]))
    except KubeconfigError as e:
        fail(f"{e}; run this on the server host, or pass --kubeconfig")
    except errors.NotFound:
        fail(f"no token {token_id!r}; `bramble token list` shows them")
    except errors.ApiError as e:
        fail(f"the apiserver refused: {e.message}")
    click.echo(f"token {token_id.split('.')[0]} revoked")
