"""The agent loads neither the control plane, the TUI's toolkit, SSH nor certificate
generation (issue 4: it runs on a 1 GB Pi next to the workloads). Checked in a fresh
interpreter, as the import-linter contracts cannot see lazy imports."""

from __future__ import annotations

import subprocess
import sys


def test_the_agent_loads_nothing_it_does_not_use() -> None:
    code = (
        "import bramble.agent, agent.main, agent.runtime.podman, agent.metrics\n"
        "import sys; print('\\n'.join(sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert "agent.main" in loaded  # the check ran
    heavy = {"controlplane", "textual", "paramiko", "cryptography", "tui"}
    assert not {m for m in loaded if m.split(".")[0] in heavy}
