"""The etcd backend against real etcd processes on loopback: member loss and quorum loss
in a 3-member cluster, endpoints that refuse or never answer, TLS with client
certificates, and etcd's password authentication.

The figures these tests measure (failover outage, time to fail without quorum) are
logged at INFO: run with ``--log-cli-level=INFO`` to see them.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from controlplane.store import (
    AlreadyExists,
    Event,
    EventType,
    Expired,
    KeyValue,
    Store,
    StoreUnusable,
    Unavailable,
    WatchStream,
    open_store,
)
from controlplane.store.etcd.client import EtcdClient
from controlplane.store.etcd.config import EtcdConfig
from controlplane.store.etcd.store import EtcdStore
from controlplane.store.etcd.watch import EtcdWatch
from controlplane.store.etcd.wire import b64
from controlplane.store.url import parse as parse_url
from tests.support.etcd import EtcdCluster, EtcdMember, EtcdTls
from tests.support.net import free_port
from tests.support.pki import TestCA
from tests.support.real import require_binary

logger = logging.getLogger(__name__)

pytestmark = pytest.mark.real("etcd")

# Writers running at once in the failover test: enough that writes are in flight to
# the member that dies, few enough to keep the machine calm.
WRITERS = 4
TIMEOUT = 3.0  # the store's per-call deadline in the cluster tests (?timeout=3)
# etcd's election timeout in tests/support/etcd.py (--election-timeout 1000).
ELECTION = 1.0


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[EtcdCluster]:
    """A fresh 3-member cluster, killed at the end whatever happened."""
    require_binary("etcd", package="etcd-server")
    c = EtcdCluster(tmp_path, size=3)
    try:
        c.start()
        yield c
    finally:
        c.stop()


async def settle(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Wait until ``condition()`` holds (polled), failing the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not reached within {timeout}s")
        await asyncio.sleep(0.02)


async def kill(member: EtcdMember) -> None:
    await asyncio.to_thread(member.kill)


# --- member loss and quorum loss ------------------------------------------------------


@dataclass
class WriteLog:
    """What a stream of creates saw: every acknowledged write and every failure."""

    acknowledged: dict[str, KeyValue] = field(default_factory=dict)
    ack_times: list[float] = field(default_factory=list)
    failed: dict[str, Unavailable] = field(default_factory=dict)  # outcome unknown
    failed_times: list[float] = field(default_factory=list)


async def write_stream(
    store: Store, prefix: str, log: WriteLog, stop: asyncio.Event, writer: int
) -> None:
    """Create fresh keys until ``stop``; a failed create is never retried under the
    same key, so an AlreadyExists could only mean a store bug."""
    for n in itertools.count():
        if stop.is_set():
            return
        key = f"{prefix}w{writer}-{n:05d}"
        try:
            kv = await store.create(key, key.encode())
        except Unavailable as e:
            log.failed[key] = e
            log.failed_times.append(time.monotonic())
            continue
        log.acknowledged[key] = kv
        log.ack_times.append(time.monotonic())


async def collect(watch: WatchStream, into: list[Event]) -> None:
    async for event in watch:
        into.append(event)


async def test_leader_loss_keeps_every_acknowledged_write_and_quorum_loss_fails_fast(
    cluster: EtcdCluster, prefix: str
) -> None:
    store = await open_store(cluster.url(options=f"timeout={TIMEOUT:g}"))
    watch = await store.watch(prefix, from_revision=await store.current_revision())
    seen: list[Event] = []
    follower = asyncio.create_task(collect(watch, seen))
    log = WriteLog()
    stop = asyncio.Event()
    writers = [
        asyncio.create_task(write_stream(store, prefix, log, stop, w)) for w in range(WRITERS)
    ]
    try:
        # 1. Writes flow; then the leader dies in the middle of them.
        await settle(lambda: len(log.acknowledged) >= 100, timeout=10, what="100 writes")
        leader = await asyncio.to_thread(cluster.leader)
        assert not log.failed, f"writes failed before any member did: {log.failed}"
        killed_at = time.monotonic()
        await kill(leader)
        before = len(log.acknowledged)

        # 2. The two survivors elect a leader and writes go on.
        await settle(
            lambda: len(log.acknowledged) >= before + 300,
            timeout=TIMEOUT + 15,
            what="300 writes after the leader was killed",
        )
        stop.set()
        await asyncio.gather(*writers)
        after = [t for t in log.ack_times if t > killed_at]
        outage = max(b - a for a, b in itertools.pairwise([killed_at, *after]))
        logger.info(
            "leader killed: outage=%.2fs failed=%d acknowledged_after=%d",
            outage,
            len(log.failed),
            len(after),
        )
        # Only writes in flight when the leader died, or sent to a follower before it
        # noticed (held until the deadline), may fail: one or two per writer, during
        # the failover only, and as "outcome unknown" or "did not answer".
        failover = TIMEOUT + 2 * ELECTION + 1
        assert outage < failover
        assert len(log.failed) <= 3 * WRITERS, list(log.failed.values())
        assert all(t - killed_at < failover for t in log.failed_times)
        for error in log.failed.values():
            assert re.search(r"unknown|did not answer", str(error)), error

        # 3. The watch opened before the kill saw every change, once, in order.
        last = max(kv.mod_revision for kv in log.acknowledged.values())
        await settle(
            lambda: (bool(seen) and seen[-1].revision >= last) or follower.done(),
            timeout=10,
            what="the watch to catch up with the writes",
        )
        assert not follower.done(), follower.exception()
        listed = await store.list(prefix)
        await settle(
            lambda: seen[-1].revision >= listed.revision or follower.done(),
            timeout=10,
            what="the watch to reach the list's revision",
        )
        revisions = [e.revision for e in seen]
        assert revisions == sorted(set(revisions)), "the watch repeated or reordered events"
        assert all(e.type is EventType.CREATE for e in seen)
        watched = {e.kv.key: e.kv for e in seen if e.revision <= listed.revision}
        assert watched == {kv.key: kv for kv in listed.items}, "the watch missed changes"
        for key, kv in log.acknowledged.items():
            assert watched[key] == kv
        # A failed write may or may not have happened; nothing else may appear.
        assert set(watched) <= set(log.acknowledged) | set(log.failed)
        await watch.close()
        await follower

        # 4. A second member dies: no quorum. Writes fail within the deadline, saying why.
        second = await asyncio.to_thread(cluster.leader)
        await kill(second)
        start = time.monotonic()
        with pytest.raises(Unavailable) as info:
            await store.create(prefix + "no-quorum", b"x")
        failed_after = time.monotonic() - start
        logger.info("quorum lost: write failed after %.2fs: %s", failed_after, info.value)
        assert failed_after < TIMEOUT + 2
        assert re.search(r"leader|majority|quorum|reach", str(info.value)), info.value
        start = time.monotonic()
        with pytest.raises(Unavailable):
            await store.get(prefix + "w0-00000")
        logger.info("quorum lost: read failed after %.2fs", time.monotonic() - start)
        assert time.monotonic() - start < TIMEOUT + 2

        # 5. One member comes back: quorum again, writes succeed again. (A fresh key
        # per try: a failed try may still be committed.)
        start = time.monotonic()
        await asyncio.to_thread(cluster.restart, leader)
        recovered = None
        for n in itertools.count():
            try:
                recovered = await store.create(f"{prefix}recovered-{n}", b"y")
                break
            except Unavailable:
                if time.monotonic() - start > 30:
                    raise
        logger.info("member restarted: writes again %.2fs later", time.monotonic() - start)

        # 6. Every acknowledged write is there with its value.
        final = {kv.key: kv for kv in (await store.list(prefix)).items}
        for key, kv in log.acknowledged.items():
            assert final.get(key) == kv, f"acknowledged write {key} lost"
        assert recovered is not None
        assert final[recovered.key] == recovered
    finally:
        stop.set()
        for task in [*writers, follower]:
            task.cancel()
        await asyncio.gather(*writers, follower, return_exceptions=True)
        await watch.close()
        await store.close()


async def test_open_watch_fails_when_quorum_is_lost(cluster: EtcdCluster, prefix: str) -> None:
    store = await open_store(cluster.url(options="timeout=2"))
    watch = await store.watch(prefix, from_revision=await store.current_revision())
    try:
        kv = await store.create(prefix + "a", b"1")
        async with asyncio.timeout(5):
            assert (await anext(watch)).kv == kv
        # Kill two members, leaving alone the one serving the watch, so that the stream
        # itself stays open and only the loss of quorum can end it.
        assert isinstance(watch, EtcdWatch)
        serving = next(m for m in cluster.members if m.client_url == watch.endpoint)
        for m in cluster.members:
            if m is not serving:
                await kill(m)
        start = time.monotonic()
        with pytest.raises(Unavailable) as info:  # not an event, not a hang
            await asyncio.wait_for(anext(watch), 30)
        elapsed = time.monotonic() - start
        logger.info("quorum lost: watch failed after %.2fs: %s", elapsed, info.value)
        # A quiet stream is checked after the timeout; reopening gets one more.
        assert elapsed < 2 * 2 + ELECTION + 2
        assert f"revision {kv.mod_revision}" in str(info.value)  # where to resume from
    finally:
        await watch.close()
        await store.close()


async def test_a_watch_overtaken_by_compaction_while_reopening_is_expired(
    cluster: EtcdCluster, prefix: str
) -> None:
    # List a follower first, so the watch is served by a member whose death costs no
    # election: the writes below go on at once.
    leader = await asyncio.to_thread(cluster.leader)
    ordered = sorted(cluster.members, key=lambda m: m is leader)
    url = "etcd://" + ",".join(m.endpoint for m in ordered) + f"?timeout={TIMEOUT:g}"
    store = await open_store(url)
    watch = await store.watch(prefix, from_revision=await store.current_revision())
    try:
        kv = await store.create(prefix + "a", b"0")
        async with asyncio.timeout(10):
            assert (await anext(watch)).kv == kv
        assert isinstance(watch, EtcdWatch)
        assert watch.endpoint == ordered[0].client_url
        await kill(ordered[0])
        # While the watch has no member, history moves on and is compacted.
        for i in range(1, 4):
            kv = await store.update(prefix + "a", b"%d" % i, expected_revision=kv.mod_revision)
        await store.compact(kv.mod_revision)
        # Reopening from its cursor on another member finds that history gone.
        with pytest.raises(Expired) as info:
            async with asyncio.timeout(TIMEOUT + 5):
                await anext(watch)
        assert info.value.compacted == kv.mod_revision
    finally:
        await watch.close()
        await store.close()


async def test_starting_on_a_cluster_without_quorum_fails_fast_saying_it_has_no_leader(
    cluster: EtcdCluster, tmp_path: Path
) -> None:
    survivor = cluster.members[0]
    for m in cluster.members[1:]:
        await kill(m)
    # A server (re)started after the outage, once the survivor has noticed it.
    await settle(
        lambda: not survivor.healthy(), timeout=5 * ELECTION + 5, what="the survivor to notice"
    )
    url = cluster.url(options=f"timeout={TIMEOUT:g}")
    start = time.monotonic()
    with pytest.raises(Unavailable) as info:
        await open_store(url)
    elapsed = time.monotonic() - start
    logger.info("quorum lost: open failed after %.2fs: %s", elapsed, info.value)
    assert elapsed < TIMEOUT + 1
    # The sentence docs/operations.md tells operators to look for, and what to do.
    assert str(info.value).startswith("the etcd cluster has no leader"), info.value
    assert "start the members that are down" in str(info.value)

    # bramble server says the same in one line, with status 1 and no traceback.
    start = time.monotonic()
    server = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bramble", "server", "--listen", "127.0.0.1:0"),
        *("--data-dir", str(tmp_path / "data"), "--store", url),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        _, stderr = await server.communicate()
    elapsed = time.monotonic() - start
    text = stderr.decode()
    errors = [line for line in text.splitlines() if line.startswith("bramble: error:")]
    assert server.returncode == 1, text
    assert len(errors) == 1, text
    assert "the etcd cluster has no leader" in errors[0]
    assert "Traceback" not in text
    assert elapsed < TIMEOUT + 15  # the deadline, plus starting Python on a busy machine


# --- endpoints that refuse or never answer --------------------------------------------


async def test_unreachable_endpoints_fail_fast_naming_them() -> None:
    ports = [free_port(), free_port()]  # nothing listens there
    start = time.monotonic()
    with pytest.raises(Unavailable) as info:
        await open_store(f"etcd://127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}")
    assert time.monotonic() - start < 2
    for port in ports:
        assert f"127.0.0.1:{port}" in str(info.value)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP server that accepts connections and reads nothing, answers nothing."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # the listener was shut down
            accepted.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        listener.close()
        thread.join(5)
        for conn in accepted:
            conn.close()


async def test_an_endpoint_that_never_answers_gives_unavailable_within_the_timeout(
    silent_port: int,
) -> None:
    start = time.monotonic()
    with pytest.raises(Unavailable) as info:
        await open_store(f"etcd://127.0.0.1:{silent_port}?timeout=1")
    elapsed = time.monotonic() - start
    assert 1 <= elapsed < 2
    assert f"127.0.0.1:{silent_port}" in str(info.value)


async def test_an_endpoint_that_never_answers_is_passed_over(
    silent_port: int, etcd_server: EtcdCluster, prefix: str
) -> None:
    """A member that accepts connections but is stuck (a frozen process, a dying disk)
    must not take the store down while another member answers."""
    start = time.monotonic()
    store = await open_store(f"etcd://127.0.0.1:{silent_port},{etcd_server.endpoints}?timeout=2")
    try:
        for n in range(5):
            await store.create(f"{prefix}{n}", b"x")
        # The opening read gives the silent endpoint its share (half) of the deadline,
        # then the store stays with the member that answers.
        assert time.monotonic() - start < 2
    finally:
        await store.close()


async def test_a_frozen_member_costs_at_most_one_deadline(
    cluster: EtcdCluster, prefix: str
) -> None:
    """SIGSTOP leaves a member's sockets open (the kernel still accepts connections)
    but nothing answers: the store must move to the other members, writes and watch."""
    store = await open_store(cluster.url(options=f"timeout={TIMEOUT:g}"))
    watch = await store.watch(prefix, from_revision=await store.current_revision())
    assert isinstance(watch, EtcdWatch)
    frozen = next(m for m in cluster.members if m.client_url == watch.endpoint)
    assert frozen.proc is not None
    try:
        await store.create(prefix + "before", b"1")
        frozen.proc.send_signal(signal.SIGSTOP)
        start = time.monotonic()
        written = None
        tried = False
        while written is None:
            try:
                written = await store.create(prefix + "after", b"2")
            except Unavailable:
                # The outcome of a write that timed out is unknown: sent to a follower
                # while the frozen member led, it may still be committed after the
                # election. Its retry then finds the key, which must hold its value.
                assert time.monotonic() - start < 2 * TIMEOUT + ELECTION
                tried = True
            except AlreadyExists:
                assert tried, "the key was there before any write of it"
                written = await store.get(prefix + "after")
                assert written.value == b"2"
        logger.info("member frozen: writes again after %.2fs", time.monotonic() - start)
        async with asyncio.timeout(3 * TIMEOUT):
            keys = [(await anext(watch)).kv.key for _ in range(2)]
        assert keys == [prefix + "before", prefix + "after"]
        logger.info("member frozen: watch delivered after %.2fs", time.monotonic() - start)
    finally:
        if frozen.proc is not None:
            frozen.proc.send_signal(signal.SIGCONT)
        await watch.close()
        await store.close()


@pytest.fixture
def backlogged_port() -> Iterator[int]:
    """A port whose accept queue is full: the kernel drops new SYNs, so connecting
    times out (as with a powered-off machine), without anything being sent."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = int(listener.getsockname()[1])
    fillers: list[socket.socket] = []
    try:
        # Linux queues backlog + 1 connections; fill the queue, then check that one
        # more connection attempt really times out.
        for _ in range(8):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(0.2)
            fillers.append(s)
            try:
                s.connect(("127.0.0.1", port))
            except TimeoutError:
                break
        else:
            pytest.skip("could not fill a listen queue on this kernel")
        yield port
    finally:
        for s in fillers:
            s.close()
        listener.close()


