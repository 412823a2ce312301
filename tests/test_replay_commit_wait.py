"""Issue 14: the HKS's replay commit awaited in post-auth (replay_commit = post-auth).

Real SQLite files, the real background committer thread and real pipes; the disk is
held by another connection's write transaction, so that the order of events is forced:
no notice (the perl waiter's go-ahead, mods-config/perl/hkp/commit_wait.pl) is written
before the transaction holding the record is committed, every record staged while a
commit runs shares the next one, and a failed commit is told as not stored.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

from freeradius_module import rlm_hkp_hks as module
from freeradius_module.replay_sqlite import NOTICE, NoticePipe, SQLiteReplayStore
from hkp_radius.hks.log_summary import DecisionLog
from hkp_radius.hks.role import HKSPolicy
from hkp_radius.wire import ntp
from hkp_radius.wire import radius_attrs as ra
from tests.test_hks import NAI, hkreq
from tests.test_hks_module import module_lists
from tests.test_replay_group_commit import wait_for

PIPE_CAPACITY = 65536  # Linux's default pipe buffer


def unread(pipe: NoticePipe) -> bool:
    """Whether a notice waits in the pipe (a non-blocking look)."""
    os.set_blocking(pipe.read_fd, False)
    try:
        data = os.read(pipe.read_fd, NOTICE.size)
    except BlockingIOError:
        return False
    finally:
        os.set_blocking(pipe.read_fd, True)
    raise AssertionError(f"unexpected notice {data!r}")


def notice(pipe: NoticePipe) -> tuple[int, int]:
    return NOTICE.unpack(os.read(pipe.read_fd, NOTICE.size))  # type: ignore[return-value]


def test_no_notice_before_the_commit_and_records_staged_meanwhile_share_one(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "replay.sqlite")
    store = SQLiteReplayStore(path)
    store.commit_in_background()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # the write lock: every commit waits for it
    pipes = [NoticePipe() for _ in range(6)]
    assert store.stage(b"nai0", 1000, (pipes[0], 1)) is not None
    wait_for(lambda: not store._queue, "the committer to take the first record")
    for i in range(1, 6):
        assert store.stage(b"nai%d" % i, 1000 + i, (pipes[i], i + 1)) is not None
    assert store.stage(b"nai1", 1001, (pipes[1], 99)) is None  # a replay: not staged
    assert not any(unread(pipe) for pipe in pipes)  # nothing committed, nothing told
    blocker.execute("ROLLBACK")
    assert [notice(pipe) for pipe in pipes] == [(i + 1, 1) for i in range(6)]
    assert store.upserts == 6 and store.commits == 2  # the first, then the group
    check = sqlite3.connect(path)
    assert dict(check.execute("SELECT nai, last_timestamp FROM hkp_replay")) == {
        b"nai%d" % i: (1000 + i).to_bytes(8, "big") for i in range(6)
    }
    check.close()
    blocker.close()
    store.close()


def test_a_failed_background_commit_is_told_as_not_stored(tmp_path: Path) -> None:
    path = str(tmp_path / "replay.sqlite")
    blocker = sqlite3.connect(path, isolation_level=None)
    store = SQLiteReplayStore(path, busy_timeout=0.0)  # its connections give up at once
    store.commit_in_background()
    blocker.execute("BEGIN IMMEDIATE")
    pipe = NoticePipe()
    store.stage(b"bob", 5, (pipe, 7))
    assert notice(pipe) == (7, 0)  # the waiter rejects: no accept without a record
    blocker.execute("ROLLBACK")
    store.stage(b"bob", 5, (pipe, 8))  # forgotten, so the same timestamp may retry
    assert notice(pipe) == (8, 1)
    assert store.last_accepted(b"bob") == 5
    store.close()
    blocker.close()


def test_a_pipe_nobody_reads_does_not_stop_the_committer(tmp_path: Path) -> None:
    """A worker thread whose waits never ran (a site without the post-auth wait, say)
    leaves its notices unread until its pipe is full. The committer, shared by every
    thread, must not block on it: the notices that do not fit are dropped, and every
    record is still committed and the other threads are still told."""
    store = SQLiteReplayStore(str(tmp_path / "replay.sqlite"))
    store.commit_in_background()
    stuck, other = NoticePipe(), NoticePipe()
    over = PIPE_CAPACITY // NOTICE.size + 100  # more notices than the pipe holds
    for i in range(over):
        assert store.stage(b"mn%d" % i, 1 + i, (stuck, 1 + i)) is not None
    assert store.stage(b"last", 1, (other, over + 1)) is not None
    assert notice(other) == (over + 1, 1)  # told, after every record before it
    assert store.upserts == over + 1
    assert store.last_accepted(b"mn%d" % (over - 1)) == over
    assert notice(stuck) == (1, 1)  # the first ones are there, in order
    store.close()


@pytest.fixture
def deferring_module(tmp_path: Path):  # type: ignore[no-untyped-def]
    saved = dict(module._state)
    store = SQLiteReplayStore(str(tmp_path / "replay.sqlite"))
    module._state.update(
        policy=HKSPolicy(), replay=store, log=DecisionLog(), commit_in_post_auth=True
    )
    try:
        yield store
    finally:
        module.detach()
        module._state.clear()
        module._state.update(saved)


def test_module_accept_carries_the_commit_wait_and_the_notice_follows_the_commit(
    deferring_module: SQLiteReplayStore,
) -> None:
    timestamp = ntp.to_ntp(time.time())
    rcode, lists = module.authenticate(module_lists(hkreq(timestamp=timestamp)))
    assert rcode == module.RLM_MODULE_OK
    control = {name: value for name, op, value in lists["config"]}
    assert set(control) == {ra.COMMIT_WAIT, ra.STAGED_KEY}
    # The key waits in the control list: the reply carries none until the commit.
    assert ra.HANDOVER_KEY_SALTED not in {name for name, _, _ in lists["reply"]}
    fd, ticket = (int(part) for part in control[ra.COMMIT_WAIT].split(":"))
    done, stored = NOTICE.unpack(os.read(fd, NOTICE.size))
    assert (done, stored) == (ticket, 1)
    assert deferring_module.last_accepted(NAI) == timestamp  # on disk once told
    # The same HKReq again: a replay, refused in the module call, nothing to wait for.
    rcode, lists = module.authenticate(module_lists(hkreq(timestamp=timestamp)))
    assert rcode == module.RLM_MODULE_REJECT and "config" not in lists


def test_replay_commit_setting_is_checked() -> None:
    from freeradius_module.config import parse_module_config
    from hkp_radius.errors import ConfigError

    assert parse_module_config({}).replay_commit == "inline"  # absent: the old way
    assert parse_module_config({"replay_commit": "post-auth"}).replay_commit == "post-auth"
    with pytest.raises(ConfigError, match="replay_commit = 'later'"):
        parse_module_config({"replay_commit": "later"})
