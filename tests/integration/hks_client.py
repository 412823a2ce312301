"""Helpers for the FreeRADIUS HKS tests: build HKReqs per PROFILE P2-P5 and send them
to a FreeRadiusInstance with pyrad, the way the AR does (PROFILE P8)."""

from __future__ import annotations

import os
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

AR_ADDRESS = bytes.fromhex("20010db8000000000000000000000001")
CARE_OF_ADDRESS = bytes.fromhex("20010db8000000010000000000000002")
VENDOR_SPECIFIC = 26  # RFC 2865 §5.26


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
