"""MN-facing transports (PROFILE P9): UDP port 54135 and raw IPv6 Next Header 135.

Each hands (datagram, peer, AR address as the MN saw it) to the daemon and sends
HKResps back to a peer. Peers are typed values the role carries without reading them:
UdpPeer (the sender's socket address) or RawPeer (source address and arrival interface);
the CoA validators read them (draft §7.4: the claim is bound to its sender).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import socket
import struct
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any

from hkp_radius.constants import IPPROTO_MH
from hkp_support.namespaces import entered

log = logging.getLogger("hkp-ar.transport")

IPV6_CHECKSUM = 7  # linux/in6.h: the kernel computes/checks the checksum at an offset
MH_CHECKSUM_OFFSET = 4  # RFC 6275 §6.1.1: octets 4-5 of the Mobility Header
IPV6_RECVPKTINFO = getattr(socket, "IPV6_RECVPKTINFO", 49)
IPV6_PKTINFO = getattr(socket, "IPV6_PKTINFO", 50)
MAX_DATAGRAM = 65535
PKTINFO = struct.Struct("=16sI")  # struct in6_pktinfo
# Datagrams handled per readiness callback before yielding to other work, so that a
# flood on one socket cannot starve timers and RADIUS replies.
READ_BATCH = 256
# Seconds a UDP queue whose whole batch admission refused is left unread (a flood: the
# kernel drops the rest of it); short enough that an MN sharing that queue loses little.
READ_PAUSE = 0.1
# Socket receive buffer: a burst of datagrams (a flood, or many MNs at once) queues here
# while the loop works; Linux's default of ~200 KiB holds only a few hundred.
RECEIVE_BUFFER = 4 << 20
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
MULTICAST_PREFIX = 0xFF  # RFC 4291 §2.7, ff00::/8: HKReqs sent to a group are ignored

Deliver = Callable[[bytes, Hashable, bytes], None]


@dataclass(frozen=True)
class UdpPeer:
    """An MN over UDP (P9): the socket address its datagram came from."""

    sockaddr: tuple[Any, ...]

    @property
    def source(self) -> bytes:
        """The sender's address as 16 octets (IPv4 senders as ::ffff:a.b.c.d)."""
        address = ipaddress.ip_address(str(self.sockaddr[0]).partition("%")[0])
        if isinstance(address, ipaddress.IPv4Address):
            return ipaddress.IPv6Address(f"::ffff:{address}").packed
        return address.packed


@dataclass(frozen=True)
class RawPeer:
    """An MN over raw IPv6: the packet's source address and the interface it arrived on
    (IPV6_PKTINFO)."""

    source: bytes
    ifindex: int

    @property
    def source_text(self) -> str:
        return str(ipaddress.IPv6Address(self.source))


def bind_error(what: str, host: str, port: int | None, exc: OSError) -> OSError:
    """An OSError whose text names the address and port (startup-failed, exit 3)."""
    where = f"[{host}]:{port}" if port is not None else f"[{host}]"
    why = "another process holds it" if exc.errno == errno.EADDRINUSE else exc.strerror
    return OSError(exc.errno, f"{what} {where}: cannot bind: {why} ({exc.strerror})")


@contextlib.contextmanager
def network_namespace(name: str | None) -> Iterator[None]:
    """Run the body inside network namespace `name` (ip netns: /run/netns/NAME), then
    come back. Sockets created inside stay in that namespace (Linux setns(2))."""
    if not name:
        yield
        return
    with entered(name):
        yield


