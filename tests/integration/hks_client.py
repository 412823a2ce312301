"""Helpers for the FreeRADIUS HKS tests: build HKReqs per PROFILE P2-P5 and send them
to a FreeRadiusInstance with pyrad, the way the AR does (PROFILE P8)."""

from __future__ import annotations

import hashlib
import hmac
import os
import select
import socket
import struct
import time
from dataclasses import dataclass
from typing import Any

import pyrad.packet

from hkp_radius import crypto
from hkp_radius.constants import PRF, MacAlgorithm, MacSubtype, NonceSubtype
from hkp_radius.wire import ntp
from hkp_radius.wire import radius_attrs as ra
from hkp_radius.wire.messages import HKReq
from hkp_radius.wire.options import (
    HandoverNonce,
    MacOption,
    MobileNodeIdentifier,
    Option,
    Timestamp,
)
from hkp_support.freeradius import FreeRadiusInstance

AR_ADDRESS = bytes.fromhex("20010db8000000000000000000000001")
CARE_OF_ADDRESS = bytes.fromhex("20010db8000000010000000000000002")
VENDOR_SPECIFIC = 26  # RFC 2865 §5.26
VENDOR = 32473  # PROFILE P8 default Vendor-Id
MESSAGE_AUTHENTICATOR = 80
WINDOW = 64  # requests in flight (ids are 8 bits)
RawAttributes = list[tuple[int, bytes]]


@dataclass(frozen=True)
class BuiltRequest:
    wire: bytes
    nai: bytes
    mn_nonce: bytes
    message_id: int
    prf: int
    mac_algorithm: int
    timestamp: int | None


def now_ntp(offset: float = 0.0) -> int:
    return ntp.to_ntp(time.time() + offset)


def build_hkreq(
    nai: bytes,
    hmk: bytes,
    *,
    message_id: int = 7,
    prf: int = PRF.HMAC_SHA1,
    mac_algorithm: int = MacAlgorithm.HMAC_SHA1,
    timestamp: int | None = None,
    with_mac: bool = True,
    sign_with: bytes | None = None,
    mn_nonce: bytes | None = None,
) -> BuiltRequest:
    mn_nonce = mn_nonce or os.urandom(16)
    options: list[Option] = [
        MobileNodeIdentifier(nai),
        HandoverNonce(NonceSubtype.MN_NONCE, mn_nonce),
    ]
    if timestamp is not None:
        options.append(Timestamp(timestamp))
    known = crypto.supported_mac_algorithm(mac_algorithm)
    if with_mac:  # an algorithm nobody implements gets a made-up AUTH
        options.append(MacOption(MacSubtype.MN_HKS, mac_algorithm, b"" if known else bytes(20)))
    request = HKReq(message_id, False, prf, CARE_OF_ADDRESS, tuple(options))
    if with_mac and known:
        hik = sign_with or crypto.derive_hik(hmk, prf, message_id, mac_algorithm)
        wire = crypto.sign_message(request, {MacSubtype.MN_HKS: hik})
    else:
        wire = request.encode()
    return BuiltRequest(wire, nai, mn_nonce, message_id, prf, mac_algorithm, timestamp)


def access_request(client: Any, built: BuiltRequest, **kwargs: Any) -> Any:
    packet = client.CreateAuthPacket(code=pyrad.packet.AccessRequest, **kwargs)
    for name, value in ra.access_request_attributes(
        built.wire, built.nai, AR_ADDRESS, CARE_OF_ADDRESS, nas_identifier="ar-test"
    ):
        packet.AddAttribute(name, value)
    return packet


def send(client: Any, built: BuiltRequest) -> Any:
    return client.SendPacket(access_request(client, built))


def attributes(reply: Any) -> dict[str, list[Any]]:
    return {name: list(reply[name]) for name in reply.keys() if isinstance(name, str)}


def handover_key_values(client: Any, raw: bytes) -> list[bytes]:
    """The raw (still encrypted) values of every HKP-Handover-Key VSA in a RADIUS
    packet, in order; vendor and number from the client's dictionary."""
    definition = client.dict.attributes[ra.HANDOVER_KEY]
    vendor_id = client.dict.vendors.GetForward(definition.vendor)
    values, offset = [], 20  # RFC 2865 §3: attributes follow the 20-octet header
    while offset < len(raw):
        kind, length = raw[offset], raw[offset + 1]
        value = raw[offset + 2 : offset + length]
        # RFC 2865 §5.26: Vendor-Id (4), vendor type (1), vendor length (1), value
        if kind == VENDOR_SPECIFIC and int.from_bytes(value[:4], "big") == vendor_id:
            if value[4] == definition.code:
                values.append(value[6 : 6 + value[5] - 2])
        offset += length
    return values


def vsa(vendor_type: int, value: bytes) -> tuple[int, bytes]:
    value = value[:247]
    return 26, struct.pack("!IBB", VENDOR, vendor_type, len(value) + 2) + value


def raw_request(nai: bytes, wire: bytes, ar_address: bytes = AR_ADDRESS) -> RawAttributes:
    """The P8 attributes of an Access-Request for `fire` (User-Name as octets)."""
    chunks = [vsa(1, chunk) for chunk in ra.split_mobility_header(wire)]
    return [(1, nai), *chunks, vsa(2, ar_address)]


def encode(identifier: int, attrs: RawAttributes, secret: bytes) -> bytes:
    body = b"".join(bytes((t, len(v) + 2)) + v for t, v in attrs if len(v) <= 253)
    ma = bytes((MESSAGE_AUTHENTICATOR, 18)) + bytes(16)
    authenticator = os.urandom(16)
    length = 20 + len(ma) + len(body)
    head = bytes((1, identifier)) + struct.pack("!H", length) + authenticator
    mac = hmac.new(secret, head + ma + body, hashlib.md5).digest()
    return head + ma[:2] + mac + body


def fire(instance: FreeRadiusInstance, requests: list[RawAttributes]) -> dict[int, int]:
    """Send all requests, at most WINDOW unanswered at once; count reply codes."""
    codes: dict[int, int] = {}
    pending: dict[int, float] = {}  # id -> deadline
    queue = list(enumerate(requests))
    free_ids = list(range(256))
    deadline_all = time.monotonic() + 120
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        while (queue or pending) and time.monotonic() < deadline_all:
            while queue and len(pending) < WINDOW and free_ids:
                _, attrs = queue.pop()
                identifier = free_ids.pop()
                sock.sendto(
                    encode(identifier, attrs, instance.secret), (instance.address, instance.port)
                )
                pending[identifier] = time.monotonic() + 1.0
            ready, _, _ = select.select([sock], [], [], 0.05)
            if ready:
                while True:
                    try:
                        data = sock.recv(4096)
                    except BlockingIOError:
                        break
                    if len(data) >= 20 and data[1] in pending:
                        codes[data[0]] = codes.get(data[0], 0) + 1
                        del pending[data[1]]
                        free_ids.insert(0, data[1])
            now = time.monotonic()
            for identifier in [i for i, t in pending.items() if t < now]:  # no answer: fine
                del pending[identifier]
                free_ids.insert(0, identifier)
                codes[0] = codes.get(0, 0) + 1
    assert not queue and not pending, "the run did not finish in time"
    return codes
