"""The suite's CI rule (tests/conftest.py): with CI=true a test that skips because a real
component is missing fails instead, however the skip happens; without CI it stays a skip.

Each case is a tiny test module run by a pytest of its own, in a subprocess, under a copy
of the suite's conftest.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

CONFTEST = Path(__file__).parent / "conftest.py"

CASES = {
    "test_in_the_body.py": """
import pytest

def test_it():
    pytest.skip("podman is not installed")
""",
    "test_in_a_fixture.py": """
import pytest

@pytest.fixture
def etcd():
    pytest.skip("etcd is not installed")

def test_it(etcd):
    pass
""",
    "test_at_module_level.py": """
import pytest

pytest.skip("sshd is not installed", allow_module_level=True)

def test_it():
    pass
""",
    "test_importorskip.py": """
import pytest

pytest.importorskip("no_such_module_for_bramble")

def test_it():
    pass
""",
}

XFAIL = """
import pytest

@pytest.mark.xfail(reason="known", strict=True)
def test_it():
    raise AssertionError
"""


def run_pytest(directory: Path, *, ci: bool) -> dict[str, str]:
    """Each test module's outcome (passed, skipped, xfailed, failed, or error: a failed
    collection or setup) and, after a colon, what pytest said about it."""
    report = directory / "report.xml"
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci:
        env["CI"] = "true"
    subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"),
            *("--continue-on-collection-errors", f"--junit-xml={report}", str(directory)),
        ],
        cwd=directory,
        env=env,
        capture_output=True,
        check=False,
        timeout=120,
    )
    outcomes = {}
    for case in ET.parse(report).iter("testcase"):
        module = case.get("classname") or case.get("name") or ""
        module = module.rpartition(".")[2] if case.get("classname") else module
        child = next(iter(case), None)
        if child is None:
            outcome = "passed"
        elif child.get("type") == "pytest.xfail":
            outcome = "xfailed"
        else:
            outcome = {"failure": "failed"}.get(child.tag, child.tag)
        said = (child.text or child.get("message") or "") if child is not None else ""
        outcomes[module] = f"{outcome}: {said.strip()}"
    return outcomes


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copy(CONFTEST, tmp_path / "conftest.py")
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
    )
    for name, text in CASES.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "test_xfail.py").write_text(XFAIL)
    return tmp_path


def test_in_ci_every_kind_of_skip_fails_and_an_xfail_stays(project: Path) -> None:
    outcomes = run_pytest(project, ci=True)
    rule = "skipped in CI, where every real component must be present: Skipped: "
    assert outcomes == {
        "test_in_the_body": f"failed: {rule}podman is not installed",
        # pytest reports a failed setup, and a failed collection, as an error
        "test_in_a_fixture": f"error: {rule}etcd is not installed",
        "test_at_module_level": f"error: {rule}sshd is not installed",
        "test_importorskip": f"error: {rule}could not import 'no_such_module_for_bramble': "
        "No module named 'no_such_module_for_bramble'",
        "test_xfail": "xfailed: known",  # an expected failure is not a skip
    }


def test_outside_ci_a_missing_component_skips(project: Path) -> None:
    outcomes = {
        module: outcome.partition(":")[0]
        for module, outcome in run_pytest(project, ci=False).items()
    }
    assert outcomes == {
        "test_in_the_body": "skipped",
        "test_in_a_fixture": "skipped",
        "test_at_module_level": "skipped",
        "test_importorskip": "skipped",
        "test_xfail": "xfailed",
    }