async def test_a_write_whose_connection_times_out_moves_to_the_next_member(
    backlogged_port: int, etcd_server: EtcdCluster, prefix: str
) -> None:
    """A connect timeout means the request was never sent: even a write is safe to
    send to the next member (only a write lost *after* sending has an unknown outcome)."""
    config = parse_url(
        f"etcd://127.0.0.1:{backlogged_port},{etcd_server.endpoints}?dial-timeout=0.3&timeout=3"
    )
    assert isinstance(config, EtcdConfig)
    # Not open_store(): its first read would already move the client off the first
    # endpoint, and this is about the first request being a write.
    store = EtcdStore(EtcdClient(config))
    try:
        kv = await store.create(prefix + "a", b"1")
        assert await store.get(prefix + "a") == kv
    finally:
        await store.close()


# --- TLS and authentication -------------------------------------------------------------


@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    return TestCA(tmp_path)


@pytest.fixture
def tls_etcd(tmp_path: Path, ca: TestCA) -> Iterator[EtcdCluster]:
    """One member serving clients over TLS only, requiring a client certificate."""
    require_binary("etcd", package="etcd-server")
    c = EtcdCluster(tmp_path, size=1, tls=EtcdTls.issue(ca), extra_args=["--bcrypt-cost", "4"])
    try:
        c.start()
        yield c
    finally:
        c.stop()


