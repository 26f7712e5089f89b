"""Suite-wide rules.

* In CI (``CI=true``) a skipped test is a failure: every real component must be there.
  On a laptop a test whose component is missing skips with the reason.
* Every async test runs under blockbuster: a blocking call (file, socket, sqlite,
  time.sleep) made on the event loop thread fails the test.
* mDNS never runs in the machine's own network namespace.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Generator, Iterator

import pytest

os.environ["BRAMBLE_MDNS"] = "off"

_OWN_PACKAGES = [
    name
    for name in ("bramble", "api", "controlplane", "agent", "tui")
    if importlib.util.find_spec(name) is not None
]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        _fail_the_skip(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    # A skip while a module is imported (pytest.skip(allow_module_level=True),
    # pytest.importorskip) skips the whole module at collection, before any test runs.
    report = yield
    if IN_CI and report.skipped:
        _fail_the_skip(report)
    return report


def _fail_the_skip(report: pytest.TestReport | pytest.CollectReport) -> None:
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
    report.outcome = "failed"
    report.longrepr = f"skipped in CI, where every real component must be present: {reason}"


@pytest.fixture(autouse=True)
def _no_blocking_on_the_loop(request: pytest.FixtureRequest) -> Iterator[None]:
    if request.node.get_closest_marker("asyncio") is None and not _is_async(request):
        yield
        return
    from blockbuster import blockbuster_ctx

    # Only bramble's own packages are scanned: the tests' helpers may block while they
    # set things up; the code under test may not.
    with blockbuster_ctx(_OWN_PACKAGES):
        yield


def _is_async(request: pytest.FixtureRequest) -> bool:
    import inspect

    return inspect.iscoroutinefunction(getattr(request.node, "function", None))
