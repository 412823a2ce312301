"""P11 (issue 12, Must show 1): FBU/FBack/BADF vectors both ways, Wireshark's decoder
reading our FBU and FBack, and the PAR role refusing a BADF made with a wrong key,
another SPI or over an edited message (and a replay, a wrong source, SPI 0)."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet6 import IPv6
from scapy.packet import Raw
from scapy.utils import wrpcap

from hkp_radius.ar import (
    FastBindingVerifier,
    FbuAccepted,
    FbuRefused,
    KeyTable,
    SendFBack,
    StoredKey,
)
from hkp_radius.constants import PRF
from hkp_radius.crypto.fmip import sign_fmip, verify_badf
from hkp_radius.errors import DecodeError, LocalProtocolError
from hkp_radius.wire.fmip import (
    AlternateCareOfAddress,
    BindingAuthorizationFMIP,
    FastBindingAck,
    FastBindingUpdate,
    RawFmipOption,
    decode_fmip,
    fmip_type,
    sequence_newer,
)


def _packed(address: str) -> bytes:
    return ipaddress.IPv6Address(address).packed


HK = bytes(range(1, 21))
SPI = 0x12345678
PCOA = _packed("2001:db8:1::10")
PAR = _packed("2001:db8:1::1")
NCOA = _packed("2001:db8:2::10")
NAI = b"alice@example.net"

# Written by hand from RFC 5568 §6.3.1 / RFC 6275 §6.1.7 and §6.2, P11 framing.
FBU_HEAD = bytes.fromhex(
    "3b"  # Payload Proto 59
    "06"  # Header Len: (6 + 1) * 8 = 56 octets
    "08"  # MH Type 8: Fast Binding Update
    "00"  # Reserved
    "0000"  # Checksum (zero over UDP; the kernel fills it for raw IPv6)
    "0007"  # Sequence # 7
    "8000"  # A=1 H=0 L=0 K=0, Reserved
    "000f"  # Lifetime 15 x 4 s
    "0100"  # PadN, 0 octets: the Alternate CoA at 8n+6 (offset 14)
    "0310"
    "20010db8000200000000000000000010"  # Alternate CoA 2001:db8:2::10
    "010400000000"  # PadN, 4 octets: the BADF at 8n+6 (offset 38)
    "15"  # Option Type 21: BADF
    "10"  # Option Length 16: SPI + Authenticator (RFC 6275 §6.2 rule, erratum E1)
    "12345678"  # SPI
)
FBACK_HEAD = bytes.fromhex(
    "3b0309000000"  # Payload Proto, Header Len 3 (32 octets), MH Type 9, Reserved, Checksum
    "00"  # Status 0: accepted
    "00"  # K=0, Reserved
    "0007"  # Sequence # 7
    "000f"  # Lifetime 15
    "0100"  # PadN 0: the BADF at 14
    "1510"
    "12345678"
)
# HMAC-SHA1(HK, PCoA | PAR | head) cut to 96 bits, checked with `openssl dgst -sha1 -mac
# HMAC -macopt hexkey:0102...14` over the same concatenation.
FBU_AUTH = bytes.fromhex("7ee1d1e2f619c60f53b92f5e")
FBACK_AUTH = bytes.fromhex("d1088801ae9e104d57813127")
FBU_WIRE = FBU_HEAD + FBU_AUTH
FBACK_WIRE = FBACK_HEAD + FBACK_AUTH


def _fbu(sequence: int = 7, spi: int = SPI) -> FastBindingUpdate:
    return FastBindingUpdate(
        sequence=sequence,
        lifetime=15,
        badf=BindingAuthorizationFMIP(spi),
        options=(AlternateCareOfAddress(NCOA),),
    )


def test_fbu_vector_both_ways() -> None:
    assert sign_fmip(_fbu(), HK, PCOA, PAR) == FBU_WIRE
    message = decode_fmip(FBU_WIRE)
    assert message == FastBindingUpdate(
        sequence=7,
        lifetime=15,
        badf=BindingAuthorizationFMIP(SPI, FBU_AUTH),
        options=(AlternateCareOfAddress(NCOA),),
    )
    assert isinstance(message, FastBindingUpdate) and message.alternate_coa == NCOA
    assert fmip_type(FBU_WIRE) == 8


def test_fback_vector_both_ways() -> None:
    fback = FastBindingAck(status=0, sequence=7, lifetime=15, badf=BindingAuthorizationFMIP(SPI))
    assert sign_fmip(fback, HK, PCOA, PAR) == FBACK_WIRE
    decoded = decode_fmip(FBACK_WIRE)
    assert decoded == FastBindingAck(0, 7, BindingAuthorizationFMIP(SPI, FBACK_AUTH), 15)
    assert verify_badf(FBACK_WIRE, decoded.badf, HK, PCOA, PAR)


def test_authenticator_is_rfc6275_construction() -> None:
    mobility_data = PCOA + PAR + FBU_HEAD
    assert hmac.new(HK, mobility_data, hashlib.sha1).digest()[:12] == FBU_AUTH
    # The Checksum is taken as zero: a kernel-filled checksum does not change the BADF.
    with_sum = FBU_WIRE[:4] + b"\xab\xcd" + FBU_WIRE[6:]
    assert verify_badf(with_sum, decode_fmip(with_sum).badf, HK, PCOA, PAR)


def test_unknown_options_kept_and_flags_decoded() -> None:
    fbu = FastBindingUpdate(
        sequence=65535,
        lifetime=0,
        badf=BindingAuthorizationFMIP(300),
        ack_requested=False,
        home_registration=True,
        link_local=True,
        key_management=True,
        options=(RawFmipOption(7, b"\x01\x02\x03"),),
    )
    wire = sign_fmip(fbu, HK, PCOA, PAR)
    assert len(wire) % 8 == 0
    assert decode_fmip(wire) == FastBindingUpdate(
        65535, BindingAuthorizationFMIP(300, wire[-12:]), 0, False, True, True, True, fbu.options
    )


@pytest.mark.parametrize(
    ("wire", "what"),
    [
        (FBU_WIRE[:-1], "truncated"),
        (FBU_WIRE + bytes(8), "Header Len disagrees"),
        (b"\x3a" + FBU_WIRE[1:], "Payload Proto"),
        (FBU_WIRE[:2] + b"\x05" + FBU_WIRE[3:], "other MH type"),
        (FBU_HEAD[:-6] + b"\x15\x0c" + FBU_HEAD[-4:] + FBU_AUTH, "BADF length 12"),
        (FBU_WIRE[:14] + b"\x03\x0f" + FBU_WIRE[16:], "Alternate CoA length"),
        (FBU_WIRE[:38] + bytes(18), "no BADF"),
        (FBACK_WIRE[:14] + b"\x15\x14" + FBACK_WIRE[16:], "BADF past the end"),
        (FBACK_WIRE[:12] + b"\x01\x30" + FBACK_WIRE[14:], "PadN past the end"),
    ],
)
def test_malformed_raises_decode_error_only(wire: bytes, what: str) -> None:
    with pytest.raises(DecodeError):
        decode_fmip(wire)


@given(st.binary(max_size=80))
def test_garbage_raises_decode_error_only(data: bytes) -> None:
    for wire in (data, FBU_WIRE[: len(data) % 57] + data):
        try:
            decode_fmip(wire)
        except DecodeError:
            pass


@pytest.mark.parametrize("trailer", [b"\x01\x06" + bytes(6), b"\x07\x06" + bytes(6), bytes(8)])
def test_nothing_after_badf(trailer: bytes) -> None:
    # RFC 5568 §6.4.5: the BADF is the last option; P11: its Authenticator ends the message
    # (padding after it too is refused: MH Data would no longer be all that precedes it).
    body = bytearray(FBACK_WIRE + trailer)
    body[1] = 4  # Header Len: 40 octets
    with pytest.raises(DecodeError, match="after the BADF"):
        decode_fmip(bytes(body))


def test_encode_side_misuse_is_local_error() -> None:
    with pytest.raises(LocalProtocolError):
        BindingAuthorizationFMIP(SPI, b"short")
    with pytest.raises(LocalProtocolError):
        sign_fmip(decode_fmip(FBU_WIRE), HK, PCOA, PAR)  # already signed
    with pytest.raises(LocalProtocolError):
        FastBindingUpdate(sequence=1 << 16, badf=BindingAuthorizationFMIP(SPI))


def test_sequence_newer_modulo() -> None:
    assert sequence_newer(8, 7) and sequence_newer(0, 65535)
    assert not sequence_newer(7, 7) and not sequence_newer(6, 7)


# ---- the PAR role ----------------------------------------------------------------------


def _par(now: float = 0.0) -> tuple[FastBindingVerifier, KeyTable]:
    keys = KeyTable()
    keys.add(StoredKey(SPI, NAI, HK, PCOA, 3600.0, PRF.HMAC_SHA1, PAR), deadline=now + 3600)
    keys.add(StoredKey(SPI + 1, b"bob@example.net", bytes(20), None, 3600.0, 1, PAR), 3600)
    return FastBindingVerifier(keys), keys


def test_par_accepts_and_answers_authenticated_fback() -> None:
    par, _ = _par()
    outputs = par.receive_fbu(FBU_WIRE, "peer", PCOA, PAR, now=1.0)
    assert outputs[0] == FbuAccepted(SPI, NAI, 7, PCOA, NCOA)
    send = outputs[1]
    assert isinstance(send, SendFBack) and send.destination == NCOA and send.peer == "peer"
    assert send.wire == FBACK_WIRE  # Status 0, same Sequence # and Lifetime, BADF by the HK
    assert par.last_sequence(SPI) == 7


def _refusal(outputs: Sequence[object]) -> str:
    assert len(outputs) == 1 and isinstance(outputs[0], FbuRefused), outputs
    return outputs[0].reason


def test_par_refuses_wrong_key() -> None:
    par, _ = _par()
    forged = sign_fmip(_fbu(), bytes(20), PCOA, PAR)
    assert "does not verify" in _refusal(par.receive_fbu(forged, "p", PCOA, PAR, 1.0))


def test_par_refuses_other_spi() -> None:
    par, _ = _par()
    # The right HK under an SPI that is not its own: another MN's key, or none at all.
    other = sign_fmip(_fbu(spi=SPI + 1), HK, PCOA, PAR)
    assert "does not verify" in _refusal(par.receive_fbu(other, "p", PCOA, PAR, 1.0))
    unknown = sign_fmip(_fbu(spi=SPI + 2), HK, PCOA, PAR)
    assert "no unexpired HK" in _refusal(par.receive_fbu(unknown, "p", PCOA, PAR, 1.0))
    send = sign_fmip(_fbu(spi=0), HK, PCOA, PAR)
    assert "SEND" in _refusal(par.receive_fbu(send, "p", PCOA, PAR, 1.0))


@pytest.mark.parametrize("offset", [7, 10, 12, 20, 36, 41])  # Sequence, Lifetime, CoA, SPI
def test_par_refuses_edited_message(offset: int) -> None:
    par, _ = _par()
    edited = bytearray(FBU_WIRE)
    edited[offset] ^= 0x01
    assert _refusal(par.receive_fbu(bytes(edited), "p", PCOA, PAR, 1.0))
    assert par.last_sequence(SPI) is None


def test_par_refuses_replay_wrong_source_and_expired_key() -> None:
    par, _ = _par()
    assert isinstance(par.receive_fbu(FBU_WIRE, "p", PCOA, PAR, 1.0)[0], FbuAccepted)
    assert "replay" in _refusal(par.receive_fbu(FBU_WIRE, "p", PCOA, PAR, 2.0))
    older = sign_fmip(_fbu(sequence=6), HK, PCOA, PAR)
    assert "replay" in _refusal(par.receive_fbu(older, "p", PCOA, PAR, 2.0))
    newer = sign_fmip(_fbu(sequence=8), HK, PCOA, PAR)
    assert "source" in _refusal(par.receive_fbu(newer, "p", NCOA, PAR, 2.0))
    assert "does not verify" in _refusal(par.receive_fbu(newer, "p", PCOA, NCOA, 2.0))
    assert "no unexpired" in _refusal(par.receive_fbu(newer, "p", PCOA, PAR, 3601.0))
    assert isinstance(par.receive_fbu(newer, "p", PCOA, PAR, 3.0)[0], FbuAccepted)


def test_unbound_key_uses_the_source() -> None:
    # A key from a §6.5 refresh (NULL CoA) is bound to no CoA: the FBU's source stands in.
    par, _ = _par()
    bob = sign_fmip(_fbu(spi=SPI + 1), bytes(20), NCOA, PAR)
    outputs = par.receive_fbu(bob, "p", NCOA, PAR, 1.0)
    assert outputs[0] == FbuAccepted(SPI + 1, b"bob@example.net", 7, NCOA, NCOA)
    assert "does not verify" in _refusal(par.receive_fbu(bob, "p", PCOA, PAR, 1.0))


def test_par_refuses_garbage_and_fback() -> None:
    par, _ = _par()
    assert "malformed" in _refusal(par.receive_fbu(b"\x3b\x00\x08", "p", PCOA, PAR, 1.0))
    assert "FBack" in _refusal(par.receive_fbu(FBACK_WIRE, "p", PCOA, PAR, 1.0))


def test_no_key_in_reprs() -> None:
    par, keys = _par()
    outputs = par.receive_fbu(FBU_WIRE, "p", PCOA, PAR, 1.0)
    text = repr(outputs) + repr(list(keys))
    assert HK.hex() not in text and repr(HK) not in text


# ---- an independent decoder: Wireshark's mip6 dissector -----------------------------


TSHARK_FIELDS = (
    "mip6.mhtype",
    "mip6.fbu.seqnr",
    "mip6.fbu.a_flag",
    "mip6.fbu.lifetime",
    "mip6.acoa.acoa",
    "mip6.badff.spi",
    "mip6.badff.auth",
    "mip6.fback.status",
    "mip6.fback.seqnr",
    "_ws.expert",
)


def test_tshark_decodes_fbu_and_fback(tmp_path: Path) -> None:
    tshark = shutil.which("tshark")
    assert tshark, "tshark is installed by scripts/install.sh"
    packets = [
        IPv6(src="2001:db8:1::10", dst="2001:db8:1::1", nh=135) / Raw(FBU_WIRE),
        IPv6(src="2001:db8:1::1", dst="2001:db8:2::10", nh=135) / Raw(FBACK_WIRE),
    ]
    capture = tmp_path / "fmip.pcap"
    wrpcap(str(capture), packets)
    fields = [arg for name in TSHARK_FIELDS for arg in ("-e", name)]
    out = subprocess.run(
        [tshark, "-n", "-r", str(capture), "-T", "fields", "-E", "separator=|", *fields],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.splitlines()
    fbu = dict(zip(TSHARK_FIELDS, out[0].split("|"), strict=True))
    fback = dict(zip(TSHARK_FIELDS, out[1].split("|"), strict=True))
    assert fbu["mip6.mhtype"] == "8" and fbu["mip6.fbu.seqnr"] == "7"
    assert fbu["mip6.fbu.lifetime"] == "15" and fbu["mip6.fbu.a_flag"] in ("1", "True")
    assert fbu["mip6.acoa.acoa"] == "2001:db8:2::10"
    assert fbu["mip6.badff.spi"] == str(SPI) and fbu["_ws.expert"] == ""
    # Wireshark 4.0 shows the Authenticator two octets short (length - 6): a prefix.
    shown = fbu["mip6.badff.auth"].replace(":", "")
    assert len(shown) >= 16 and FBU_AUTH.hex().startswith(shown)
    assert fback["mip6.mhtype"] == "9" and fback["mip6.fback.status"] == "0"
    assert fback["mip6.fback.seqnr"] == "7" and fback["mip6.badff.spi"] == str(SPI)
    assert fback["_ws.expert"] == ""