def tls_url(cluster: EtcdCluster, *, ca: Path | None = None, options: str = "") -> str:
    tls = cluster.members[0].tls
    assert tls is not None
    query = f"ca={ca or tls.ca}&cert={tls.client_cert}&key={tls.client_key}"
    return cluster.url(scheme="etcds", options=query + (f"&{options}" if options else ""))


async def test_tls_with_a_client_certificate(tls_etcd: EtcdCluster, prefix: str) -> None:
    store = await open_store(tls_url(tls_etcd))
    try:
        watch = await store.watch(prefix, from_revision=await store.current_revision())
        async with watch:
            kv = await store.create(prefix + "a", b"secret")
            assert await store.get(prefix + "a") == kv
            async with asyncio.timeout(5):
                assert (await anext(watch)).kv == kv
    finally:
        await store.close()


async def test_tls_with_the_wrong_ca_is_refused_clearly(
    tls_etcd: EtcdCluster, tmp_path: Path
) -> None:
    other = TestCA(tmp_path, name="other")
    start = time.monotonic()
    with pytest.raises(StoreUnusable) as info:
        await open_store(tls_url(tls_etcd, ca=other.cert))
    assert time.monotonic() - start < 2
    assert re.search(r"certificate.*not trusted.*ca=", str(info.value)), info.value


