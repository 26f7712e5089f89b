"""Stopping ``bramble server`` while it is busy: SIGTERM must end it promptly and
cleanly (exit status 0), whatever it was doing."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from tests.support.cluster import BrambleServer


def test_sigterm_during_namespace_deletion_stops_promptly(tmp_path: Path) -> None:
    """The namespace finalizer is finishing a namespace as the stop cancels it. On Python
    3.11 ``asyncio.wait_for`` swallowed that cancel when the awaited change arrived in
    the same instant, and the stop then waited for the finalizer forever (it hung about
    one time in five; the rounds make a regression show)."""
    for round_ in range(6):
        server = BrambleServer.start(tmp_path / f"data-{round_}")
        try:
            admin = server.admin()
            admin.ok("POST", "/api/v1/namespaces", {"metadata": {"name": "going"}})
            for i in range(3):
                admin.ok(
                    "POST", "/api/v1/namespaces/going/configmaps", {"metadata": {"name": f"c{i}"}}
                )
            admin.ok("DELETE", "/api/v1/namespaces/going")
            started = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            code = server.proc.wait(timeout=10)
            assert code == 0, server.log.text()
            assert time.monotonic() - started < 5
            assert "server stopped" in server.log.text()
        finally:
            server.stop(timeout=1)
