"""The HKS replay state (PROFILE P5) in SQLite: the last accepted timestamp per NAI.

Persisted, so that a restart does not reopen a replay window. FreeRADIUS calls the
module from several worker threads (and an operator may run two servers on one
file), so the compare-and-store is one conditional upsert. Two connections whatever the
number of threads: one for reads (under a lock; rlm_python3 runs one call at a time
anyway) and one for commits (one leader at a time). FreeRADIUS starts and retires
worker threads with the load, so a connection per thread, kept until detach, would
leak a connection, its descriptors and its page cache with each retired thread. Both
are opened on first use, after any fork of FreeRADIUS's start-up.

Two steps, so that one fsync covers many accepts although rlm_python3 (3.2.1) lets
one call into the module run at a time (a mutex per module instance, and 3.2.1
aborts with a second python3 instance): `stage` decides against the last timestamps
this process knows (read once per NAI, then kept) and queues the upsert; `settle`
returns once the transaction holding it is committed (WAL, synchronous=FULL:
fsynced). The module stages in `authenticate` and settles in `post_auth`, so the
upserts of every request decided in between share one commit. Group commit, leader
style: a `settle` that finds no commit under way commits every queued upsert (at most
GROUP_MAX per transaction); one that finds a commit under way waits, and when the
leader is done the first waiter left over becomes the next leader. No call waits to
gather a group. A conditional upsert that stores nothing at commit (another server
on the file stored a newer timestamp) settles False. `record_if_newer` is both steps.
The durability note is docs/hks.md (### Replay state durability).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import struct
import threading
from collections.abc import Callable

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
_SELECT = "SELECT last_timestamp FROM hkp_replay WHERE nai = ?"
BUSY_TIMEOUT_SECONDS = 5.0  # long enough to ride out another writer's commit
GROUP_MAX = 64  # upserts per transaction at most
JOURNAL_MODE = "WAL"
SYNCHRONOUS = "FULL"  # a commit is fsynced before any reply that depends on it
# NAIs whose last timestamp is kept in memory; past it the memory starts afresh (each
# NAI is then read once more). Above any deployment's MN count we know of.
KNOWN_MAX = 1_000_000


class NoticePipe:
    """A pipe the background committer writes commit notices to (one per FreeRADIUS
    worker thread, read by that thread's post-auth). Closed when the last reference
    goes: a staged upsert keeps its pipe open, so a notice never reaches a reused
    descriptor. The committer's end does not block: a full pipe (a thread whose waits
    did not run) loses its newest notices instead of stopping every thread's commits."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.write_fd, False)

    def __del__(self) -> None:
        os.close(self.read_fd)
        os.close(self.write_fd)


# (pipe, ticket): once committed, the ticket and the outcome are written to the pipe
# as NOTICE (8-octet ticket, 1 octet: 1 stored, 0 not stored or not committed).
Notice = tuple[NoticePipe, int]
NOTICE = struct.Struct(">QB")


class _Pending:
    """One record_if_newer call: its upsert, its outcome, and its turn to lead."""

    __slots__ = (
        "done", "error", "finished", "lead", "nai", "notice", "stored", "timestamp", "waiting"
    )  # fmt: skip

    def __init__(self, nai: bytes, timestamp: bytes, notice: Notice | None = None) -> None:
        self.nai = nai
        self.timestamp = timestamp
        self.notice = notice  # told the outcome once committed (the background committer)
        self.done = threading.Event()  # set when finished, or when made the leader
        self.finished = False
        self.lead = False
        self.waiting = False  # its caller is in settle
        self.stored = False
        self.error: str | None = None