async def test_tls_without_a_client_certificate_is_refused_clearly(
    tls_etcd: EtcdCluster,
) -> None:
    tls = tls_etcd.members[0].tls
    assert tls is not None
    start = time.monotonic()
    with pytest.raises(StoreUnusable) as info:
        await open_store(tls_etcd.url(scheme="etcds", options=f"ca={tls.ca}&timeout=3"))
    assert time.monotonic() - start < 2
    assert re.search(r"client certificate.*cert=", str(info.value)), info.value


async def test_tls_for_privacy_only_needs_just_the_ca(
    tmp_path: Path, ca: TestCA, prefix: str
) -> None:
    """An etcd serving TLS without requiring client certificates: ``ca=`` alone is enough,
    and the server is still verified (another CA is refused)."""
    require_binary("etcd", package="etcd-server")
    cluster = EtcdCluster(tmp_path, size=1, tls=EtcdTls.issue(ca, client_cert_auth=False))
    try:
        cluster.start()
        store = await open_store(cluster.url(scheme="etcds", options=f"ca={ca.cert}"))
        try:
            kv = await store.create(prefix + "a", b"private")
            assert await store.get(prefix + "a") == kv
        finally:
            await store.close()
        other = TestCA(tmp_path, name="other")
        with pytest.raises(StoreUnusable, match=r"certificate.*not trusted"):
            await open_store(cluster.url(scheme="etcds", options=f"ca={other.cert}&timeout=3"))
    finally:
        cluster.stop()


