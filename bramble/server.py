"""``bramble server``: the control-plane process.

Opens the store, creates (first start) or loads the cluster PKI, starts the apiserver on
HTTPS, writes ``DATA_DIR/admin.kubeconfig`` (0600) that kubectl can use as is, keeps the
store compacted, and on SIGINT or SIGTERM stops accepting requests, closes the store
cleanly (in-flight writes finish, the WAL is checkpointed) and exits.

Once the apiserver is ready it starts, unless switched off, the scheduler and the
controller manager (clients of the API, each with leader election, each a child process
of its own) and the embedded agent. The components reach the apiserver through its local
socket (controlplane/apiserver/auth/local.py: a Unix socket only this user can open, no
TLS to pay for on either end), each with a token made at every start, as user
``system:kube-scheduler`` or ``system:kube-controller-manager`` in group
``system:masters``: bramble's authorizer has no narrower role they fit (they read and
write most kinds), and a user of their own, unlike the apiserver's identity, makes their
requests recognisable in the audit log. The embedded agent uses HTTPS and a node
certificate, as every other node's agent does.

The node-lifecycle and pod-GC flags (kube-controller-manager's names) go to the
controller-manager process as the same flags (controlplane/controllers/settings.py), the
default toleration seconds to the apiserver's pod admission; values that cannot work
stop the server before anything starts (``check_node_lifecycle``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from controlplane.controllers.settings import ControllerSettings, problem, to_args
from controlplane.store import Store, default_url, open_store
from controlplane.store.compactor import Compactor

if TYPE_CHECKING:
    from controlplane.apiserver.auth.pki import Pki

logger = logging.getLogger(__name__)

DEFAULT_PORT = 6443
# the control-plane components the server runs, by name (their directory in the data
# directory, their module), and the user each is
_COMPONENTS = {
    "scheduler": "system:kube-scheduler",
    "controllers": "system:kube-controller-manager",
}


@dataclass(frozen=True, slots=True)
class ServerOptions:
    data_dir: Path
    store_url: str | None = None
    host: str = "0.0.0.0"
    port: int = DEFAULT_PORT
    compact_interval: float = 300.0
    max_inflight: int = 400
    watch_cache_size: int = 4096  # changes kept per resource for watches to resume from
    agent: bool = True  # run a node agent for this machine too (as k3s does)
    agent_runtime: str = "podman"
    agent_podman_url: str = "unix:///run/podman/podman.sock"  # agent.main.DEFAULT_PODMAN_URL
    agent_endpoint_port: int = 10250
    node_name: str | None = None
    scheduler: bool = True  # run the scheduler (leader-elected)
    scheduler_config: Path | None = None  # a KubeSchedulerConfiguration file
    scheduler_in_process: bool = False  # in this process, not a child process of its own
    controllers: bool = True  # run the controller manager (leader-elected)
    controller_names: str | None = None  # comma-separated; None: all of them
    # Node lifecycle and pod GC (kube-controller-manager's flags), for the controllers.
    controller_settings: ControllerSettings = field(default_factory=ControllerSettings)
    # The apiserver's DefaultTolerationSeconds admission (admission.py's 30 s).
    default_not_ready_toleration_seconds: int = 30
    default_unreachable_toleration_seconds: int = 30


class ServerError(Exception):
    """A start-up failure a person must fix (the message says how)."""


def parse_listen(value: str) -> tuple[str, int]:
    """``ADDR:PORT``, ``:PORT`` or ``[v6]:PORT``."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ServerError(f"--listen {value!r}: write ADDR:PORT, e.g. 0.0.0.0:6443")
    return (host.strip("[]") or "0.0.0.0"), int(port)


def server_url(host: str, port: int) -> str:
    """How local clients reach the server: loopback when it listens everywhere."""
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


