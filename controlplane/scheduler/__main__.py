"""``python -m controlplane.scheduler --kubeconfig FILE [--config FILE]``: the scheduler
as a process of its own, a client of the apiserver like any other.

``bramble server`` starts it this way by default, so that scheduling and the apiserver's
JSON work each have an interpreter (and a core) of their own (see bramble/server.py for
the measurement). It stops on SIGTERM or SIGINT, and when the server that started it
goes away (controlplane/process.py); either way the lease is released on the way out.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from api import runner
from controlplane.process import LOG_LEVELS, run_until_stopped, setup_logging
from controlplane.scheduler.config import ConfigError, SchedulerConfig, load
from controlplane.scheduler.run import run_scheduler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m controlplane.scheduler")
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--config", type=Path, help="a KubeSchedulerConfiguration file")
    parser.add_argument("--identity", help="the leader election identity (default: host_uuid)")
    parser.add_argument("--log-level", default="info", choices=LOG_LEVELS)
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    try:
        config = load(args.config) if args.config else SchedulerConfig()
    except ConfigError as e:
        sys.stderr.write(f"scheduler: error: {e}\n")
        return 2
    scheduler = run_scheduler(args.kubeconfig, config=config, identity=args.identity)
    runner.run(run_until_stopped("scheduler", scheduler))
    return 0


if __name__ == "__main__":
    sys.exit(main())
