"""MN transports (PROFILE P9): the MH over UDP to an AR's port, or as raw IPv6 Next
Header 135. Adapters only: bytes in and out, no protocol decisions."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from typing import Any, Protocol

from hkp_radius.constants import IPPROTO_MH, MH_MAX_LENGTH

UDP_DEFAULT_PORT = 54135  # P9
# RFC 6275 §6.1.1 / P9: the MH Checksum is octets 4-5; the kernel fills and checks it.
MH_CHECKSUM_OFFSET = 4
IPV6_CHECKSUM = getattr(socket, "IPV6_CHECKSUM", 7)  # Linux value when Python lacks it
# A receive buffer large enough for any MH (P2) plus slack for oversized junk.
RECEIVE_BUFFER = MH_MAX_LENGTH + 512


class Transport(Protocol):
    def fileno(self) -> int: ...

    def send(self, ar_id: bytes, data: bytes) -> None: ...

    def receive(self) -> list[tuple[bytes, bytes]]:
        """Pending datagrams as (data, ar_id of the sender); never blocks."""
        ...

    def local_address(self, ar_id: bytes) -> bytes:
        """The MN's own IPv6 address towards `ar_id` (16 octets): the source address the
        AR sees, the default Key CoA of a direct request (§6.2.1, §7.4)."""
        ...

    def close(self) -> None: ...


def source_towards(host: str, port: int) -> bytes:
    """The address the kernel would send from to (host, port), as 16 octets; an IPv4
    source becomes the IPv4-mapped address a dual-stack AR socket sees (::ffff:a.b.c.d).
    Connecting a UDP socket only asks the routing table; nothing is sent."""
    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.connect(address)
        return as_ipv6(str(probe.getsockname()[0]))


def as_ipv6(text: str) -> bytes:
    """An address as 16 octets, IPv4 as IPv4-mapped (::ffff:a.b.c.d)."""
    ip = ipaddress.ip_address(text.split("%")[0])
    if isinstance(ip, ipaddress.IPv4Address):
        return ipaddress.IPv6Address(f"::ffff:{ip}").packed
    return ip.packed


def parse_endpoint(text: str, default_port: int = UDP_DEFAULT_PORT) -> tuple[str, int]:
    """ "[2001:db8::1]:54135", "127.0.0.1:54135", "::1" or "host" -> (host, port).
    Raises ValueError saying how to write it."""
    text = text.strip()
    try:
        if text.startswith("["):
            host, closed, rest = text[1:].partition("]")
            if not closed or (rest and not rest.startswith(":")):
                raise ValueError(text)
            port = int(rest[1:]) if rest.startswith(":") else default_port
            ipaddress.IPv6Address(host)
        elif text.count(":") == 1:
            host, _, port_text = text.partition(":")
            port = int(port_text)
        else:
            host, port = text, default_port
            if ":" in host:
                ipaddress.IPv6Address(host)
    except ValueError:
        raise ValueError(
            f"{text!r} is not HOST, HOST:PORT or [IPv6]:PORT (an IPv6 address with a port "
            "goes in brackets: [::1]:54135)"
        ) from None
    if not host or not 0 < port < 65536:
        raise ValueError(f"{text!r}: give a host and a port from 1 to 65535")
    return host, port


class UdpTransport:
    """UDP encapsulation (P9): the datagram payload is the MH; checksum zero, ignored.
    `endpoints` maps each AR-ID (16 octets) to that AR's UDP (host, port); `source`
    optionally binds our address (its family must be the endpoints')."""

    def __init__(
        self, endpoints: Mapping[bytes, tuple[str, int]], source: str | None = None
    ) -> None:
        self._source = source
        self._sockets: dict[int, socket.socket] = {}
        self._targets: dict[bytes, tuple[socket.socket, tuple[str, int]]] = {}
        self._senders: dict[tuple[str, int], bytes] = {}
        self._by_source: dict[tuple[Any, ...], bytes] = {}  # recvfrom's address -> AR-ID
        for ar_id, (host, port) in endpoints.items():
            family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
            sock = self._sockets.get(family)
            if sock is None:
                sock = socket.socket(family, socket.SOCK_DGRAM)
                self._sockets[family] = sock
                sock.setblocking(False)
                wildcard = "::" if family == socket.AF_INET6 else "0.0.0.0"
                try:
                    sock.bind((source or wildcard, 0))
                except OSError:
                    self.close()
                    raise
            target = (str(ipaddress.ip_address(address[0])), int(address[1]))
            self._targets[ar_id] = (sock, target)
            self._senders[target] = ar_id
        if len(self._sockets) > 1:
            raise ValueError("all AR endpoints of one UDP transport must share an address family")

    def fileno(self) -> int:
        return next(iter(self._sockets.values())).fileno()

    def send(self, ar_id: bytes, data: bytes) -> None:
        sock, target = self._targets[ar_id]
        try:
            sock.sendto(data, target)
        except OSError:
            pass  # like a lost datagram: the role retransmits (§6.2.1)

    def receive(self) -> list[tuple[bytes, bytes]]:
        out: list[tuple[bytes, bytes]] = []
        for sock in self._sockets.values():
            while True:
                try:
                    data, source = sock.recvfrom(RECEIVE_BUFFER)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    continue  # e.g. ICMP port unreachable surfaced as ECONNREFUSED
                # A sender's address is parsed once (per datagram it cost 6 %, issue 14).
                ar_id = self._by_source.get(source)
                if ar_id is None:
                    key = (str(ipaddress.ip_address(source[0].split("%")[0])), int(source[1]))
                    ar_id = self._senders.get(key)
                    if ar_id is not None:
                        self._by_source[source] = ar_id
                if ar_id is not None:  # datagrams from anyone else are not answers
                    out.append((data, ar_id))
        return out

    def local_port(self) -> int:
        return int(next(iter(self._sockets.values())).getsockname()[1])

    def local_address(self, ar_id: bytes) -> bytes:
        if self._source:
            return as_ipv6(self._source)
        _, (host, port) = self._targets[ar_id]
        return source_towards(host, port)

    def close(self) -> None:
        for sock in self._sockets.values():
            sock.close()


class RawIPv6Transport:
    """Raw IPv6, Next Header 135 (P9); needs CAP_NET_RAW. The kernel computes the MH
    checksum on send and drops bad ones on receipt (IPV6_CHECKSUM, offset 4). The
    destination is the AR-ID itself; `source` optionally binds our address."""

    def __init__(self, source: str | None = None) -> None:
        self._source = source
        self._sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_MH)
        try:
            self._sock.setsockopt(socket.IPPROTO_IPV6, IPV6_CHECKSUM, MH_CHECKSUM_OFFSET)
            if source:
                self._sock.bind((source, 0))
            self._sock.setblocking(False)
        except OSError:
            self._sock.close()
            raise

    def fileno(self) -> int:
        return self._sock.fileno()

    def send(self, ar_id: bytes, data: bytes) -> None:
        try:
            self._sock.sendto(data, (socket.inet_ntop(socket.AF_INET6, ar_id), 0))
        except OSError:
            pass  # like a lost datagram: the role retransmits (§6.2.1)

    def receive(self) -> list[tuple[bytes, bytes]]:
        out: list[tuple[bytes, bytes]] = []
        while True:
            try:
                data, source = self._sock.recvfrom(RECEIVE_BUFFER)
            except (BlockingIOError, InterruptedError):
                return out
            except OSError:
                continue
            out.append((data, socket.inet_pton(socket.AF_INET6, source[0].split("%")[0])))

    def local_address(self, ar_id: bytes) -> bytes:
        if self._source:
            return as_ipv6(self._source)
        return source_towards(socket.inet_ntop(socket.AF_INET6, ar_id), 9)

    def close(self) -> None:
        self._sock.close()
