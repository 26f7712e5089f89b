"""The ``bramble`` command line. Errors reach the user as one line: what is wrong and
what to do (exit status 1), never a traceback."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import click

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
def server(
    data_dir: Path,
    store_url: str | None,
    listen: str,
    max_inflight: int,
    compact_interval: float,
) -> None:
    """Run the control plane on this machine (apiserver on HTTPS; DATA_DIR/admin.kubeconfig
    is written for kubectl)."""
    from bramble.server import ServerError, ServerOptions, parse_listen, run
    from controlplane.store import StoreError

    try:
        host, port = parse_listen(listen)
        options = ServerOptions(
            data_dir=data_dir,
            store_url=store_url,
            host=host,
            port=port,
            compact_interval=compact_interval,
            max_inflight=max_inflight,
        )
        asyncio.run(run(options))
    except (StoreError, ServerError) as e:
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
    """Issue a token (shown once; only a hash is stored)."""
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
