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
