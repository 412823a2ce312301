"""The HKS replay state (PROFILE P5) in SQLite: the last accepted timestamp per NAI.

Persisted, so that a restart does not reopen a replay window. FreeRADIUS calls the
module from several worker threads (and an operator may run two servers on one
file), so the compare-and-store is one atomic upsert, and each thread has its own
connection.
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


class SQLiteReplayStore:
    """`hkp_radius.hks.ReplayStore` over one SQLite file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
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
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def last_accepted(self, nai: bytes) -> int | None:
        row = (
            self._connection()
            .execute("SELECT last_timestamp FROM hkp_replay WHERE nai = ?", (nai,))
            .fetchone()
        )
        return None if row is None else int.from_bytes(row[0], "big")

    def record_if_newer(self, nai: bytes, timestamp: int) -> bool:
        cursor = self._connection().execute(_UPSERT, (nai, timestamp.to_bytes(8, "big")))
        return cursor.rowcount == 1

    def close(self) -> None:
        """Close every thread's connection (FreeRADIUS detach, one thread)."""
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()
        self._local = threading.local()
