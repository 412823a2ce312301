"""Issue 14: the HKS replay store's group commit (freeradius_module/replay_sqlite.py).

Real SQLite files and real threads. The disk is held by another connection's write
transaction, so that the order of events is forced, not hoped for: the first caller
leads and blocks in BEGIN; the others queue behind it; none returns before the lock is
released and its transaction committed; then the queued ones commit as one group.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

from freeradius_module.replay_sqlite import SQLiteReplayStore

WAITERS = 12
DEADLINE = 10.0


def wait_for(condition: object, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)  # polling interval of a deadline-bound wait


def test_queued_upserts_commit_as_one_group_and_none_returns_before_its_commit(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "replay.sqlite")
    store = SQLiteReplayStore(path)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # the write lock: every commit waits for it
    results: dict[int, bool] = {}

    def call(i: int) -> None:
        results[i] = store.record_if_newer(b"nai%d" % (i % 6), 1000 + i)

    threads = [threading.Thread(target=call, args=(0,))]
    threads[0].start()
    wait_for(lambda: store._committing and not store._queue, "the first call to lead")
    threads += [threading.Thread(target=call, args=(i,)) for i in range(1, WAITERS + 1)]
    for thread in threads[1:]:
        thread.start()
    wait_for(lambda: len(store._queue) == WAITERS, "the other calls to queue")
    assert not results and all(t.is_alive() for t in threads)  # nothing returned yet
    blocker.execute("ROLLBACK")
    for thread in threads:
        thread.join(DEADLINE)
    assert len(results) == WAITERS + 1
    assert store.upserts == WAITERS + 1 and store.commits == 2  # one, then the group
    # Per NAI the last one stored wins; the timestamps grow with i, so each was newer.
    assert all(results.values())
    check = sqlite3.connect(path)
    rows = dict(check.execute("SELECT nai, last_timestamp FROM hkp_replay"))
    assert {nai: int.from_bytes(ts, "big") for nai, ts in rows.items()} == {
        b"nai%d" % n: max(1000 + i for i in range(WAITERS + 1) if i % 6 == n) for n in range(6)
    }
    check.close()
    blocker.close()
    store.close()


def test_one_group_still_refuses_a_replay_inside_it(tmp_path: Path) -> None:
    """Two workers with the same (NAI, timestamp) while a commit is under way: exactly
    one is stored (the second is refused when it stages, against the staged one)."""
    path = str(tmp_path / "replay.sqlite")
    store = SQLiteReplayStore(path)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    outcomes: list[bool] = []
    lock = threading.Lock()

    def call(nai: bytes, timestamp: int) -> None:
        stored = store.record_if_newer(nai, timestamp)
        with lock:
            outcomes.append(stored)

    first = threading.Thread(target=call, args=(b"other", 1))
    first.start()
    wait_for(lambda: store._committing and not store._queue, "the first call to lead")
    twins = [threading.Thread(target=call, args=(b"alice", 77)) for _ in range(2)]
    for thread in twins:
        thread.start()
    wait_for(lambda: len(store._queue) == 1 and outcomes == [False], "one twin queued")
    blocker.execute("ROLLBACK")
    for thread in [first, *twins]:
        thread.join(DEADLINE)
    assert sorted(outcomes) == [False, True, True]
    assert store.last_accepted(b"alice") == 77
    blocker.close()
    store.close()


def test_a_failed_commit_fails_every_call_of_its_group(tmp_path: Path) -> None:
    """A disk error is an error for each caller (no Access-Accept), nothing half-stored."""
    path = str(tmp_path / "replay.sqlite")
    store = SQLiteReplayStore(path)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    errors: list[str] = []
    fresh = SQLiteReplayStore(path, busy_timeout=0.0)  # its connections give up at once
    try:
        fresh.record_if_newer(b"bob", 5)
    except sqlite3.OperationalError as exc:
        errors.append(str(exc))
    assert errors and "locked" in errors[-1] and path in errors[-1]
    blocker.execute("ROLLBACK")
    assert fresh.record_if_newer(b"bob", 5) is True  # the next group works again
    assert store.last_accepted(b"bob") == 5
    for opened in (fresh, store):
        opened.close()
    blocker.close()


def open_descriptors(path: str) -> int:
    """Descriptors of this process open on the replay file or its -wal and -shm files."""
    fds = Path("/proc/self/fd")
    targets = []
    for fd in fds.iterdir():
        try:
            targets.append(os.readlink(fd))
        except OSError:
            continue  # closed meanwhile (the listing's own descriptor)
    return sum(target.startswith(path) for target in targets)


def test_threads_that_come_and_go_leave_no_connection_behind(tmp_path: Path) -> None:
    """FreeRADIUS starts and retires worker threads with the load: 40 short-lived
    threads, each reading and storing a NAI of its own, leave the store with as many
    descriptors on its files as the first two did (a connection per thread, kept
    until detach, leaked a connection per thread)."""
    path = str(tmp_path / "replay.sqlite")
    store = SQLiteReplayStore(path)

    def worker(i: int) -> None:
        assert store.last_accepted(b"mn%d" % i) is None
        assert store.record_if_newer(b"mn%d" % i, 10 + i)

    def run(first: int, count: int) -> None:
        for i in range(first, first + count):
            thread = threading.Thread(target=worker, args=(i,))
            thread.start()
            thread.join(DEADLINE)
            assert not thread.is_alive()

    run(0, 2)
    after_two = open_descriptors(path)
    run(2, 38)
    assert open_descriptors(path) == after_two
    assert [store.last_accepted(b"mn%d" % i) for i in range(40)] == [10 + i for i in range(40)]
    store.close()
    assert open_descriptors(path) == 0
