"""``bramble agent``'s mistakes: each is one line saying what to do, status 1 (click's
own usage errors: status 2), never a traceback, and nothing is started."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.net import free_port

HASH = "a" * 64


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([], "give --server URL and --token TOKEN (or --kubeconfig)"),
        (["--token", "abcdef.0123456789abcdef"], "give --server URL and --token TOKEN"),
        (["--server", "{url}", "--token", "abcdef.0123456789abcdef"],
         "give a join token (`bramble token create --role node` prints one)"),
        (["--server", "{url}", "--token-file", "{tmp}/missing"], "cannot read --token-file"),
        (["--server", "{url}", "--token", "K10abc::abcdef.0123"], "is damaged; copy it again"),
        (["--server", "{url}", "--token", f"K10{HASH}::abcdef.0123",
          "--ca-cert-hash", "sha256:" + "b" * 64], "differ: one of them is for another cluster"),
        (["--server", "{url}", "--token", f"K10{HASH}::abcdef.0123"],
         "check --server and that bramble server runs there"),
        (["--server", "{url}", "--token", f"K10{HASH}::t", "--label", "=bad"], "KEY=VALUE"),
    ],
    ids=["nothing", "no-server", "no-ca", "no-token-file", "damaged-join-token",
         "two-different-hashes", "nobody-there", "bad-label"],
)  # fmt: skip
def test_a_mistake_is_one_line_with_a_fix(tmp_path: Path, args: list[str], says: str) -> None:
    url = f"https://127.0.0.1:{free_port()}"  # nothing listens there
    argv = [a.format(url=url, tmp=tmp_path) for a in args]
    result = subprocess.run(
        [sys.executable, "-m", "bramble", "agent", *argv, "--runtime", "fake",
         "--data-dir", str(tmp_path / "agent")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("bramble: error: "), lines
    assert says in lines[0], lines
