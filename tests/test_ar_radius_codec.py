"""hkp-ar's two shortcuts around pyrad (issue 14), each shown to give pyrad's own answer:
an Access-Request's octets encoded once (ar_proxy.radius_encoding.request_packet) equal
pyrad's RequestPacket(); a reply decoded only as far as it is read (radius_lanes.Lane)
holds the same values as pyrad's full decode for every attribute the client reads, and
verifies (Response Authenticator, Message-Authenticator, Proxy-State) exactly as the
full decode does, for genuine and forged replies. No sockets."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyrad import packet as rpacket
from pyrad.dictionary import Dictionary

from ar_proxy.config import PACKAGED_DICTIONARY, HomeServer
from ar_proxy.radius_client import RadiusClient
from ar_proxy.radius_encoding import request_packet
from ar_proxy.radius_lanes import Lane
from hkp_radius.ar.events import SendAccessRequest
from tests.ar_clock import ManualClock
from tests.ar_helpers import AR_ID, COA, NAI, build_hkreq

SECRET = b"codec-secret"
DICTIONARY = Dictionary(str(PACKAGED_DICTIONARY))
SERVER = HomeServer("hks", "127.0.0.1", 1812, SECRET, 1.0, 1)


def client() -> RadiusClient:
    return RadiusClient(DICTIONARY, lambda ref, answer: None, lambda ref, reason: None)


def lane(radius: RadiusClient) -> Lane:
    made = Lane(SERVER, ManualClock(), radius._reply_keys)
    made.dictionary = DICTIONARY
    return made


def access_request(radius: RadiusClient, message_id: int, identifier: int) -> rpacket.AuthPacket:
    wire = build_hkreq(message_id=message_id, coa=COA)
    return radius._build(SendAccessRequest(1, NAI, wire, AR_ID, COA), SERVER, identifier)


@settings(max_examples=50, deadline=None)
@given(message_id=st.integers(0, 255), identifier=st.integers(0, 255))
def test_a_request_encoded_once_is_pyrads_request_packet(message_id: int, identifier: int) -> None:
    radius = client()
    ours = request_packet(access_request(radius, message_id, identifier))
    theirs = access_request(radius, message_id, identifier)  # same authenticator below
    theirs.authenticator = ours[4:20]
    assert ours == theirs.RequestPacket()


def reply_to(
    request: rpacket.AuthPacket, extra: bool, proxy_state: bytes | None = None
) -> rpacket.AuthPacket:
    reply = request.CreateReply()
    reply.AddAttribute("HKP-HKS-Nonce", bytes(range(16)))
    reply.AddAttribute("HKP-Key-Lifetime", 3600)
    reply.AddAttribute("HKP-PRF", 1)
    reply.AddAttribute("HKP-Timestamp", bytes(8))
    reply.AddAttribute("HKP-Handover-Key", bytes(range(20)))
    if extra:  # attributes the client never reads
        reply.AddAttribute("Reply-Message", "not read")
        reply.AddAttribute("Class", b"\x01\x02")
        reply.AddAttribute("HKP-AR-Address", "2001:db8::9")
    if proxy_state is not None:
        reply.AddAttribute("Proxy-State", proxy_state)
    return reply


@pytest.mark.parametrize("extra", [False, True])
def test_a_reply_decoded_as_far_as_read_holds_what_pyrad_decodes(extra: bool) -> None:
    radius = client()
    request = access_request(radius, 7, 42)
    raw = request_packet(request)
    request = rpacket.AuthPacket(packet=raw, secret=SECRET, dict=DICTIONARY)
    wire = reply_to(request, extra).ReplyPacket()
    ours = lane(radius).decode(wire)
    full = rpacket.AuthPacket(packet=wire, secret=SECRET, dict=DICTIONARY)
    kept = set(OrderedDict.keys(ours))
    assert kept <= radius._reply_keys | {33, 80}
    for key in radius._reply_keys | {80}:
        assert OrderedDict.get(ours, key) == OrderedDict.get(full, key)
    assert (ours.code, ours.id, ours.authenticator) == (full.code, full.id, full.authenticator)
    assert request.VerifyReply(ours, wire, enforce_ma=True)
    answer = radius._answer(SERVER, request, ours)
    assert answer == radius._answer(SERVER, request, full)


def bad_message_authenticator(wire: bytes, request_authenticator: bytes) -> bytes:
    """The Message-Authenticator (first attribute) zeroed, the Response Authenticator
    computed again over that: only the Message-Authenticator check can catch it."""
    assert wire[20] == 80
    forged = wire[:22] + bytes(16) + wire[38:]
    digest = hashlib.md5(forged[:4] + request_authenticator + forged[20:] + SECRET).digest()
    return forged[:4] + digest + forged[20:]


FORGERIES: dict[str, Callable[[bytes, bytes], bytes]] = {
    "response authenticator": lambda w, _: w[:4] + bytes(16) + w[20:],
    "message authenticator": bad_message_authenticator,
    "attribute value": lambda w, _: w[:-1] + bytes((w[-1] ^ 1,)),
    "identifier": lambda w, _: w[:1] + bytes(((w[1] + 1) % 256,)) + w[2:],
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_a_forged_reply_fails_verification_as_with_pyrads_decode(forgery: str) -> None:
    radius = client()
    request = rpacket.AuthPacket(
        packet=request_packet(access_request(radius, 9, 17)), secret=SECRET, dict=DICTIONARY
    )
    wire = FORGERIES[forgery](reply_to(request, True).ReplyPacket(), request.authenticator)
    ours = lane(radius).decode(wire)
    full = rpacket.AuthPacket(packet=wire, secret=SECRET, dict=DICTIONARY)
    assert request.VerifyReply(ours, wire, enforce_ma=True) is False
    assert request.VerifyReply(full, wire, enforce_ma=True) is False


def test_a_reply_with_a_proxy_state_not_sent_fails_verification() -> None:
    """BlastRADIUS: the Proxy-State VerifyReply compares is kept by the short decode."""
    radius = client()
    request = rpacket.AuthPacket(
        packet=request_packet(access_request(radius, 3, 5)), secret=SECRET, dict=DICTIONARY
    )
    wire = reply_to(request, False, proxy_state=b"injected").ReplyPacket()
    ours = lane(radius).decode(wire)
    assert OrderedDict.get(ours, 33) == [b"injected"]
    assert request.VerifyReply(ours, wire, enforce_ma=True) is False


@pytest.mark.parametrize(
    "wire",
    [
        bytes((2, 1, 0, 19)) + bytes(16),  # Length below 20
        bytes((2, 1, 0, 40)) + bytes(16),  # Length beyond the datagram
        bytes((2, 1, 0, 23)) + bytes(16) + bytes((18, 9, 0)),  # attribute beyond the packet
        bytes((2, 1, 0, 22)) + bytes(16) + bytes((18, 1)),  # attribute length below 2
    ],
)
def test_a_malformed_reply_raises_a_value_error(wire: bytes) -> None:
    with pytest.raises(ValueError):
        lane(client()).decode(wire)
