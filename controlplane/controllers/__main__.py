"""``python -m controlplane.controllers --kubeconfig FILE [--controllers a,b] [settings]``:
the controller manager as a process of its own, a client of the apiserver like any
other; ``bramble server`` starts it so, passing its node-lifecycle and pod-GC flags on
(settings.py; controlplane/process.py says when it stops)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from api import runner
from controlplane.controllers import settings as cs
from controlplane.controllers.manager import (
    CONTROLLERS,
    ManagerConfig,
    UnknownController,
    controller_classes,
    run_manager,
)
from controlplane.process import LOG_LEVELS, run_until_stopped, setup_logging


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m controlplane.controllers")
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument(
        "--controllers",
        help=f"a comma-separated subset of: {', '.join(CONTROLLERS)} (default: all)",
    )
    parser.add_argument("--identity", help="the leader election identity (default: host_uuid)")
    parser.add_argument("--log-level", default="info", choices=LOG_LEVELS)
    cs.add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = argument_parser()
    args = parser.parse_args(argv)
    settings = cs.from_args(args)
    # The server checked them already; a hand-started manager gets the same check.
    problem = cs.problem(settings)
    if problem is not None:
        parser.error(problem)
    setup_logging(args.log_level)
    names = tuple(n.strip() for n in args.controllers.split(",")) if args.controllers else None
    try:
        controller_classes(names)
    except UnknownController as e:
        sys.stderr.write(f"controllers: error: {e}\n")
        return 2
    manager = run_manager(
        args.kubeconfig,
        config=ManagerConfig(controllers=names, settings=settings),
        identity=args.identity,
    )
    runner.run(run_until_stopped("controller-manager", manager))
    return 0


if __name__ == "__main__":
    sys.exit(main())
