"""Sending a flood: bounded in duration (and in rate unless told "max"), from one or
many source addresses, to a loopback address or from inside a network namespace only.
Pacing sleeps between batches: this is a load generator, not a test's synchronisation.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass

from .namespace import in_own_namespace

MAX_DURATION = 600.0  # s: a flood never outlives ten minutes
MAX_RATE = 1_000_000.0  # datagrams/s a paced flood may ask for
BATCH = 32  # datagrams between two looks at the clock


class FloodRefused(Exception):
    """The flood would leave the host (or its namespace), or is unbounded."""


@dataclass
class FloodFigures:
    sent: int = 0
    errors: int = 0  # sendto failures (ENOBUFS, ECONNREFUSED after ICMP)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        rate = self.sent / self.seconds if self.seconds > 0 else 0.0
        return {"sent": self.sent, "errors": self.errors, "seconds": round(self.seconds, 3),
                "rate": round(rate, 1)}  # fmt: skip


def check_target(host: str, namespaced: bool | None = None) -> None:
    """Loopback targets anywhere; any target only inside a namespace of our own."""
    try:
        address = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        raise FloodRefused(f"{host!r}: give the target as an IP address") from None
    mapped = getattr(address, "ipv4_mapped", None)
    if address.is_loopback or (mapped is not None and mapped.is_loopback):
        return
    if namespaced if namespaced is not None else in_own_namespace():
        return
    raise FloodRefused(
        f"{host} is not a loopback address and this is the host's own network namespace: "
        "hkp-flood floods only loopback, or runs inside a namespace (--netns NAME)"
    )


def check_bounds(rate: float | None, duration: float) -> None:
    if not 0 < duration <= MAX_DURATION:
        raise FloodRefused(f"--duration must be from 0 to {MAX_DURATION:g} seconds")
    if rate is not None and not 0 < rate <= MAX_RATE:
        raise FloodRefused(f"--rate must be from 0 to {MAX_RATE:g} datagrams/s, or max")


def open_sockets(sources: list[str], target: tuple[str, int]) -> list[socket.socket]:
    """One UDP socket per source address, connected to the target (send() is cheaper
    than sendto(), and the kernel picks nothing)."""
    family = socket.AF_INET6 if ":" in target[0] else socket.AF_INET
    sockets: list[socket.socket] = []
    try:
        for source in sources or [""]:
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sockets.append(sock)
            sock.setblocking(False)
            if source:
                try:
                    sock.bind((source, 0))
                except OSError as exc:
                    raise FloodRefused(
                        f"cannot send from {source}: {exc.strerror} (is it on an interface?)"
                    ) from None
            sock.connect(target)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def send_flood(
    sockets: list[socket.socket], pool: list[bytes], rate: float | None, duration: float
) -> FloodFigures:
    """Send the pool in turn, round robin over the sockets, for `duration` seconds at
    `rate` datagrams/s (None: as fast as this process can)."""
    check_bounds(rate, duration)
    figures = FloodFigures()
    clock = time.monotonic
    start = clock()
    end = start + duration
    socks, n_socks, n_pool = sockets, len(sockets), len(pool)
    i = 0
    while True:
        now = clock()
        if now >= end:
            break
        if rate is not None:
            due = start + i / rate
            if due > now:
                time.sleep(min(due - now, end - now))
                continue
        for _ in range(BATCH):
            try:
                socks[i % n_socks].send(pool[i % n_pool])
            except OSError:
                figures.errors += 1
            i += 1
    figures.sent = i - figures.errors
    figures.seconds = clock() - start
    return figures