async def run(options: ServerOptions, *, ready: asyncio.Event | None = None) -> None:
    """Run until SIGINT/SIGTERM. Raises StoreError or ServerError when it cannot start."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Install the handlers before anything slow, so an early signal is never lost.
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await _serve(options, stop, ready)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    logger.info("server stopped")


async def _serve(options: ServerOptions, stop: asyncio.Event, ready: asyncio.Event | None) -> None:
    from controlplane.apiserver.auth import identity, local
    from controlplane.apiserver.auth import pki as pkis
    from controlplane.apiserver.server import ApiServer
    from controlplane.apiserver.strategies.pods.admission import DefaultTolerations

    data_dir = options.data_dir
    scheduler_config = await _scheduler_config(options)
    _check_controllers(options)
    check_node_lifecycle(options)
    try:
        await asyncio.to_thread(data_dir.mkdir, mode=0o700, parents=True, exist_ok=True)
    except OSError as e:
        raise ServerError(f"cannot prepare {data_dir}: {e.strerror}") from e
    try:
        socket = await asyncio.to_thread(local.socket_path, data_dir)
    except (OSError, local.LocalSocketError) as e:
        raise ServerError(f"cannot prepare the local socket: {e}") from e
    store = await open_store(options.store_url or default_url(data_dir))
    try:
        pki = await _cluster_pki(data_dir, store)
    except BaseException:
        await store.close()
        raise
    local_users, local_tokens = local.LocalUsers.make(
        {
            name: identity.authenticated(user, [identity.GROUP_MASTERS])
            for name, user in _COMPONENTS.items()
        }
    )
    apiserver = ApiServer(
        store,
        host=options.host,
        port=options.port,
        ssl_context=pkis.server_ssl_context(pki),
        audit_path=data_dir / "audit.log",
        max_inflight=options.max_inflight,
        watch_cache_size=options.watch_cache_size,
        agent_ssl=await asyncio.to_thread(pkis.client_ssl_context, pki),
        pki=pki,
        default_tolerations=DefaultTolerations(
            not_ready_seconds=options.default_not_ready_toleration_seconds,
            unreachable_seconds=options.default_unreachable_toleration_seconds,
        ),
        local_socket=socket,
        local_users=local_users,
    )
    embedded: asyncio.Task[None] | None = None
    components: list[asyncio.Task[None]] = []
    compactor = asyncio.create_task(
        Compactor(store, interval=options.compact_interval).run(), name="store-compactor"
    )
    try:
        try:
            await apiserver.start()
        except OSError as e:
            raise ServerError(
                f"cannot listen on {options.host}:{options.port}: {e.strerror}; "
                "is another server running there? choose another with --listen"
            ) from e
        for name in _COMPONENTS:  # their kubeconfigs: the local socket, a token each
            await asyncio.to_thread(
                local.write_local_kubeconfig, data_dir / name / "kubeconfig", socket,
                user=_COMPONENTS[name], token=local_tokens[name],
            )  # fmt: skip
        kubeconfig = data_dir / "admin.kubeconfig"
        await asyncio.to_thread(
            _write_admin_kubeconfig, pki, kubeconfig, server_url(options.host, apiserver.port)
        )
        logger.info(
            "server ready store=%r url=%s kubeconfig=%s ca-cert-hash=%s",
            store.description,
            server_url(options.host, apiserver.port),
            kubeconfig,
            pkis.ca_fingerprint(pki),
        )
        if options.scheduler and options.scheduler_in_process:
            components.append(
                asyncio.create_task(
                    _embedded_scheduler(options, scheduler_config), name="scheduler"
                )
            )
        elif options.scheduler:
            args = (
                []
                if options.scheduler_config is None
                else ["--config", str(options.scheduler_config)]
            )
            scheduler = _component_process(options, name="scheduler", args=args)
            components.append(asyncio.create_task(scheduler, name="scheduler"))
        if options.controllers:
            manager = _component_process(options, name="controllers", args=controller_args(options))
            components.append(asyncio.create_task(manager, name="controllers"))
        if options.agent:
            embedded = asyncio.create_task(
                _embedded_agent(options, pki, server_url(options.host, apiserver.port)),
                name="embedded-agent",
            )
        if ready is not None:
            ready.set()
        await stop.wait()
        logger.info("server stopping")
    finally:
        for task in (embedded, *components):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        compactor.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await compactor
        await apiserver.stop()
        await store.close()


async def _cluster_pki(data_dir: Path, store: Store) -> Pki:
    """This server's PKI, with the cluster CA shared through the store
    (controlplane/apiserver/auth/bootstrap.py): a second server on the same store
    adopts the first one's CA."""
    from controlplane.apiserver.auth import bootstrap
    from controlplane.apiserver.auth import pki as pkis
    from controlplane.apiserver.netaddr import local_addresses

    pki_dir = data_dir / "pki"
    try:
        stored = await bootstrap.stored_ca(store)
        await asyncio.to_thread(bootstrap.adopt, pki_dir, stored)
        pki = await asyncio.to_thread(
            pkis.ensure_cluster_pki,
            data_dir,
            hostnames=pkis.default_hostnames(),
            ips=await asyncio.to_thread(local_addresses),
        )
        if stored is None:
            await bootstrap.publish(store, pki_dir)
    except pkis.PkiError as e:
        raise ServerError(e.message) from e
    except OSError as e:
        raise ServerError(f"cannot prepare {data_dir}: {e.strerror}") from e
    if pki.issued:
        logger.info("pki issued=%s dir=%s", ",".join(pki.issued), pki.dir)
    return pki


