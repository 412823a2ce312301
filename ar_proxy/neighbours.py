"""CoA validation (draft §6.3, §7.4) and neighbour-cache monitoring (§6.3: "When the
neighbor cache entry for the CoA expires, the AR MUST disassociate the key").

Validators answer `await validate(coa, nai, peer) -> bool` for a direct request (a
non-NULL Key CoA not already tied to the NAI, §6.3); docs/ar.md says what each checks:
- NeighbourValidator: the kernel's IPv6 neighbour cache over rtnetlink (stdlib
  AF_NETLINK): the CoA must have an entry in one of the configured states; over raw
  IPv6 on the interface the request arrived on (IPV6_PKTINFO).
- StaticValidator: a table file, one "ADDRESS [NAI]" per line ("#" comments).
- PermissiveValidator: every CoA is valid (labs only).
Both real validators first bind the claim to its sender (§7.4, issue 16): the Key CoA
must be the request's source address (`match_source`, default on).
NeighbourMonitor follows RTM_DELNEIGH / FAILED notifications and reports the address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import struct
import threading
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from hkp_radius.errors import ConfigError

from .transports import LoopReader, RawPeer, UdpPeer

log = logging.getLogger("hkp-ar.coa")

NETLINK_ROUTE = 0
RTM_NEWNEIGH, RTM_DELNEIGH, RTM_GETNEIGH = 28, 29, 30
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_DUMP = 0x01, 0x300
RTMGRP_NEIGH = 0x04  # 1 << (RTNLGRP_NEIGH - 1)
NDA_DST = 1
NUD_FAILED = 0x20
NLMSGHDR = struct.Struct("=IHHII")
NDMSG = struct.Struct("=BBHiHBB")
RTATTR = struct.Struct("=HH")
NETLINK_TIMEOUT = 2.0  # a local dump answers in microseconds; this only bounds a stuck kernel
RECV_BUFFER = 1 << 16


class Validator(Protocol):
    def decide(self, coa: bytes, nai: bytes, peer: Hashable) -> bool | None:
        """The answer when it needs no I/O (no task per HKReq, issue 14), else None:
        then validate() is awaited."""
        ...

    async def validate(self, coa: bytes, nai: bytes, peer: Hashable) -> bool: ...

    def close(self) -> None: ...


def sent_from(coa: bytes, peer: Hashable) -> bool:
    """§7.4: a direct request's Key CoA is the address it was sent from."""
    if isinstance(peer, (RawPeer, UdpPeer)):
        return peer.source == coa
    return False


class PermissiveValidator:
    def decide(self, coa: bytes, nai: bytes, peer: Hashable) -> bool | None:
        return True

    async def validate(self, coa: bytes, nai: bytes, peer: Hashable) -> bool:
        return True

    def close(self) -> None:
        pass


class StaticValidator:
    def __init__(self, path: str, match_source: bool = True) -> None:
        self.match_source = match_source
        self.table: dict[bytes, bytes | None] = {}
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                words = line.split("#", 1)[0].split()
                if not words:
                    continue
                if len(words) > 2:
                    raise ConfigError(f"{path}:{number}: write 'ADDRESS [NAI]'")
                try:
                    address = ipaddress.IPv6Address(words[0]).packed
                except ValueError:
                    raise ConfigError(
                        f"{path}:{number}: {words[0]!r} is not an IPv6 address"
                    ) from None
                self.table[address] = words[1].encode("utf-8") if len(words) == 2 else None

    def decide(self, coa: bytes, nai: bytes, peer: Hashable) -> bool | None:
        if self.match_source and not sent_from(coa, peer):
            return False
        if coa not in self.table:
            return False
        owner = self.table[coa]
        return owner is None or owner == nai

    async def validate(self, coa: bytes, nai: bytes, peer: Hashable) -> bool:
        return bool(self.decide(coa, nai, peer))

    def close(self) -> None:
        pass