def write_secret(path: Path, text: str) -> Path:
    path.touch(mode=0o600)
    path.write_text(text + "\n")
    return path


async def test_tls_and_password_authentication(
    tls_etcd: EtcdCluster, ca: TestCA, tmp_path: Path, prefix: str
) -> None:
    member = tls_etcd.members[0]
    await asyncio.to_thread(member.enable_auth, root_password="s3cret")
    good = write_secret(tmp_path / "good", "s3cret")
    bad = write_secret(tmp_path / "bad", "guess")

    store = await open_store(tls_url(tls_etcd, options=f"user=root&password-file={good}"))
    try:
        kv = await store.create(prefix + "a", b"1")
        assert await store.get(prefix + "a") == kv
    finally:
        await store.close()

    with pytest.raises(StoreUnusable) as info:
        await open_store(tls_url(tls_etcd, options=f"user=root&password-file={bad}"))
    assert "'root'" in str(info.value)
    assert "password" in str(info.value)

    # The client certificate is no login: without a user, etcd refuses.
    with pytest.raises(StoreUnusable) as info:
        await open_store(tls_url(tls_etcd))
    assert "user=" in str(info.value)

    # A client certificate naming someone is refused by etcd's gateway once
    # authentication is on; the message must say what to do.
    named = ca.issue("named-client", common_name="root", client=True)
    tls = member.tls
    assert tls is not None
    with pytest.raises(StoreUnusable) as info:
        await open_store(
            tls_etcd.url(
                scheme="etcds",
                options=f"ca={tls.ca}&cert={named.cert}&key={named.key}"
                f"&user=root&password-file={good}",
            )
        )
    assert re.search(r"CommonName.*without one", str(info.value)), info.value

    # A TLS failure stays a TLS failure when a login comes first.
    other = TestCA(tmp_path, name="other")
    with pytest.raises(StoreUnusable) as info:
        await open_store(
            tls_url(tls_etcd, ca=other.cert, options=f"user=root&password-file={good}")
        )
    assert re.search(r"certificate.*not trusted", str(info.value)), info.value


