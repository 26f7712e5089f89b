"""``bramble server`` as a user runs it: a real process, real signals, real files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import wait_until

BRAMBLE = [sys.executable, "-m", "bramble"]


def start(*args: str, session: bool = False) -> subprocess.Popen[str]:
    """``session``: in a session (process group) of its own, as in a terminal."""
    return subprocess.Popen(
        [*BRAMBLE, "server", "--listen", "127.0.0.1:0", "--no-agent", *args],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=session,
    )


def wait_for(proc: subprocess.Popen[str], needle: str) -> str:
    """Read the server's log until ``needle`` appears (the process's own readiness signal)."""
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if needle in line:
            return "".join(seen)
    raise AssertionError(f"{needle!r} never logged; the server said:\n{''.join(seen)}")


def refused(*args: str) -> str:
    """Run ``bramble server`` with ``args``, which must stop it at start-up: status 1,
    exactly one ``bramble: error:`` line and no traceback. That line."""
    result = subprocess.run(
        [*BRAMBLE, "server", "--listen", "127.0.0.1:0", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("bramble: error:")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return errors[0]


@pytest.fixture
def server_procs() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
        if p.stderr is not None:
            p.stderr.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_starts_on_the_embedded_store_and_stops_cleanly(
    tmp_path: Path, sig: signal.Signals, server_procs: list[subprocess.Popen[str]]
) -> None:
    data = tmp_path / "data"
    proc = start("--data-dir", str(data))
    server_procs.append(proc)
    wait_for(proc, "server ready")
    assert (data / "state.db").exists()
    assert data.stat().st_mode & 0o777 == 0o700
    proc.send_signal(sig)
    assert proc.wait(timeout=15) == 0
    assert proc.stderr is not None
    tail = proc.stderr.read()
    assert "server stopped" in tail
    assert "Traceback" not in tail
    # A clean stop checkpoints the write-ahead log into the database file.
    wal = data / "state.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0


def test_ctrl_c_in_a_terminal_stops_the_server_and_its_children_cleanly(
    tmp_path: Path, server_procs: list[subprocess.Popen[str]]
) -> None:
    """Ctrl-C signals the whole foreground process group: the server and its scheduler and
    controller-manager processes get SIGINT at once; all of them end without a traceback."""
    proc = start("--data-dir", str(tmp_path / "data"), session=True)
    server_procs.append(proc)
    wait_for(proc, "server ready")

    def children() -> list[int]:
        tasks = Path(f"/proc/{proc.pid}/task").iterdir()
        return [int(c) for task in tasks for c in (task / "children").read_text().split()]

    # the scheduler and the controller manager run as child processes, started after ready
    started = wait_until(lambda: children() if len(children()) >= 2 else None, timeout=30,
                         what="the server's two child processes", every=0.1)  # fmt: skip
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=20) == 0
    assert proc.stderr is not None
    tail = proc.stderr.read()
    assert "server stopped" in tail
    assert "Traceback" not in tail, tail
    assert "KeyboardInterrupt" not in tail, tail
    assert [c for c in started if Path(f"/proc/{c}").exists()] == [], "children left running"


def test_a_second_server_on_the_same_data_dir_is_refused(
    tmp_path: Path, server_procs: list[subprocess.Popen[str]]
) -> None:
    first = start("--data-dir", str(tmp_path))
    server_procs.append(first)
    wait_for(first, "server ready")
    second = subprocess.run(
        [*BRAMBLE, "server", "--listen", "127.0.0.1:0", "--no-agent", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert second.returncode == 1
    assert f"in use by another process (pid {first.pid})" in second.stderr
    first.terminate()
    assert first.wait(timeout=15) == 0


@pytest.mark.parametrize(
    ("store", "says"),
    [
        pytest.param("sqlite://{tmp}/junk.db", "is not a SQLite database", id="junk-file"),
        pytest.param("etcd://127.0.0.1:{port}", "cannot reach any etcd endpoint", id="no-etcd"),
        pytest.param("mysql://x", "unknown store URL scheme", id="scheme"),
    ],
)
def test_bad_stores_give_one_line_and_status_1(tmp_path: Path, store: str, says: str) -> None:
    from tests.support.net import free_port

    (tmp_path / "junk.db").write_bytes(b"this is not a database" * 100)
    url = store.format(tmp_path=tmp_path, tmp=tmp_path, port=free_port())
    assert says in refused("--data-dir", str(tmp_path), "--store", url)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        pytest.param(["--controllers", "replicaset,bogus"], "unknown controller bogus", id="ctl"),
        pytest.param(["--controllers", ","], "unknown controller (none given)", id="empty"),
    ],
)
def test_bad_component_options_give_one_line_and_status_1(
    tmp_path: Path, args: list[str], says: str
) -> None:
    error = refused("--data-dir", str(tmp_path), *args)
    assert says in error
    assert "known: " in error


@pytest.mark.parametrize(
    ("args", "says"),
    [
        pytest.param(["--node-monitor-grace-period", "5"],
                     "must be longer than the agents' lease renewal interval (10 s)", id="grace"),
        pytest.param(["--node-monitor-grace-period", "0"], "use at least 20", id="grace-0"),
        pytest.param(["--unhealthy-zone-threshold", "1.5"], "from 0 to 1", id="threshold"),
        pytest.param(["--node-eviction-rate", "-0.1"], "more than 0", id="rate"),
        pytest.param(["--terminated-pod-gc-threshold", "-1"], "0 or more", id="podgc"),
        pytest.param(["--default-unreachable-toleration-seconds", "-5"], "0 or more",
                     id="toleration"),
    ],
)  # fmt: skip
def test_bad_node_lifecycle_values_give_one_line_and_status_1(
    tmp_path: Path, args: list[str], says: str
) -> None:
    data = tmp_path / "data"
    error = refused("--data-dir", str(data), *args)
    assert error.startswith(f"bramble: error: {args[0]} {args[1]}: ")
    assert says in error
    assert "default" in error  # the fix: a value that works
    assert not data.exists()  # refused before anything started


async def test_default_toleration_seconds_reach_pod_admission(tmp_path: Path) -> None:
    from api.client import ApiClient
    from api.resources import resource
    from tests.support.cluster import BrambleServer

    server = BrambleServer.start(
        tmp_path / "data", "--no-scheduler", "--no-controllers",
        "--default-unreachable-toleration-seconds", "7",
    )  # fmt: skip
    try:
        client = await ApiClient.from_kubeconfig(server.kubeconfig)
        try:
            body = {
                "metadata": {"name": "p"},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            }
            created = await client.create(resource("", "Pod"), "default", body)
        finally:
            await client.close()
    finally:
        assert server.stop() == 0
    tolerations = {t["key"]: t["tolerationSeconds"] for t in created["spec"]["tolerations"]}
    assert tolerations == {
        "node.kubernetes.io/not-ready": 30,
        "node.kubernetes.io/unreachable": 7,
    }