def _messages(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(type, sequence number, body) of each netlink message in `data`."""
    offset = 0
    while offset + NLMSGHDR.size <= len(data):
        length, kind, _flags, seq, _pid = NLMSGHDR.unpack_from(data, offset)
        if length < NLMSGHDR.size or offset + length > len(data):
            return
        yield kind, seq, data[offset + NLMSGHDR.size : offset + length]
        offset += (length + 3) & ~3


def parse_neighbour(body: bytes) -> tuple[bytes | None, int, int]:
    """(IPv6 destination or None, NUD state, ifindex) of an ndmsg and its attributes."""
    if len(body) < NDMSG.size:
        return None, 0, 0
    family, _, _, ifindex, state, _flags, _type = NDMSG.unpack_from(body)
    if family != socket.AF_INET6:
        return None, state, ifindex
    offset = NDMSG.size
    while offset + RTATTR.size <= len(body):
        length, kind = RTATTR.unpack_from(body, offset)
        if length < RTATTR.size:
            break
        if kind == NDA_DST and length - RTATTR.size == 16:
            return body[offset + 4 : offset + 20], state, ifindex
        offset += (length + 3) & ~3
    return None, state, ifindex


class NeighbourValidator:
    """Looks the CoA up in a fresh dump of the neighbour table, off the event loop."""

    def __init__(
        self,
        states: int,
        sock_factory: Callable[[], socket.socket],
        match_source: bool = True,
    ) -> None:
        self.states = states
        self.match_source = match_source
        self._sock = sock_factory()  # created in the access network's namespace
        self._sock.settimeout(NETLINK_TIMEOUT)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hkp-ar-neigh")
        self._lock = threading.Lock()
        self._seq = 0

    @staticmethod
    def open_socket() -> socket.socket:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        sock.bind((0, 0))
        return sock

    def lookup(self, coa: bytes) -> dict[int, int]:
        """The NUD state of each of `coa`'s entries by interface index (blocking)."""
        with self._lock:
            self._seq += 1
            request = NDMSG.pack(socket.AF_INET6, 0, 0, 0, 0, 0, 0)
            header = NLMSGHDR.pack(NLMSGHDR.size + len(request), RTM_GETNEIGH,
                                   NLM_F_REQUEST | NLM_F_DUMP, self._seq, 0)  # fmt: skip
            self._sock.send(header + request)
            found: dict[int, int] = {}
            while True:
                data = self._sock.recv(RECV_BUFFER)
                for kind, seq, body in _messages(data):
                    if seq != self._seq:
                        continue  # the rest of a dump an earlier lookup timed out on
                    if kind in (NLMSG_DONE, NLMSG_ERROR):
                        return found
                    if kind == RTM_NEWNEIGH:
                        address, state, ifindex = parse_neighbour(body)
                        if address == coa:
                            found[ifindex] = found.get(ifindex, 0) | state

    def decide(self, coa: bytes, nai: bytes, peer: Hashable) -> bool | None:
        if self.match_source and not sent_from(coa, peer):
            return False  # §7.4: claiming someone else's address
        return None  # the neighbour cache is asked, off the loop

    async def validate(self, coa: bytes, nai: bytes, peer: Hashable) -> bool:
        if self.match_source and not sent_from(coa, peer):
            return False  # §7.4: claiming someone else's address
        loop = asyncio.get_running_loop()
        try:
            entries = await loop.run_in_executor(self._executor, self.lookup, coa)
        except OSError as exc:
            log.warning("neighbour cache lookup failed: %s", exc)
            return False
        if isinstance(peer, RawPeer):  # the entry must be on the arrival interface
            return bool(entries.get(peer.ifindex, 0) & self.states)
        return any(state & self.states for state in entries.values())

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._sock.close()


class NeighbourMonitor(LoopReader):
    """Reports IPv6 neighbour entries that went (deleted, or FAILED)."""

    def __init__(self, on_gone: Callable[[bytes], None], sock: socket.socket) -> None:
        self._on_gone = on_gone
        self.sock = sock
        self._loop: asyncio.AbstractEventLoop | None = None

    @staticmethod
    def open_socket() -> socket.socket:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        sock.bind((0, RTMGRP_NEIGH))
        sock.setblocking(False)
        return sock

    def _readable(self) -> None:
        while True:
            try:
                data = self.sock.recv(RECV_BUFFER)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # ENOBUFS: notifications lost; carry on
                log.warning("neighbour monitor: %s", exc)
                return
            for kind, _seq, body in _messages(data):
                address, state, _ = parse_neighbour(body)
                if address is None:
                    continue
                if kind == RTM_DELNEIGH or (kind == RTM_NEWNEIGH and state & NUD_FAILED):
                    self._on_gone(address)
