"""SQLite key store: keys survive a restart until their lifetime ends (draft §6.3).

Reads happen once, at start (before the sockets open). Writes go to one writer thread
through a queue, so the event loop never waits on the disk. Group commit: the writer
puts everything queued (at most BATCH changes) in one transaction, WAL with
synchronous=FULL (fsynced), and then reports the sequence number of the last change it
committed (`on_commit`); the daemon holds each HKResp that depends on a change until
that change is committed. No delay is added to gather a group: a change waits at most
for the commit under way and its own. The durability note is docs/ar.md
(## Key store durability). Once started, the writer
thread owns the connection: it commits what is queued and closes the connection itself
when told to stop, so the connection is never closed under a live writer. The file
holds HKs: it is created mode 0600; put it on a disk only the AR's operators can read.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Union

from hkp_radius.ar.keys import StoredKey

from .logs import name_this_thread

log = logging.getLogger("hkp-ar.keystore")

SCHEMA = """
CREATE TABLE IF NOT EXISTS handover_keys (
    spi INTEGER PRIMARY KEY,
    nai BLOB NOT NULL,
    hk BLOB NOT NULL,
    care_of_address BLOB,
    expires_at REAL NOT NULL,
    prf INTEGER NOT NULL,
    ar_address BLOB NOT NULL,
    last_timestamp BLOB
)
"""
# P11: the Sequence # of the last FBU accepted under each SPI, so that a restarted PAR
# still refuses a replayed FBU (RFC 6275 §9.5.1 freshness across restarts).
FBU_SCHEMA = """
CREATE TABLE IF NOT EXISTS fbu_sequences (
    spi INTEGER PRIMARY KEY,
    sequence INTEGER NOT NULL
)
"""
FBU_INSERT = "INSERT OR REPLACE INTO fbu_sequences (spi, sequence) VALUES (?, ?)"
# PROFILE P6 (v1.1) added last_timestamp: a store written before gets the column.
# A BLOB of 8 octets: NTP timestamps do not fit SQLite's signed 64-bit INTEGER.
MIGRATION = "ALTER TABLE handover_keys ADD COLUMN last_timestamp BLOB"
SELECT = (
    "SELECT spi, nai, hk, care_of_address, expires_at, prf, ar_address, last_timestamp "
    "FROM handover_keys"
)
INSERT = (
    "INSERT OR REPLACE INTO handover_keys (spi, nai, hk, care_of_address, expires_at, prf, "
    "ar_address, last_timestamp) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
# Commit at most this many changes at once, so a burst costs one fsync, not hundreds.
BATCH = 256
JOURNAL_MODE = "WAL"
SYNCHRONOUS = "FULL"  # a reply that promises a key waits for its fsync

_Op = Union[
    tuple[int, str, StoredKey], tuple[int, str, int], tuple[int, str, tuple[int, int]], None
]  # None: commit and stop
_Item = Union[list[_Op], None]  # what the queue carries: one loop iteration's changes


def timestamp_blob(timestamp: int | None) -> bytes | None:
    return None if timestamp is None else timestamp.to_bytes(8, "big")


def key_from_row(row: tuple[object, ...]) -> StoredKey:
    spi, nai, hk, coa, expires, prf, ar, last = row
    return StoredKey(
        int(spi),  # type: ignore[call-overload]
        bytes(nai),  # type: ignore[call-overload]
        bytes(hk),  # type: ignore[call-overload]
        None if coa is None else bytes(coa),  # type: ignore[call-overload]
        float(expires),  # type: ignore[arg-type]
        int(prf),  # type: ignore[call-overload]
        bytes(ar),  # type: ignore[call-overload]
        None if last is None else int.from_bytes(bytes(last), "big"),  # type: ignore[call-overload]
    )


class SqliteKeyStore:
    def __init__(self, path: str, on_commit: Callable[[int], None] | None = None) -> None:
        self.path = path
        self.on_commit = on_commit  # called from the writer thread with a sequence number
        self.sequence = 0  # of the last change queued
        self.commits = 0
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute(f"PRAGMA journal_mode={JOURNAL_MODE}")
        self._db.execute(f"PRAGMA synchronous={SYNCHRONOUS}")
        self._db.execute(SCHEMA)
        self._db.execute(FBU_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(handover_keys)")}
        if "last_timestamp" not in columns:
            self._db.execute(MIGRATION)
        # SimpleQueue: no Condition to wait on and notify per change (issue 14 profile).
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        # Changes of the current event-loop iteration, handed over at once at its end:
        # one queue put (one wake-up of the writer) per iteration, not per change.
        self._pending: list[_Op] = []
        self._thread: threading.Thread | None = None
        self._closed = False

    def load(self) -> list[StoredKey]:
        rows = self._db.execute(SELECT).fetchall()
        return [key_from_row(tuple(row)) for row in rows]

    def load_fbu_sequences(self) -> dict[int, int]:
        """SPI -> Sequence # of the last FBU accepted under it (keys that still exist)."""
        rows = self._db.execute(
            "SELECT f.spi, f.sequence FROM fbu_sequences f JOIN handover_keys k USING (spi)"
        ).fetchall()
        return {int(spi): int(sequence) for spi, sequence in rows}

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._write_loop, name="hkp-ar-keystore", daemon=True
        )
        self._thread.start()

    def store(self, key: StoredKey) -> int:
        """Queue a key; returns the change's sequence number (see on_commit)."""
        self.sequence += 1
        self._queue_op((self.sequence, "store", key))
        return self.sequence

    def store_fbu_sequence(self, spi: int, sequence: int) -> int:
        """Queue the Sequence # of an FBU accepted under `spi`; returns the change's
        sequence number (the FBack waits for its commit, as an HKResp does)."""
        self.sequence += 1
        self._queue_op((self.sequence, "fbu", (spi, sequence)))
        return self.sequence

    def delete(self, spi: int) -> int:
        self.sequence += 1
        self._queue_op((self.sequence, "delete", spi))
        return self.sequence

    def _queue_op(self, op: _Op) -> None:
        self._pending.append(op)
        if len(self._pending) == 1:
            try:
                asyncio.get_running_loop().call_soon(self._hand_over)
            except RuntimeError:  # no event loop here (tools, tests): at once
                self._hand_over()

    def _hand_over(self) -> None:
        if self._pending:
            batch, self._pending = self._pending, []
            self._queue.put(batch)

    def close(self, timeout: float | None = None) -> bool:
        """Commit what is queued and close. Returns False when the writer is still busy
        after `timeout` (None: wait for it): it then closes the connection itself when
        it is done, and this call leaves the connection alone."""
        thread = self._thread
        if thread is None:
            if not self._closed:
                self._closed = True
                self._db.close()
            return True
        self._hand_over()
        self._queue.put(None)
        thread.join(timeout)
        if thread.is_alive():
            log.error("key store %s: the writer is still busy; it closes the store when done",
                      self.path)  # fmt: skip
            return False
        self._thread = None
        return True

    def _write_loop(self) -> None:
        name_this_thread("hkp-ar-keystore")
        try:
            while True:
                item = self._queue.get()
                batch: list[_Op] = [None] if item is None else item
                while len(batch) < BATCH and None not in batch:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    batch += [None] if item is None else item
                if self._apply(batch):
                    return
        finally:
            self._closed = True
            self._db.close()  # the writer owns the connection once started

    def _apply(self, batch: list[_Op]) -> bool:
        """One transaction for the batch. Each SPI's last change is what the batch
        leaves in the tables, so rows are written per kind with executemany (a key
        stored and retired in one batch is only deleted; issue 14: the writer's
        per-row execute calls)."""
        stop = False
        last = 0
        keys: dict[int, StoredKey | None] = {}  # spi -> final row (None: deleted)
        fbus: dict[int, int | None] = {}  # spi -> final FBU Sequence # (None: deleted)
        for op in batch:
            if op is None:
                stop = True
                continue
            last = op[0]
            if op[1] == "store" and isinstance(op[2], StoredKey):
                keys[op[2].spi] = op[2]
            elif op[1] == "delete" and isinstance(op[2], int):
                keys[op[2]] = fbus[op[2]] = None
            elif op[1] == "fbu" and isinstance(op[2], tuple):
                fbus[op[2][0]] = op[2][1]
        stored = [
            (key.spi, key.nai, key.hk, key.care_of_address, key.expires_at, key.prf,
             key.ar_address, timestamp_blob(key.last_timestamp))
            for key in keys.values() if key is not None
        ]  # fmt: skip
        try:
            self._db.execute("BEGIN")
            self._db.executemany(
                "DELETE FROM handover_keys WHERE spi = ?",
                [(spi,) for spi, key in keys.items() if key is None],
            )
            self._db.executemany(
                "DELETE FROM fbu_sequences WHERE spi = ?",
                [(spi,) for spi, sequence in fbus.items() if sequence is None],
            )
            self._db.executemany(INSERT, stored)
            self._db.executemany(FBU_INSERT, [item for item in fbus.items() if item[1] is not None])
            self._db.execute("COMMIT")
            self.commits += 1
        except sqlite3.Error as exc:
            log.error(
                "key store %s: %s (changes of this batch lost; their replies are sent "
                "anyway: the keys live in memory until a restart)",
                self.path,
                exc,
            )
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.Error:
                pass
        if last and self.on_commit is not None:
            try:
                self.on_commit(last)
            except Exception:  # the loop is closing: nobody is waiting any more
                log.debug("key store: commit %d reported after the loop closed", last)
        return stop
