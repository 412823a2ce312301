"""The UDP side of hkp-ar's RADIUS client (ar_proxy/radius_client.py): one socket per
`Lane` to one home server, its Identifiers, and replies decoded with pyrad only as far
as they are read, then verified (Response Authenticator, Message-Authenticator) before
the request's callback sees them."""

from __future__ import annotations

import asyncio
import logging
import os
from collections import OrderedDict
from collections.abc import Callable
from typing import cast

from pyrad import packet as rpacket
from pyrad.dictionary import Dictionary

from hkp_radius.wire import radius_attrs

from .clock import Clock
from .config import HomeServer

log = logging.getLogger("hkp-ar.radius")

IDS_PER_SOCKET = 256  # RFC 2865 §3: the Identifier is one octet
AUTHENTICATOR_LENGTH = 16  # RFC 2865 §3
RANDOM_POOL = 4096  # octets read from the OS CSPRNG at once


REPLY_ATTRIBUTES = (
    radius_attrs.HANDOVER_KEY,
    radius_attrs.HKS_NONCE,
    radius_attrs.KEY_LIFETIME,
    radius_attrs.PRF_ATTRIBUTE,
    radius_attrs.TIMESTAMP,
    radius_attrs.STATUS_CODE,
    radius_attrs.RESPONSE_HEADER,
)
Key = int | tuple[int, int]  # a pyrad attribute key: code, or (vendor, code)


def settle(future: asyncio.Future[rpacket.AuthPacket], reply: rpacket.AuthPacket) -> None:
    if not future.done():
        future.set_result(reply)


class RandomPool:
    """The OS CSPRNG read RANDOM_POOL octets at a time, each octet handed out once.
    pyrad draws a Request Authenticator one octet per SystemRandom call (16 getrandom
    syscalls a packet, 5 % of the AR's CPU in issue 14's profile); this is one per
    ~250 packets. Unpredictable as before: the octets are os.urandom's, never reused."""

    def __init__(self, size: int = RANDOM_POOL) -> None:
        self._size = size
        self._pool = b""
        self._at = 0

    def take(self, count: int) -> bytes:
        if self._at + count > len(self._pool):
            self._pool = os.urandom(max(self._size, count))
            self._at = 0
        out = self._pool[self._at : self._at + count]
        self._at += count
        return out


_ReplyFuture = asyncio.Future[rpacket.AuthPacket]  # the verified reply
OnReply = Callable[[rpacket.AuthPacket, rpacket.AuthPacket], None]  # (request, reply)
PROXY_STATE = 33  # RFC 2865 §5.33: VerifyReply compares it with what was sent
MESSAGE_AUTHENTICATOR = 80  # RFC 3579 §3.2
VENDOR_SPECIFIC = 26


class Lane(asyncio.DatagramProtocol):
    """One UDP socket to one home server: up to 256 requests in flight."""

    def __init__(self, server: HomeServer, clock: Clock, reply_keys: frozenset[Key]) -> None:
        self.server = server
        self.clock = clock
        self.transport: asyncio.DatagramTransport | None = None
        self.waiting: dict[int, tuple[rpacket.AuthPacket, OnReply]] = {}
        self.dictionary: Dictionary | None = None
        self.reply_keys = reply_keys
        # When the kernel last reported ICMP port unreachable on this connected socket:
        # nothing listens on the server's port (FreeRADIUS stopped), unlike a server that
        # takes the packets and stays silent (a wrong shared secret).
        self.refused_at: float | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # CPython 3.11's selector datagram transport does not subclass DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def free_id(self, start: int) -> int | None:
        """A free Identifier, searching from `start` (random: RFC 5080 §2.2.1)."""
        if len(self.waiting) >= IDS_PER_SOCKET:
            return None
        for offset in range(IDS_PER_SOCKET):
            candidate = (start + offset) % IDS_PER_SOCKET
            if candidate not in self.waiting:
                return candidate
        return None

    def decode(self, data: bytes) -> rpacket.AuthPacket:
        """The reply as a pyrad packet holding only what is read of it: the attributes
        the client reads (reply_keys), the Message-Authenticator and Proxy-State that
        VerifyReply checks. pyrad's own splitter and vendor decoder do the work; raises
        ValueError on a malformed packet (pyrad's DecodePacket checks, same texts)."""
        code, identifier, length = data[0], data[1], int.from_bytes(data[2:4], "big")
        if length < 20 or len(data) < length:
            raise ValueError("Packet has invalid length")
        raw = data[:length]
        split = rpacket.Packet._PktSplitSubAttributes
        attributes = split(raw, 20)
        if attributes is None:
            raise ValueError("Attribute length is invalid")
        reply = rpacket.AuthPacket(
            code=code, id=identifier, secret=self.server.secret, authenticator=raw[4:20],
            dict=self.dictionary,
        )  # fmt: skip
        reply.raw_packet = raw
        wanted = self.reply_keys
        found: dict[Key, list[bytes]] = {}
        for key, value in attributes:
            if key == VENDOR_SPECIFIC:  # RFC 2865 §5.26: Vendor-Id, then sub-attributes
                # The attributes read are plain values, not TLVs: pyrad's splitter alone
                # (its vendor decoder also looks every sub-attribute up as a TLV).
                subs = split(value, 4) if len(value) >= 6 else None
                if subs is None:
                    continue  # pyrad keeps such a value raw under 26: nothing read there
                vendor = int.from_bytes(value[:4], "big")
                for code, sub_value in subs:
                    if (vendor, code) in wanted:
                        found.setdefault((vendor, code), []).append(sub_value)
            elif key in wanted or key == PROXY_STATE:
                found.setdefault(key, []).append(value)
            elif key == MESSAGE_AUTHENTICATOR:
                reply.message_authenticator = True
                found.setdefault(key, []).append(value)
        for key, values in found.items():  # past pyrad's name-resolving __setitem__
            OrderedDict.__setitem__(reply, key, values)
        return reply

    def datagram_received(self, data: bytes, addr: object) -> None:
        if len(data) < 20:
            return
        entry = self.waiting.get(data[1])
        if entry is None:
            log.debug("reply from %s for no request in flight (id %d)", self.server.name, data[1])
            return
        request, on_reply = entry
        try:
            reply = self.decode(data)
        except Exception as exc:  # pyrad raises several kinds on garbage
            log.warning("undecodable reply from home server %s: %s", self.server.name, exc)
            return
        if reply.code not in (rpacket.AccessAccept, rpacket.AccessReject):  # RFC 5997 too
            log.warning("home server %s answered with code %d", self.server.name, reply.code)
            return
        # A Status-Server answer proves liveness by its Response Authenticator (keyed
        # with the secret); FreeRADIUS signs it only when told to (RFC 5997 §3: SHOULD).
        enforce_ma = request.code != rpacket.StatusServer
        try:
            valid = request.VerifyReply(reply, reply.raw_packet, enforce_ma=enforce_ma)
        except Exception:
            valid = False
        if not valid:
            log.warning(
                "reply from home server %s failed the Response Authenticator or "
                "Message-Authenticator check (a wrong secret, or a late reply to an earlier "
                "request with this identifier): dropped",
                self.server.name,
            )
            return
        del self.waiting[data[1]]
        on_reply(request, reply)

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, ConnectionRefusedError):
            self.refused_at = self.clock.now()
        log.debug("home server %s: %s", self.server.name, exc)