class SQLiteReplayStore:
    """`hkp_radius.hks.ReplayStore` over one SQLite file."""

    def __init__(self, path: str, busy_timeout: float = BUSY_TIMEOUT_SECONDS) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self._lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._reader: sqlite3.Connection | None = None
        self._writer: sqlite3.Connection | None = None  # the leader's (one at a time)
        self._wake = threading.Condition(self._lock)  # the background committer waits here
        self._committer: threading.Thread | None = None
        self._stopping = False
        self._on_error: Callable[[str], None] | None = None
        self._queue: list[_Pending] = []
        self._committing = False
        self._known: dict[bytes, bytes] = {}  # NAI -> last timestamp, staged or stored
        self.commits = 0  # transactions committed (the benchmark reads groups = upserts/commits)
        self.upserts = 0
        directory = os.path.dirname(path) or "."
        if not os.path.isdir(directory):
            raise ConfigError(
                f"replay_db {path}: directory {directory} does not exist; create it, "
                "writable by the user FreeRADIUS runs as"
            )
        try:
            with contextlib.closing(self._open()) as connection, connection:
                connection.execute(_SCHEMA)
        except sqlite3.Error as exc:
            raise ConfigError(
                f"replay_db {path}: cannot open it ({exc}); it and its directory must be "
                "writable by the user FreeRADIUS runs as"
            ) from None

    def _open(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self.path,
            timeout=self.busy_timeout,
            isolation_level=None,
            check_same_thread=False,  # used by whichever thread reads or leads
        )
        connection.execute(f"PRAGMA journal_mode={JOURNAL_MODE}")
        connection.execute(f"PRAGMA synchronous={SYNCHRONOUS}")
        return connection

    def _stored(self, nai: bytes) -> bytes | None:
        """The timestamp stored for `nai` (8 octets), read on the one read connection."""
        with self._read_lock:
            if self._reader is None:
                self._reader = self._open()
            row = self._reader.execute(_SELECT, (nai,)).fetchone()
        return None if row is None else bytes(row[0])

    def last_accepted(self, nai: bytes) -> int | None:
        stored = self._stored(nai)
        return None if stored is None else int.from_bytes(stored, "big")

    def commit_in_background(self, on_error: Callable[[str], None] | None = None) -> None:
        """From now on one thread of ours commits every staged upsert, in groups (all
        that were staged while the previous commit ran), and writes each one's notice;
        callers do not lead. Started from a worker thread (FreeRADIUS may fork after
        instantiate; threads do not survive a fork)."""
        with self._lock:
            if self._committer is not None:
                return
            self._committing = True  # permanently: settle() only waits
            self._on_error = on_error  # told each failed commit's error (the module logs)
            self._committer = threading.Thread(
                target=self._commit_forever, name="hkp-hks-commit", daemon=True
            )
        self._committer.start()

    def _commit_forever(self) -> None:
        while True:
            with self._wake:
                while not self._queue and not self._stopping:
                    self._wake.wait()
                if not self._queue:
                    return
            try:
                self._lead(None)
            except Exception:  # noqa: S112 - its group was told not committed; keep committing
                continue

    def stage(self, nai: bytes, timestamp: int, notice: Notice | None = None) -> _Pending | None:
        """Queue the upsert if `timestamp` is newer than the last one known for `nai`
        (None: a replay). The caller must `settle` it before answering."""
        value = timestamp.to_bytes(8, "big")
        stored = None if nai in self._known else self._stored(nai)
        with self._lock:  # check and stage in one step: workers race on one NAI
            known = self._known.get(nai)
            last = known if stored is None or (known is not None and known > stored) else stored
            if last is not None and value <= last:
                self._known[nai] = last
                return None
            if len(self._known) >= KNOWN_MAX:
                self._known.clear()
            self._known[nai] = value
            pending = _Pending(nai, value, notice)
            self._queue.append(pending)
            if self._committer is not None:
                self._wake.notify()
        return pending

    def settle(self, pending: _Pending) -> bool:
        """Return once `pending` is committed (True) or found older than the stored
        timestamp (False); lead the commit if none is under way."""
        with self._lock:
            if not pending.finished:
                pending.waiting = True
                if not self._committing:
                    self._committing = pending.lead = True
        while not pending.finished:
            if pending.lead:
                self._lead(pending)
                continue
            pending.done.wait()  # releases the GIL
            with self._lock:  # the leader sets it under the lock: no wake-up is lost
                if not pending.finished and not pending.lead:
                    pending.done.clear()
        if pending.error is not None:
            raise sqlite3.OperationalError(f"replay_db {self.path}: {pending.error}")
        return pending.stored

    def record_if_newer(self, nai: bytes, timestamp: int) -> bool:
        pending = self.stage(nai, timestamp)
        return pending is not None and self.settle(pending)

    def flush(self) -> None:
        """Commit whatever is queued (detach: nothing answered waits for it)."""
        with self._lock:
            last = self._queue[-1] if self._queue else None
        if last is not None:
            try:
                self.settle(last)
            except sqlite3.Error:
                pass

    def _lead(self, leader: _Pending | None) -> None:
        """Commit the first GROUP_MAX queued upserts, then hand over to the first
        queued caller that waits in `settle` (a staged upsert nobody settles yet
        rides along in some group but never leads)."""
        with self._lock:
            group, self._queue = self._queue[:GROUP_MAX], self._queue[GROUP_MAX:]
        committed = False
        connection: sqlite3.Connection | None = None
        try:
            if self._writer is None:
                self._writer = self._open()
            connection = self._writer
            connection.execute("BEGIN IMMEDIATE")
            for pending in group:
                cursor = connection.execute(_UPSERT, (pending.nai, pending.timestamp))
                pending.stored = cursor.rowcount == 1
            connection.execute("COMMIT")
            committed = True
            for pending in group:
                if not pending.stored:  # another server stored a newer one: read again
                    self._known.pop(pending.nai, None)
            self.commits += 1
            self.upserts += len(group)
        except sqlite3.Error as exc:
            for pending in group:
                pending.error = str(exc)
            if leader is None and self._on_error is not None:
                self._on_error(f"{len(group)} upserts not committed: {exc}")
            try:
                if connection is not None:
                    connection.execute("ROLLBACK")
            except sqlite3.Error:
                pass
        finally:
            if not committed:
                self._known.clear()  # staged values that were not stored: read them again
                for pending in group:
                    pending.stored = False
                    pending.error = pending.error or "not committed"
            for pending in group:
                if pending.notice is not None:
                    _tell(pending.notice, pending.stored)
            with self._lock:
                for pending in group:
                    pending.finished = True
                    pending.done.set()
                if leader is not None:  # (the background committer leads the next one)
                    leader.lead = False
                    successor = next((p for p in self._queue if p.waiting), None)
                    if successor is None:
                        self._committing = False
                    else:
                        successor.lead = True
                        successor.done.set()

    def close(self) -> None:
        """Commit what is staged, stop the committer, close both connections
        (FreeRADIUS detach, one thread)."""
        with self._wake:
            self._stopping = True
            self._wake.notify()
            committer = self._committer
        if committer is not None:
            committer.join()
        with self._read_lock:
            for connection in (self._reader, self._writer):
                if connection is not None:
                    connection.close()
            self._reader = self._writer = None


def _tell(notice: Notice, stored: bool) -> None:
    pipe, ticket = notice
    try:
        os.write(pipe.write_fd, NOTICE.pack(ticket, 1 if stored else 0))
    except OSError:
        pass  # full (BlockingIOError): its thread's waits did not run; nobody waits for it