@pytest.fixture
def auth_cluster(tmp_path: Path) -> Iterator[EtcdCluster]:
    """One plain-HTTP member with authentication on and tokens that expire after 1 s idle."""
    require_binary("etcd", package="etcd-server")
    c = EtcdCluster(tmp_path, size=1, extra_args=["--auth-token-ttl", "1", "--bcrypt-cost", "4"])
    try:
        c.start()
        c.members[0].enable_auth(root_password="s3cret")
        yield c
    finally:
        c.stop()


@pytest.fixture
def auth_etcd(auth_cluster: EtcdCluster) -> EtcdMember:
    return auth_cluster.members[0]


async def test_an_invalidated_token_is_replaced_transparently(
    auth_etcd: EtcdMember, tmp_path: Path, prefix: str
) -> None:
    password = write_secret(tmp_path / "password", "s3cret")
    store = await open_store(f"etcd://{auth_etcd.endpoint}?user=root&password-file={password}")
    assert isinstance(store, EtcdStore)
    try:
        kv = await store.create(prefix + "a", b"1")
        first = store._client._token
        assert first is not None

        # Changing a user's password (here to the same one) invalidates its tokens.
        admin = await asyncio.to_thread(auth_etcd.login, "root", "s3cret")
        await asyncio.to_thread(
            auth_etcd.post,
            "auth/user/changepw",
            {"name": "root", "password": "s3cret"},
            token=admin,
        )
        assert await asyncio.to_thread(token_refused, auth_etcd, first)
        assert await store.get(prefix + "a") == kv
        second = store._client._token
        assert second not in (None, first)

        # A token unused for longer than --auth-token-ttl expires. Time is the only
        # way there: every use of a token extends its life, so it cannot be polled.
        await asyncio.sleep(2.5)
        assert await asyncio.to_thread(token_refused, auth_etcd, second)
        updated = await store.update(prefix + "a", b"2", expected_revision=kv.mod_revision)
        assert updated.value == b"2"
        assert store._client._token not in (None, first, second)
    finally:
        await store.close()


def token_refused(member: EtcdMember, token: str | None) -> bool:
    """Whether etcd rejects ``token`` (HTTP 401) on a read."""
    import urllib.error

    try:
        member.post("kv/range", {"key": "AA=="}, token=token)
    except urllib.error.HTTPError as e:
        return e.code == 401
    return False


async def test_a_watch_logs_in_again_after_its_member_restarts(
    auth_cluster: EtcdCluster, tmp_path: Path, prefix: str
) -> None:
    """etcd checks a watch's token only when the watch is created: a token that died
    while the stream was open (expired, or invalidated as here by a password change) is
    refused when the watch reopens after its member restarts. The watch must log in
    again and carry on from where it was."""
    member = auth_cluster.members[0]
    password = write_secret(tmp_path / "password", "s3cret")
    store = await open_store(f"etcd://{member.endpoint}?user=root&password-file={password}")
    assert isinstance(store, EtcdStore)
    watch = await store.watch(prefix, from_revision=await store.current_revision())
    try:
        first = await store.create(prefix + "a", b"1")
        token = store._client._token
        admin = await asyncio.to_thread(member.login, "root", "s3cret")
        await asyncio.to_thread(
            member.post, "auth/user/changepw", {"name": "root", "password": "s3cret"}, token=admin
        )
        await asyncio.to_thread(member.kill)
        await asyncio.to_thread(auth_cluster.restart, member)
        assert await asyncio.to_thread(token_refused, member, token)
        # Only the watch talks to etcd from here on, so it is the one that must log in.
        async with asyncio.timeout(10):
            assert (await anext(watch)).kv == first
            second = await asyncio.to_thread(
                member.post,
                "kv/put",
                {"key": b64(f"{prefix}b".encode()), "value": b64(b"2")},
                token=await asyncio.to_thread(member.login, "root", "s3cret"),
            )
            event = await anext(watch)
        assert event.kv.key == prefix + "b"
        header = second["header"]
        assert isinstance(header, dict)
        assert event.revision == int(header["revision"])
    finally:
        await watch.close()
        await store.close()