async def _embedded_agent(options: ServerOptions, pki: object, url: str) -> None:
    """This machine's agent, with a node identity issued directly by the cluster CA, over
    the same HTTPS API a remote agent uses."""
    from agent.main import Agent, AgentError, AgentOptions

    agent_dir = options.data_dir / "agent"
    agent_options = AgentOptions(
        data_dir=agent_dir, runtime=options.agent_runtime,
        podman_url=options.agent_podman_url, endpoint_port=options.agent_endpoint_port,
    )  # fmt: skip
    if options.node_name:
        agent_options.name = options.node_name
    kubeconfig = agent_dir / "kubeconfig"
    await asyncio.to_thread(_write_node_kubeconfig, pki, kubeconfig, url, agent_options.name)
    agent_options.kubeconfig = kubeconfig
    try:
        await Agent(agent_options).run()
    except AgentError as e:
        logger.error("the embedded agent stopped: %s", e)
    except Exception:
        logger.exception("the embedded agent failed")


def _check_controllers(options: ServerOptions) -> None:
    """An unknown controller name stops the server with the list of known ones."""
    if not options.controllers or options.controller_names is None:
        return
    from controlplane.controllers.manager import CONTROLLERS

    names = [n.strip() for n in options.controller_names.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONTROLLERS]
    if unknown or not names:
        raise ServerError(
            f"--controllers: unknown controller {', '.join(unknown) or '(none given)'}; "
            f"known: {', '.join(CONTROLLERS)} (or --no-controllers for none)"
        )


def check_node_lifecycle(options: ServerOptions) -> None:
    """Node-lifecycle, pod GC and default toleration values that cannot work stop the
    server with the flag, the reason and a value to use."""
    found = problem(options.controller_settings)
    for flag, seconds in (
        ("--default-not-ready-toleration-seconds", options.default_not_ready_toleration_seconds),
        (
            "--default-unreachable-toleration-seconds",
            options.default_unreachable_toleration_seconds,
        ),
    ):
        if found is None and seconds < 0:
            found = (
                f"{flag} {seconds}: the seconds a pod stays on a tainted node, 0 or more "
                "(30 is the default)"
            )
    if found is not None:
        raise ServerError(found)


def controller_args(options: ServerOptions) -> list[str]:
    """The controller-manager process's arguments besides its kubeconfig and log level."""
    names = options.controller_names
    return ([] if names is None else ["--controllers", names]) + to_args(
        options.controller_settings
    )


