"""What the runner asks of the operating system: reading a socket dry, the kernel's
arrival time of a datagram, processes (alive, RSS), the open-files limit."""

from __future__ import annotations

import fcntl
import os
import resource
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

SIOCGSTAMP = 0x8906  # Linux: struct timeval of the last datagram read from a socket


def enable_stamps(sock: socket.socket) -> None:
    """Have the kernel stamp the socket's datagrams on arrival: the first SIOCGSTAMP on
    a socket turns that on (and fails, nothing read yet)."""
    try:
        fcntl.ioctl(sock.fileno(), SIOCGSTAMP, bytes(16))
    except OSError:
        pass


def arrival(sock: socket.socket) -> float:
    """When the datagram last read from `sock` arrived, on time.monotonic()'s clock
    (the kernel stamps it with the wall clock); +inf where the kernel cannot say."""
    try:
        stamp = fcntl.ioctl(sock.fileno(), SIOCGSTAMP, bytes(16))
    except OSError:
        return float("inf")
    seconds, micros = struct.unpack("@ll", stamp)
    return float(seconds) + float(micros) / 1e6 - (time.time() - time.monotonic())


def drain(sock: socket.socket) -> Iterator[bytes]:
    while True:
        try:
            yield sock.recv(65535)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # ICMP port unreachable surfaces here
            return


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def allow_files(count: int) -> None:
    """Raise the soft open-files limit to `count` where allowed (mh: a socket a case)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < count:
        wanted = count if hard == resource.RLIM_INFINITY else min(count, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def rss_kib(pid: int | None) -> int | None:
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None
