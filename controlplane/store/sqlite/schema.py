"""Opening the SQLite file: recognise it, refuse what is not ours, create or check the schema.

The whole state is one table, ``log``, in the style of kine: every write appends a row
whose integer primary key is the store revision. A row records the change itself
(created, deleted) with the key's create revision, the revision it supersedes
(``prev_revision``) and the value (a deletion stores none: its last value is the
superseded row's). A key's state at
revision R is its newest row with ``id <= R``, absent when that row is a deletion.

The file carries ``application_id`` (so a foreign SQLite file is recognised) and
``user_version`` (the schema version; a newer one is refused rather than misread).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import sqlite3
from pathlib import Path

from controlplane.store.errors import StoreUnusable

APPLICATION_ID = 0x42726D62  # "Brmb"
SCHEMA_VERSION = 1
_MAGIC = b"SQLite format 3\x00"

_SCHEMA = """
CREATE TABLE log (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            BLOB    NOT NULL,
    created         INTEGER NOT NULL,
    deleted         INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision   INTEGER NOT NULL,
    value           BLOB    NOT NULL
);
CREATE INDEX log_name_id ON log (name, id);
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO meta (key, value) VALUES ('compact_revision', 0);
"""

_RESTORE_HINT = (
    "Stop bramble, move the file aside and restore a backup (docs/operations.md), "
    "or point --data-dir/--store at another location."
)


def configure(conn: sqlite3.Connection, *, writer: bool) -> None:
    """Per-connection settings. ``synchronous=FULL`` makes every commit fsync the WAL:
    an acknowledged write survives power loss, which matters on SD cards."""
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA cache_size = -4096")  # 4 MiB per connection: Pis are small
    if writer:
        # Keep the WAL from growing without bound after a burst (64 MiB).
        conn.execute("PRAGMA journal_size_limit = 67108864")
    else:
        conn.execute("PRAGMA query_only = 1")


def connect(path: Path, *, writer: bool) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        configure(conn, writer=writer)
    except sqlite3.DatabaseError as e:
        conn.close()
        raise unusable(path, e) from e
    return conn


def unusable(path: Path, e: sqlite3.DatabaseError) -> StoreUnusable:
    """Translate SQLite's complaint about the file into a sentence a person can act on."""
    text = str(e)
    if isinstance(e, sqlite3.OperationalError) and "unable to open" in text:
        return StoreUnusable(
            f"cannot open the store file {path} ({text}); check that its directory "
            "exists and is writable by this user"
        )
    return StoreUnusable(f"the store file {path} is unreadable ({text}). {_RESTORE_HINT}")


class FileLock:
    """An exclusive lock next to the database, held while the store is open.

    Only one process may write the file: watchers are woken in-process on commit, so a
    second writer's changes would never reach them.
    """

    def __init__(self, db_path: Path) -> None:
        self.path = db_path.with_name(db_path.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = _read_pid(fd)
            os.close(fd)
            if e.errno not in (errno.EAGAIN, errno.EACCES):
                raise StoreUnusable(f"cannot lock {self.path}: {e.strerror}") from e
            who = f" (pid {holder})" if holder else ""
            raise StoreUnusable(
                f"the store {self.path.with_suffix('')} is in use by another process{who}; "
                "stop the other bramble server, or give this one its own --data-dir"
            ) from e
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None


def _read_pid(fd: int) -> str:
    with contextlib.suppress(OSError):
        return os.pread(fd, 32, 0).decode(errors="replace").strip()
    return ""


def open_database(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) and verify the store file; return the writer's connection.

    Raises StoreUnusable for a file that is not SQLite, is another program's database,
    has a newer schema, or fails SQLite's integrity check.
    """
    _refuse_non_sqlite(path)
    fresh = not path.exists() or path.stat().st_size == 0
    if fresh:
        _create_file(path)
    conn = connect(path, writer=True)
    try:
        _verify_or_create(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def _refuse_non_sqlite(path: Path) -> None:
    try:
        with path.open("rb") as f:
            head = f.read(len(_MAGIC))
    except FileNotFoundError:
        return
    except IsADirectoryError as e:
        raise StoreUnusable(f"the store path {path} is a directory; give a file path") from e
    except OSError as e:
        raise StoreUnusable(f"cannot read the store file {path}: {e.strerror}") from e
    if head and head != _MAGIC:
        raise StoreUnusable(
            f"{path} is not a SQLite database (it is corrupt, or another program's file). "
            + _RESTORE_HINT
        )


def _create_file(path: Path) -> None:
    """Create the file 0600 (it will hold the cluster's secrets) and make its directory
    entry durable, so that a power cut cannot lose the file behind an acknowledged write."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as e:
        raise StoreUnusable(
            f"cannot create the store file {path}: {e.strerror}; check the directory's "
            "permissions and free space"
        ) from e


def _verify_or_create(conn: sqlite3.Connection, path: Path) -> None:
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        if app_id == 0 and not tables:
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")  # only takes effect before tables
            conn.execute("PRAGMA journal_mode = WAL")
            # One script, one transaction: a crash leaves either no schema or all of it.
            try:
                conn.executescript(
                    f"BEGIN IMMEDIATE; {_SCHEMA}"
                    f"PRAGMA application_id = {APPLICATION_ID};"
                    f"PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
                )
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return
        if app_id != APPLICATION_ID:
            raise StoreUnusable(
                f"{path} is a SQLite database, but not a bramble store "
                f"(it holds tables {', '.join(sorted(tables)) or 'none'}). "
                "Point --data-dir/--store at bramble's own file."
            )
        if version > SCHEMA_VERSION:
            raise StoreUnusable(
                f"{path} was written by a newer bramble (store schema {version}; this "
                f"bramble knows up to {SCHEMA_VERSION}). Upgrade bramble, or restore a "
                "backup taken with this version."
            )
        # The WAL journal mode is stored in the file; a copied-in file may have lost it.
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise StoreUnusable(f"cannot put {path} in WAL mode (it stays in {mode} mode)")
        problems = [r[0] for r in conn.execute("PRAGMA quick_check(5)")]
        if problems != ["ok"]:
            raise StoreUnusable(
                f"{path} is corrupt (SQLite reports: {'; '.join(problems)}). " + _RESTORE_HINT
            )
    except sqlite3.DatabaseError as e:
        raise unusable(path, e) from e
