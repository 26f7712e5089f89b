"""Store URLs: every form the docs show parses; every mistake gets a sentence saying
what to write instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.store import StoreUnusable
from controlplane.store.etcd.config import EtcdConfig
from controlplane.store.url import SqliteLocation, parse


def test_sqlite_absolute_and_relative() -> None:
    assert parse("sqlite:///var/lib/bramble/state.db") == SqliteLocation(
        Path("/var/lib/bramble/state.db")
    )
    assert parse("sqlite://data/state.db") == SqliteLocation(Path("data/state.db"))


def test_etcd_endpoints_and_options(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    config = parse(
        f"etcds://10.0.0.5:2379,pi-2.local:2379?ca=/ca.pem&cert=/c.pem&key=/k.pem"
        f"&user=bramble&password-file={secret}&timeout=3s"
    )
    assert config == EtcdConfig(
        endpoints=("https://10.0.0.5:2379", "https://pi-2.local:2379"),
        timeout=3.0,
        ca_file=Path("/ca.pem"),
        cert_file=Path("/c.pem"),
        key_file=Path("/k.pem"),
        username="bramble",
        password="s3cret",
    )
    assert "s3cret" not in repr(config)
    assert parse("etcd://127.0.0.1:2379") == EtcdConfig(endpoints=("http://127.0.0.1:2379",))


def test_etcd_password_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRAMBLE_ETCD_PASSWORD", "from-env")
    config = parse("etcd://127.0.0.1:2379?user=root")
    assert isinstance(config, EtcdConfig)
    assert config.password == "from-env"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        pytest.param("state.db", "has no scheme", id="no-scheme"),
        pytest.param("postgres://db/x", "unknown store URL scheme 'postgres'", id="scheme"),
        pytest.param("sqlite://", "names no file", id="sqlite-empty"),
        pytest.param("sqlite:///var/lib/", "names no file", id="sqlite-dir"),
        pytest.param("etcd://10.0.0.5", "write host:port", id="no-port"),
        pytest.param("etcd://10.0.0.5:99999", "write host:port", id="bad-port"),
        pytest.param("etcd://a:1,,b:2", "write host:port", id="empty-endpoint"),
        pytest.param("etcd://root:pw@10.0.0.5:2379", "not in the URL", id="credentials"),
        pytest.param("etcd://a:2379?ca=/x", "etcds://", id="tls-on-plain"),
        pytest.param("etcds://a:2379?cert=/x", "both cert= and key=", id="half-cert"),
        pytest.param("etcd://a:2379?colour=red", "unknown etcd option", id="option"),
        pytest.param("etcd://a:2379?timeout=soon", "seconds", id="timeout"),
        pytest.param("etcd://a:2379?timeout=0", "seconds", id="timeout-zero"),
        pytest.param("etcd://a:2379?user=root", "needs a password", id="no-password"),
        pytest.param("etcd://a:2379?user=r&password-file=/nonexistent", "cannot read", id="pwfile"),
        pytest.param("etcd://a:2379?password-file=/pw", "password-file= needs user=", id="no-user"),
    ],
)
def test_mistakes(url: str, says: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BRAMBLE_ETCD_PASSWORD", raising=False)
    with pytest.raises(StoreUnusable, match=says.replace("(", r"\(")):
        parse(url)