def enlarge_receive_buffer(sock: socket.socket) -> None:
    """Beyond net.core.rmem_max when privileged (SO_RCVBUFFORCE), else up to it."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)


class LoopReader:
    """A non-blocking socket the event loop reads with `_readable` once started."""

    sock: socket.socket
    _loop: asyncio.AbstractEventLoop | None = None

    def _readable(self) -> None:
        raise NotImplementedError

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        loop.add_reader(self.sock.fileno(), self._readable)

    def close(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self.sock.fileno())
        self.sock.close()


class UdpTransport:
    """P9 UDP encapsulation: the payload is the MH; the AR-ID is the configured address.

    One or more sockets on the port (ar_proxy.steering: one receive queue per group of
    sources). Each is read in batches of READ_BATCH per readiness callback
    (recvfrom_into one buffer), so a flood costs one loop iteration per batch, not per
    datagram. `gate(host, data)` sees each datagram first, before a peer or a copy of
    the data is made (admission control, issue 15); False drops it. A queue whose whole
    batch the gate refused is left to the kernel for READ_PAUSE: what arrives meanwhile
    is dropped there, at no cost to the daemon."""

    def __init__(
        self,
        deliver: Deliver,
        ar_address: bytes,
        sockets: list[socket.socket],
        gate: Callable[[str, memoryview], bool] | None = None,
    ) -> None:
        self._deliver = deliver
        self._ar_address = ar_address
        self._gate = gate
        self.sockets = sockets
        self._loop: asyncio.AbstractEventLoop | None = None
        self._buffer = bytearray(MAX_DATAGRAM)
        self._view = memoryview(self._buffer)
        self._paused: dict[int, asyncio.TimerHandle] = {}

    @staticmethod
    def open_sockets(listen: str, port: int, queues: int = 1) -> list[socket.socket]:
        from .steering import open_group  # here: transports stays importable alone

        family = socket.AF_INET6 if ":" in listen else socket.AF_INET
        # No SO_REUSEADDR: a second hkp-ar on a taken port must fail to start, not share
        # (and silently take part of) the first one's traffic; open_group claims it.
        try:
            sockets = open_group(family, listen, port, queues)
        except OSError as exc:
            raise bind_error("UDP", listen, port, exc) from None
        for sock in sockets:
            enlarge_receive_buffer(sock)
            sock.setblocking(False)
        return sockets

    @property
    def bound(self) -> str:
        host, port = self.sockets[0].getsockname()[:2]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        for sock in self.sockets:
            loop.add_reader(sock.fileno(), self._readable, sock)

    def close(self) -> None:
        for timer in self._paused.values():
            timer.cancel()
        self._paused.clear()
        for sock in self.sockets:
            if self._loop is not None:
                self._loop.remove_reader(sock.fileno())
            sock.close()
        self._loop = None

    def _resume(self, sock: socket.socket) -> None:
        self._paused.pop(sock.fileno(), None)
        if self._loop is not None:
            self._loop.add_reader(sock.fileno(), self._readable, sock)

    def _readable(self, sock: socket.socket) -> None:
        receive, view, gate, deliver = sock.recvfrom_into, self._view, self._gate, self._deliver
        refused = 0
        for _ in range(READ_BATCH):
            try:
                size, addr = receive(self._buffer)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # ICMP errors of earlier sends surface here
                log.debug("udp: %s", exc)
                continue
            data = view[:size]
            if gate is not None and not gate(addr[0], data):
                refused += 1
                continue
            deliver(bytes(data), UdpPeer(tuple(addr)), self._ar_address)
        if refused == READ_BATCH and self._loop is not None:
            self._loop.remove_reader(sock.fileno())
            self._paused[sock.fileno()] = self._loop.call_later(READ_PAUSE, self._resume, sock)

    def send(self, peer: UdpPeer, wire: bytes) -> None:
        try:
            self.sockets[0].sendto(wire, peer.sockaddr)
        except OSError as exc:  # a full send buffer or an ICMP error: UDP loses it
            log.debug("udp: cannot send to %s: %s", peer.sockaddr[0], exc)


class RawTransport(LoopReader):
    """Raw IPv6, Next Header 135 (P9). The kernel checks the checksum of what arrives
    and fills it in what leaves (IPV6_CHECKSUM, offset 4); IPV6_PKTINFO tells which of
    the AR's addresses the MN used, and the answer leaves from that address."""

    def __init__(self, deliver: Deliver, sock: socket.socket) -> None:
        self._deliver = deliver
        self.sock = sock
        self._loop: asyncio.AbstractEventLoop | None = None

    @staticmethod
    def open_socket(listen: str) -> socket.socket:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_MH)
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_CHECKSUM, MH_CHECKSUM_OFFSET)
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
        if listen not in ("::", ""):
            try:
                sock.bind((listen, 0))
            except OSError as exc:
                sock.close()
                raise bind_error("raw IPv6", listen, None, exc) from None
        enlarge_receive_buffer(sock)
        sock.setblocking(False)
        return sock

    @property
    def bound(self) -> str:
        return f"[{self.sock.getsockname()[0]}] nh {IPPROTO_MH}"

    def _readable(self) -> None:
        for _ in range(READ_BATCH):
            try:
                data, ancillary, _flags, address = self.sock.recvmsg(
                    MAX_DATAGRAM, socket.CMSG_SPACE(PKTINFO.size)
                )
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("raw: %s", exc)
                return
            destination, ifindex = None, address[3]
            for level, kind, payload in ancillary:
                if level == socket.IPPROTO_IPV6 and kind == IPV6_PKTINFO:
                    destination, ifindex = PKTINFO.unpack(payload[: PKTINFO.size])
            if destination is None or destination[0] == MULTICAST_PREFIX:
                continue
            try:
                sender = ipaddress.IPv6Address(address[0].partition("%")[0]).packed
            except ValueError:
                continue
            self._deliver(data, RawPeer(sender, ifindex), destination)

    def send(self, peer: RawPeer, source: bytes, wire: bytes) -> None:
        address, ifindex = peer.source_text, peer.ifindex
        pktinfo = PKTINFO.pack(source, ifindex)
        try:
            self.sock.sendmsg(
                [wire],
                [(socket.IPPROTO_IPV6, IPV6_PKTINFO, pktinfo)],
                0,
                (address, 0, 0, ifindex if address.lower().startswith("fe80") else 0),
            )
        except OSError as exc:
            log.warning("raw: cannot send to %s: %s", address, exc)