async def _scheduler_config(options: ServerOptions) -> object:
    """The scheduler's configuration, read before anything starts so that a bad file
    stops the server with its reason (None: the defaults)."""
    if not options.scheduler or options.scheduler_config is None:
        return None
    from controlplane.scheduler.config import ConfigError, load

    try:
        return await asyncio.to_thread(load, options.scheduler_config)
    except ConfigError as e:
        raise ServerError(str(e)) from e


async def _component_process(
    options: ServerOptions, *, name: str, args: Sequence[str] = ()
) -> None:
    """A control-plane component as a child process (``python -m controlplane.<name>``),
    restarted with back-off if it dies. Its own interpreter: measured with
    bench/scheduler.py on this 2-core machine, sharing the apiserver's interpreter held
    end-to-end throughput back (the server process ran at 100 % of a core; see
    docs/benchmarks.md). Its standard input is a pipe only this process holds, so it
    stops when the server dies without cleaning up too. It runs in a session of its own:
    a Ctrl-C in the terminal reaches the server only, which stops its children in order
    (SIGTERM: they release their Leases), never one half-way through its start."""
    kubeconfig = options.data_dir / name / "kubeconfig"
    level = logging.getLevelName(logging.getLogger().getEffectiveLevel()).lower()
    command = [sys.executable, "-m", f"controlplane.{name}", "--kubeconfig", str(kubeconfig)]
    command += ["--log-level", level if level in ("debug", "info", "warning", "error") else "info"]
    command += list(args)
    delay = 1.0
    while True:
        proc = await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.PIPE, start_new_session=True
        )
        logger.info("%s process started pid=%d", name, proc.pid)
        try:
            code = await proc.wait()
        except asyncio.CancelledError:
            await _stop_child(proc)
            raise
        logger.error("the %s process exited code=%s; restarting in %.0fs", name, code, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 30.0)


async def _stop_child(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM (it releases its lease), SIGKILL if it takes more than 10 s."""
    if proc.returncode is not None:
        return
    proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), 10)
    except TimeoutError:
        proc.kill()
        await proc.wait()


async def _embedded_scheduler(options: ServerOptions, config: object) -> None:
    """The scheduler in this process (``--scheduler-in-process``: about 40 MB less, but
    it competes with the apiserver for one interpreter), a client of the API through
    the local socket as the scheduler process is."""
    from controlplane.scheduler.config import SchedulerConfig
    from controlplane.scheduler.run import run_scheduler

    kubeconfig = options.data_dir / "scheduler" / "kubeconfig"
    try:
        await run_scheduler(
            kubeconfig, config=config if isinstance(config, SchedulerConfig) else None
        )
    except Exception:
        logger.exception("the scheduler failed")


def _write_node_kubeconfig(pki: object, path: Path, url: str, node: str) -> None:
    from controlplane.apiserver.auth import kubeconfig
    from controlplane.apiserver.auth import pki as pkis

    assert isinstance(pki, pkis.Pki)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert, key = pkis.issue_client_certificate(
        pki, common_name=f"system:node:{node}", organizations=["system:nodes"], days=365
    )
    content = kubeconfig.admin_kubeconfig(
        url, pki.ca_pem, user=f"system:node:{node}", client_cert_pem=cert, client_key_pem=key
    )
    kubeconfig.write_kubeconfig(path, content)


def _write_admin_kubeconfig(pki: object, path: Path, url: str) -> None:
    """A fresh admin credential each start (so it always names the right port)."""
    from controlplane.apiserver.auth import kubeconfig
    from controlplane.apiserver.auth import pki as pkis

    assert isinstance(pki, pkis.Pki)
    cert, key = pkis.issue_client_certificate(
        pki, common_name="admin", organizations=["system:masters"], days=365
    )
    content = kubeconfig.admin_kubeconfig(
        url, pki.ca_pem, user="admin", client_cert_pem=cert, client_key_pem=key
    )
    kubeconfig.write_kubeconfig(path, content)
