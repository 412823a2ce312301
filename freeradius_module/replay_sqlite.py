"""The HKS replay state (PROFILE P5) in SQLite: the last accepted timestamp per NAI.

Persisted, so that a restart does not reopen a replay window. FreeRADIUS calls the
module from several worker threads (and an operator may run two servers on one
file), so the compare-and-store is one atomic upsert. Reads use one connection per
thread; writes go through one committer thread (group commit): every worker's upsert
that arrives while a commit is under way joins the next transaction, and each
`record_if_newer` returns only once the transaction holding its upsert is committed
(WAL, synchronous=FULL: on disk, fsynced). A group holds at most GROUP_MAX upserts and
waits for none: the delay a call adds is at most one commit in progress plus its own.
The durability note is docs/hks.md (## Replay state durability).
"""

from __future__ import annotations

import os
import sqlite3
import threading

from hkp_radius.errors import ConfigError

# Timestamps are unsigned 64-bit (NTP, P5); SQLite integers are signed. Stored as
# 8-octet big-endian BLOBs, which SQLite compares with memcmp: the same order.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS hkp_replay (
    nai BLOB PRIMARY KEY,
    last_timestamp BLOB NOT NULL CHECK (length(last_timestamp) = 8)
) WITHOUT ROWID
"""
_UPSERT = """
INSERT INTO hkp_replay (nai, last_timestamp) VALUES (?, ?)
ON CONFLICT (nai) DO UPDATE SET last_timestamp = excluded.last_timestamp
WHERE excluded.last_timestamp > hkp_replay.last_timestamp
"""
BUSY_TIMEOUT_SECONDS = 5.0  # long enough to ride out another writer's commit
GROUP_MAX = 64  # upserts per transaction at most
JOURNAL_MODE = "WAL"
SYNCHRONOUS = "FULL"  # a commit is fsynced before any reply that depends on it


class _Pending:
    """One record_if_newer call waiting for the group commit that holds it."""

    __slots__ = ("done", "error", "nai", "stored", "timestamp")

    def __init__(self, nai: bytes, timestamp: bytes) -> None:
        self.nai = nai
        self.timestamp = timestamp
        self.done = threading.Event()
        self.stored = False
        self.error: str | None = None


class SQLiteReplayStore:
    """`hkp_radius.hks.ReplayStore` over one SQLite file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._queue: list[_Pending] = []
        self._wake = threading.Condition(self._lock)
        self._committer: threading.Thread | None = None
        self._committer_pid = 0
        self._stopping = False
        self.commits = 0  # transactions committed (the benchmark reads groups = upserts/commits)
        self.upserts = 0
        directory = os.path.dirname(path) or "."
        if not os.path.isdir(directory):
            raise ConfigError(
                f"replay_db {path}: directory {directory} does not exist; create it, "
                "writable by the user FreeRADIUS runs as"
            )
        try:
            connection = self._connection()
            with connection:
                connection.execute(_SCHEMA)
        except sqlite3.Error as exc:
            raise ConfigError(
                f"replay_db {path}: cannot open it ({exc}); it and its directory must be "
                "writable by the user FreeRADIUS runs as"
            ) from None

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_SECONDS,
                isolation_level=None,
                check_same_thread=False,  # closed by detach from the main thread
            )
            self._local.connection = connection
            self._configure(connection)
        return connection

    def _configure(self, connection: sqlite3.Connection) -> None:
        connection.execute(f"PRAGMA journal_mode={JOURNAL_MODE}")
        connection.execute(f"PRAGMA synchronous={SYNCHRONOUS}")
        with self._lock:
            self._connections.append(connection)

    def last_accepted(self, nai: bytes) -> int | None:
        row = (
            self._connection()
            .execute("SELECT last_timestamp FROM hkp_replay WHERE nai = ?", (nai,))
            .fetchone()
        )
        return None if row is None else int.from_bytes(row[0], "big")

    def record_if_newer(self, nai: bytes, timestamp: int) -> bool:
        """Queue the upsert for the committer and wait until its group is committed."""
        pending = _Pending(nai, timestamp.to_bytes(8, "big"))
        with self._lock:
            if self._stopping:
                raise sqlite3.OperationalError(f"replay_db {self.path}: the store is closed")
            self._ensure_committer()
            self._queue.append(pending)
            self._wake.notify()
        pending.done.wait()  # releases the GIL: other workers queue meanwhile
        if pending.error is not None:
            raise sqlite3.OperationalError(f"replay_db {self.path}: {pending.error}")
        return pending.stored

    def _ensure_committer(self) -> None:
        """Started on first use, in the process that uses it: FreeRADIUS may fork
        (daemonise) after instantiate, and threads do not survive a fork."""
        if self._committer is not None and self._committer_pid == os.getpid():
            return
        self._queue = []
        self._committer_pid = os.getpid()
        self._committer = threading.Thread(
            target=self._commit_loop, name="hkp-hks-replay", daemon=True
        )
        self._committer.start()

    def _commit_loop(self) -> None:
        connection = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None,
            check_same_thread=False,
        )  # fmt: skip
        self._configure(connection)
        while True:
            with self._lock:
                while not self._queue and not self._stopping:
                    self._wake.wait()
                if not self._queue:
                    return
                group, self._queue = self._queue[:GROUP_MAX], self._queue[GROUP_MAX:]
            self._commit(connection, group)

    def _commit(self, connection: sqlite3.Connection, group: list[_Pending]) -> None:
        try:
            connection.execute("BEGIN IMMEDIATE")
            for pending in group:
                cursor = connection.execute(_UPSERT, (pending.nai, pending.timestamp))
                pending.stored = cursor.rowcount == 1
            connection.execute("COMMIT")
            self.commits += 1
            self.upserts += len(group)
        except sqlite3.Error as exc:
            for pending in group:
                pending.stored = False
                pending.error = str(exc)
            try:
                connection.execute("ROLLBACK")
            except sqlite3.Error:
                pass
        for pending in group:
            pending.done.set()

    def close(self) -> None:
        """Commit what is queued, stop the committer and close every thread's
        connection (FreeRADIUS detach, one thread)."""
        with self._lock:
            self._stopping = True
            self._wake.notify_all()
            committer = self._committer
        if committer is not None and self._committer_pid == os.getpid():
            committer.join()
        self._committer = None
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()
        self._local = threading.local()
