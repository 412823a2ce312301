"""The HKS replay state (PROFILE P5) in SQLite: the last accepted timestamp per NAI.

Persisted, so that a restart does not reopen a replay window. FreeRADIUS calls the
module from several worker threads (and an operator may run two servers on one
file), so the compare-and-store is one atomic upsert, and each thread has its own
connection. Group commit, leader style: a `record_if_newer` that finds no commit under
way commits itself, together with every upsert that other workers queue meanwhile (at
most GROUP_MAX per transaction); one that finds a commit under way queues its upsert and
waits, and when the leader is done the first waiter left over becomes the next leader.
Every call returns only once the transaction holding its upsert is committed (WAL,
synchronous=FULL: fsynced). No call waits to gather a group, and a lone caller pays no
thread hand-off. rlm_python3 (3.2.1) lets one call into a module run at a time, so
under FreeRADIUS the groups are of one (docs/benchmarks.md); they grow when calls do
overlap. The durability note is docs/hks.md (### Replay state durability).
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
    """One record_if_newer call: its upsert, its outcome, and its turn to lead."""

    __slots__ = ("done", "error", "finished", "lead", "nai", "stored", "timestamp")

    def __init__(self, nai: bytes, timestamp: bytes) -> None:
        self.nai = nai
        self.timestamp = timestamp
        self.done = threading.Event()  # set when finished, or when made the leader
        self.finished = False
        self.lead = False
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
        self._committing = False
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
        """Queue the upsert; lead the next commit or wait for the one holding it."""
        pending = _Pending(nai, timestamp.to_bytes(8, "big"))
        with self._lock:
            self._queue.append(pending)
            if not self._committing:
                self._committing = pending.lead = True
        if not pending.lead:
            pending.done.wait()  # releases the GIL
        if not pending.finished:
            self._lead()
        if pending.error is not None:
            raise sqlite3.OperationalError(f"replay_db {self.path}: {pending.error}")
        return pending.stored

    def _lead(self) -> None:
        """Commit the first GROUP_MAX queued upserts (ours first), then hand over."""
        with self._lock:
            group, self._queue = self._queue[:GROUP_MAX], self._queue[GROUP_MAX:]
        connection = self._connection()
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
        finally:
            with self._lock:
                for pending in group:
                    pending.finished = True
                    pending.done.set()
                if self._queue:
                    successor = self._queue[0]
                    successor.lead = True
                    successor.done.set()
                else:
                    self._committing = False

    def close(self) -> None:
        """Close every thread's connection (FreeRADIUS detach, one thread)."""
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()
        self._local = threading.local()
