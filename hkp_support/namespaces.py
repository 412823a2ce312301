"""Running a block inside a named network namespace (`ip netns`: /run/netns/NAME), as
hkp-ar (`[ar] netns`), the lab and hkp-flood do: setns(2) through ctypes, since Python
3.11 has no os.setns. Sockets created inside stay in that namespace after the block.

    with entered("hkplab-mn-1a2b"):
        sock = socket.socket(...)
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
from collections.abc import Callable, Iterator
from typing import Any

CLONE_NEWNET = 0x40000000  # <sched.h>

_libc: Any = None


def _setns(fd: int) -> int:
    """setns(fd, CLONE_NEWNET) for this thread: 0, or the errno of the failure."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    return 0 if _libc.setns(fd, CLONE_NEWNET) == 0 else ctypes.get_errno()


@contextlib.contextmanager
def entered(name: str, error: Callable[[int, str], Exception] = OSError) -> Iterator[None]:
    """Run the block with this thread in network namespace `name`, then come back.
    A namespace that cannot be entered or left raises `error(errno, text)` (the caller's
    own exception; OSError by default); what the block raises passes unchanged."""
    original = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        try:
            target = os.open(f"/run/netns/{name}", os.O_RDONLY)
        except OSError as exc:
            raise error(exc.errno or 0, f"network namespace {name!r}: {exc.strerror}") from None
        try:
            if failed := _setns(target):
                raise error(failed, f"setns({name}): {os.strerror(failed)}")
        finally:
            os.close(target)
        try:
            yield
        finally:
            if failed := _setns(original):
                raise error(failed, "cannot return to the original network namespace")
    finally:
        os.close(original)
