"""SQLite key store: keys survive a restart until their lifetime ends (draft §6.3).

Reads happen once, at start (before the sockets open). Writes go to one writer thread
through a queue, so the event loop never waits on the disk. The file holds HKs: it is
created mode 0600; put it on a disk only the AR's operators can read.
"""

from __future__ import annotations

import logging
import os
import queue
import sqlite3
import threading
from typing import Union

from hkp_radius.ar.keys import StoredKey

log = logging.getLogger("hkp-ar.keystore")

SCHEMA = """
CREATE TABLE IF NOT EXISTS handover_keys (
    spi INTEGER PRIMARY KEY,
    nai BLOB NOT NULL,
    hk BLOB NOT NULL,
    care_of_address BLOB,
    expires_at REAL NOT NULL,
    prf INTEGER NOT NULL,
    ar_address BLOB NOT NULL
)
"""
# Commit at most this many changes at once, so a burst costs one fsync, not hundreds.
BATCH = 256

_Op = Union[tuple[str, StoredKey], tuple[str, int], None]  # None: commit and stop


class SqliteKeyStore:
    def __init__(self, path: str) -> None:
        self.path = path
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(SCHEMA)
        self._queue: queue.Queue[_Op] = queue.Queue()
        self._thread: threading.Thread | None = None

    def load(self) -> list[StoredKey]:
        rows = self._db.execute(
            "SELECT spi, nai, hk, care_of_address, expires_at, prf, ar_address FROM handover_keys"
        ).fetchall()
        return [
            StoredKey(
                int(spi),
                bytes(nai),
                bytes(hk),
                None if coa is None else bytes(coa),
                float(expires),
                int(prf),
                bytes(ar),
            )
            for spi, nai, hk, coa, expires, prf, ar in rows
        ]

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._write_loop, name="hkp-ar-keystore", daemon=True
        )
        self._thread.start()

    def store(self, key: StoredKey) -> None:
        self._queue.put(("store", key))

    def delete(self, spi: int) -> None:
        self._queue.put(("delete", spi))

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None
        self._db.close()

    def _write_loop(self) -> None:
        while True:
            op = self._queue.get()
            batch = [op]
            while len(batch) < BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = self._apply(batch)
            if stop:
                return

    def _apply(self, batch: list[_Op]) -> bool:
        stop = False
        try:
            self._db.execute("BEGIN")
            for op in batch:
                if op is None:
                    stop = True
                elif op[0] == "store" and isinstance(op[1], StoredKey):
                    key = op[1]
                    self._db.execute(
                        "INSERT OR REPLACE INTO handover_keys VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (key.spi, key.nai, key.hk, key.care_of_address, key.expires_at,
                         key.prf, key.ar_address),
                    )  # fmt: skip
                elif op[0] == "delete" and isinstance(op[1], int):
                    self._db.execute("DELETE FROM handover_keys WHERE spi = ?", (op[1],))
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            log.error("key store %s: %s (changes of this batch lost)", self.path, exc)
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.Error:
                pass
        return stop
