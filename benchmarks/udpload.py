"""A closed-loop UDP load driver for the benchmarks: pre-built datagrams, epoll.

`concurrency` sockets, each with one request in flight: an answer on a socket (any
datagram: one socket has one exchange at a time, so nothing needs matching) sends that
socket's next request at once. A request unanswered after `timeout` seconds is sent
again, up to `retries` times, then counted as failed. CPU of other processes (the
servers) is read from /proc around the run.
"""

from __future__ import annotations

import collections
import os
import selectors
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its threads (/proc/PID/stat, fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def thread_cpu_seconds(pid: int) -> dict[str, float]:
    """utime + stime per thread name (/proc/PID/task/*/comm; hkp-ar names its log and
    key-store threads, the event loop is the thread named after the process)."""
    out: dict[str, float] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as comm:
                name = "loop" if tid == str(pid) else comm.read().strip()
            with open(f"/proc/{pid}/task/{tid}/stat") as stat:
                fields = stat.read().rpartition(")")[2].split()
        except OSError:
            continue  # the thread ended meanwhile
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return out


def calibration_ms() -> float:
    """CPU milliseconds of a fixed pure-Python loop (1,000,000 additions), independent of
    this project's code: figures of runs on differently loaded machines compare after
    dividing by it."""
    begin = time.process_time()
    total = 0
    for i in range(1_000_000):
        total += i
    return (time.process_time() - begin) * 1e3


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@dataclass
class Result:
    sent: int = 0
    answered: int = 0
    failed: int = 0
    retransmissions: int = 0
    wall: float = 0.0
    own_cpu: float = 0.0
    latencies: list[float] = field(default_factory=list)
    answers: list[bytes] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.answered / self.wall if self.wall else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def run(
    requests: Sequence[bytes],
    target: tuple[str, int],
    concurrency: int,
    *,
    timeout: float = 1.0,
    retries: int = 2,
    keep_answers: bool = False,
    on_answer: Callable[[int], None] | None = None,
    matches: Callable[[bytes, bytes], bool] | None = None,
    lane: Callable[[int], int] | None = None,
) -> Result:
    """`matches(request, answer)` tells a late duplicate answer from the awaited one.
    `lane(i)`: the socket (0 .. concurrency-1) that sends request i, each socket its
    requests in order; give every identity one lane, and no identity ever has two
    requests in flight nor one overtaking the other (its timestamps reach the server in
    order: a lagging socket otherwise lets a later request of the same identity win and
    the earlier one is refused as a replay). Default: any free socket takes the next."""
    family = socket.AF_INET6 if ":" in target[0] else socket.AF_INET
    result = Result()
    selector = selectors.DefaultSelector()
    sockets = []
    slots: dict[int, tuple[int, float, int]] = {}  # fd -> (request index, sent at, tries)
    positions: dict[int, int] = {}  # fd -> its lane
    total = len(requests)
    width = min(concurrency, total)
    queues: list[collections.deque[int]] = [collections.deque() for _ in range(width)]
    for index in range(total):
        queues[lane(index) % width if lane is not None else 0].append(index)
    shared = lane is None  # one queue that every socket takes from

    def next_for(position: int) -> int | None:
        queue = queues[0 if shared else position]
        return queue.popleft() if queue else None

    def send(sock: socket.socket, index: int, tries: int) -> None:
        sock.send(requests[index])
        slots[sock.fileno()] = (index, time.perf_counter(), tries)

    cpu0, wall0 = time.process_time(), time.perf_counter()
    try:
        for position in range(width):
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setblocking(False)
            sock.connect(target)
            sockets.append(sock)
            positions[sock.fileno()] = position
            selector.register(sock, selectors.EVENT_READ, sock)
            first = next_for(position)
            if first is not None:
                send(sock, first, 0)
                result.sent += 1
        while slots:
            events = selector.select(timeout / 4)
            now = time.perf_counter()
            for key, _ in events:
                sock = key.data
                try:
                    data = sock.recv(65535)
                except (BlockingIOError, ConnectionRefusedError):
                    continue
                slot = slots.get(sock.fileno())
                if slot is None or (matches is not None and not matches(requests[slot[0]], data)):
                    continue  # a late answer to a request already answered or given up on
                del slots[sock.fileno()]
                result.answered += 1
                result.latencies.append(now - slot[1])
                if keep_answers:
                    result.answers.append(data)
                if on_answer is not None:
                    on_answer(result.answered)
                following = next_for(positions[sock.fileno()])
                if following is not None:
                    send(sock, following, 0)
                    result.sent += 1
            for sock in sockets:
                slot = slots.get(sock.fileno())
                if slot is None or now - slot[1] < timeout:
                    continue
                index, _, tries = slot
                if tries < retries:
                    result.retransmissions += 1
                    send(sock, index, tries + 1)
                else:
                    del slots[sock.fileno()]
                    result.failed += 1
                    following = next_for(positions[sock.fileno()])
                    if following is not None:
                        send(sock, following, 0)
                        result.sent += 1
    finally:
        result.wall = time.perf_counter() - wall0
        result.own_cpu = time.process_time() - cpu0
        for sock in sockets:
            selector.unregister(sock)
            sock.close()
        selector.close()
    return result
