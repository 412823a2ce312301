"""An independent decoder reads our bytes (issue 2 points 4 and 5): Scapy's IPv6 Mobility
Header, its RFC 4283 MN-ID option, and its `in6_chksum` for the RFC 6275 checksum."""

from __future__ import annotations

import ipaddress

from scapy.all import raw
from scapy.layers.inet6 import IPv6, MIP6MH_Generic, MIP6OptMNID, in6_chksum

from hkp_radius import crypto
from hkp_radius.constants import PRF, MacAlgorithm, MacSubtype, NonceSubtype, Status
from hkp_radius.wire.messages import HKReq, HKResp, decode_message, mh_checksum, with_checksum
from hkp_radius.wire.options import HandoverNonce, MacOption, MobileNodeIdentifier, Timestamp

MN = "2001:db8::100"
AR = "2001:db8::1"
HMK = bytes(range(64))


def _packed(address: str) -> bytes:
    return ipaddress.IPv6Address(address).packed


def _hkreq(nai: bytes = b"alice@example.net") -> bytes:
    request = HKReq(
        message_id=7,
        verify=False,
        prf=PRF.HMAC_SHA1,
        care_of_address=_packed(MN),
        options=(
            MobileNodeIdentifier(nai),
            HandoverNonce(NonceSubtype.MN_NONCE, bytes(range(16))),
            Timestamp(0xE9C1A0B212345678),
            MacOption(MacSubtype.MN_HKS, MacAlgorithm.HMAC_SHA1),
        ),
    )
    hik = crypto.derive_hik(HMK, PRF.HMAC_SHA1, 7, MacAlgorithm.HMAC_SHA1)
    return crypto.sign_message(request, {MacSubtype.MN_HKS: hik})


def _scapy_mh(mh: bytes) -> bytes:
    packet = IPv6(raw(IPv6(src=MN, dst=AR, nh=135) / mh))
    layer = packet[MIP6MH_Generic]
    assert layer.nh == 59 and layer.mhtype == 250 and layer.len == len(mh) // 8 - 1
    # MIP6MH_Generic sizes its body as 8*len - 6 (one unit short): take the layer's bytes.
    return raw(layer)


def test_scapy_parses_our_hkreq_as_a_mobility_header() -> None:
    for nai in (b"a@b", b"alice@example.net", b"x" * 200 + b"@example.net"):
        mh = _hkreq(nai)
        assert _scapy_mh(mh) == mh
        mnid = MIP6OptMNID(mh[24 : 24 + 3 + len(nai)])
        assert mnid.otype == 8 and mnid.subtype == 1 and mnid.id == nai
        assert mnid.olen == len(nai) + 1


def test_checksum_equals_scapy_in6_chksum() -> None:
    messages = [
        _hkreq(),
        _hkreq(b"odd-length@x.y"),
        HKResp(7, False, 1, Status.SUCCESS, 3600, 256, (HandoverNonce(1, bytes(16)),)).encode(),
    ]
    for mh in messages:
        packet = IPv6(src=MN, dst=AR, nh=135)
        expected = in6_chksum(135, packet, mh)
        assert mh_checksum(_packed(MN), _packed(AR), mh) == expected
        filled = with_checksum(_packed(MN), _packed(AR), mh)
        # A filled checksum verifies: the sum over pseudo-header and message is zero.
        assert in6_chksum(135, packet, filled) == 0
        assert decode_message(filled) == decode_message(mh)
