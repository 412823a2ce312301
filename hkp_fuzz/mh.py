"""Mobility Header level: the HKReq template, structure-aware mutators over its options,
re-signing (the MN-HKS MAC recomputed with the HIK after a mutation) and the reference
check that decides whether a case may be accepted at all.

An HKReq is held as its 6-octet MH header, its 18 fixed octets and a list of option
TLVs, so that a mutator can break what the core's encoder refuses to produce.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from typing import Any

from hkp_radius import crypto
from hkp_radius.constants import PRF, MacAlgorithm, MacSubtype, NonceSubtype
from hkp_radius.errors import DecodeError, HKPError
from hkp_radius.wire import (
    HandoverNonce,
    HKReq,
    HKResp,
    MacOption,
    MobileNodeIdentifier,
    Option,
    Timestamp,
    decode_message,
)
from hkp_radius.wire.messages import V_FLAG

CARE_OF_ADDRESS = bytes.fromhex("20010db8000000010000000000000002")
PAD1, PADN = 0, 1
MAC_OPTION = 251
MN_ID_OPTION = 8
NONCE_OPTION = 250
TIMESTAMP_OPTION = 252
HEADER_LENGTH, FIXED_LENGTH = 6, 18
HMK_MIN_LENGTH = 64


@dataclass
class Layout:
    """An HKReq in pieces; `header_length` None means "computed"."""

    header: bytearray
    fixed: bytearray
    options: list[tuple[int, bytes]]
    header_length: int | None = None

    @classmethod
    def parse(cls, wire: bytes) -> Layout:
        options, offset = [], HEADER_LENGTH + FIXED_LENGTH
        while offset < len(wire):
            kind = wire[offset]
            if kind == PAD1:
                offset += 1
                continue
            length = wire[offset + 1]
            if kind != PADN:
                options.append((kind, wire[offset + 2 : offset + 2 + length]))
            offset += 2 + length
        return cls(bytearray(wire[:HEADER_LENGTH]), bytearray(wire[6:24]), options)

    def encode(self) -> bytes:
        """Options as TLVs, padded before the trailing MAC options to 8 octets (P2)."""
        head = [o for o in self.options if o[0] != MAC_OPTION]
        macs = [o for o in self.options if o[0] == MAC_OPTION]
        if self.options and self.options[-1][0] != MAC_OPTION:  # mutated order: keep it
            head, macs = list(self.options), []
        body = b"".join(_tlv(k, v) for k, v in head)
        tail = b"".join(_tlv(k, v) for k, v in macs)
        size = HEADER_LENGTH + FIXED_LENGTH + len(body) + len(tail)
        pad = -size % 8
        body += b"\x00" if pad == 1 else (bytes((PADN, pad - 2)) + bytes(pad - 2) if pad else b"")
        total = size + pad
        header = bytearray(self.header)
        header[1] = (total // 8 - 1) & 0xFF if self.header_length is None else self.header_length
        return bytes(header) + bytes(self.fixed) + body + tail


def _tlv(kind: int, value: bytes) -> bytes:
    return bytes((kind, len(value) & 0xFF)) + value


def template(
    nai: bytes, rng: random.Random, *, timestamp: int | None = None, prf: int = PRF.HMAC_SHA1
) -> bytes:
    """A well-formed, unsigned HKReq (zero AUTH) from the case's own random source."""
    options: list[Option] = [
        MobileNodeIdentifier(nai),
        HandoverNonce(NonceSubtype.MN_NONCE, rng.randbytes(16)),
    ]
    if timestamp is not None:
        options.append(Timestamp(timestamp))
    options.append(MacOption(MacSubtype.MN_HKS, MacAlgorithm.HMAC_SHA1))
    return HKReq(rng.randrange(256), False, prf, CARE_OF_ADDRESS, tuple(options)).encode()


class _FixedDraws(random.Random):
    """A random source whose draws are given: what `template` draws, known in advance."""

    def __init__(self, nonce: bytes, message_id: int) -> None:
        super().__init__(0)
        self.nonce, self.message_id = nonce, message_id

    def randbytes(self, n: int) -> bytes:
        return self.nonce[:n]

    def randrange(self, *args: Any, **kwargs: Any) -> int:
        return self.message_id


class Templates:
    """`template` for one NAI and Timestamp, without re-encoding: the core encodes the
    template once and a case's template is that encoding with its Message ID and MN
    nonce put in. Checked at construction against a second encoding by the core; where
    the splice would differ (it never has), every template is encoded by the core."""

    NONCE_LENGTH = 16

    def __init__(self, nai: bytes, timestamp: int | None) -> None:
        self.nai, self.timestamp = nai, timestamp
        first = bytes(range(0xA0, 0xB0))
        wire = template(nai, _FixedDraws(first, 0x5A), timestamp=timestamp)
        offset = wire.find(first)
        self.head, self.tail, self.offset = wire[:offset], wire[offset + 16 :], offset
        again = bytes(range(0x30, 0x40))
        self.spliced = offset > 7 and wire.count(first) == 1
        if self.spliced:
            expected = template(nai, _FixedDraws(again, 0xC3), timestamp=timestamp)
            self.spliced = self._splice(again, 0xC3) == expected

    def _splice(self, nonce: bytes, message_id: int) -> bytes:
        head = self.head
        return head[:6] + bytes((message_id,)) + head[7:] + nonce + self.tail

    def draw(self, rng: random.Random) -> bytes:
        """template(nai, rng, timestamp=...): the same draws, the same bytes."""
        if not self.spliced:
            return template(self.nai, rng, timestamp=self.timestamp)
        nonce = rng.randbytes(self.NONCE_LENGTH)
        return self._splice(nonce, rng.randrange(256))


def sign(wire: bytes, hmk: bytes | None) -> bytes:
    """Recompute every MN-HKS AUTH that an HIK can be derived for (P3, P4); other
    octets stay as the mutators left them. Without an HMK the wire is returned as is."""
    return Signer(hmk).sign(wire)


class Signer:
    """`sign` with the HIKs of one HMK kept: an HIK depends only on (PRF, Message ID,
    MAC algorithm), at most 8 x 256 x 16 of them, so each is derived once per run."""

    def __init__(self, hmk: bytes | None) -> None:
        self.hmk = hmk
        self.hiks: dict[tuple[int, int, int], bytes | None] = {}

    def _hik(self, prf: int, message_id: int, algorithm: int) -> bytes | None:
        key = (prf, message_id, algorithm)
        try:
            return self.hiks[key]
        except KeyError:
            pass
        assert self.hmk is not None
        hik: bytes | None
        try:
            hik = crypto.derive_hik(self.hmk, prf, message_id, algorithm)
        except HKPError:
            hik = None
        self.hiks[key] = hik
        return hik

    def sign_at(self, wire: bytes, offset: int) -> bytes:
        """`sign` for a wire whose one MAC option is an MN-HKS one at `offset` of a
        known PRF and algorithm with zero Checksum (a template): no option walk."""
        if self.hmk is None:
            return wire
        algorithm = wire[offset + 3] & 0x0F
        hik = self._hik((wire[7] >> 4) & 0x07, wire[6], algorithm)
        if hik is None:
            return wire
        end = offset + 4
        auth_length = wire[offset + 1] - 2
        auth = crypto.compute_mac(algorithm, hik, wire[:end])[:auth_length]
        return wire[:end] + auth + wire[end + len(auth) :]

    def sign(self, wire: bytes) -> bytes:
        if self.hmk is None or len(wire) < HEADER_LENGTH + FIXED_LENGTH:
            return wire
        message_id, prf = wire[6], (wire[7] >> 4) & 0x07
        offset, out = HEADER_LENGTH + FIXED_LENGTH, bytearray(wire)
        while offset + 1 < len(out):
            kind = out[offset]
            if kind == PAD1:
                offset += 1
                continue
            length = out[offset + 1]
            if kind == MAC_OPTION and length >= 2 and out[offset + 2] == MacSubtype.MN_HKS:
                algorithm = out[offset + 3] & 0x0F
                auth_length = length - 2
                if crypto.supported_prf(prf) and crypto.supported_mac_algorithm(algorithm):
                    hik = self._hik(prf, message_id, algorithm)
                    if hik is None:
                        return bytes(out)
                    end = offset + 4
                    mac_input = bytes(out[:4]) + b"\x00\x00" + bytes(out[6:end])
                    auth = crypto.compute_mac(algorithm, hik, mac_input)[:auth_length]
                    out[end : end + len(auth)] = auth
            offset += 2 + length
        return bytes(out)


@dataclass(frozen=True)
class Reference:
    """What the fuzzer knows of a Mobility Header: whether it may be accepted."""

    valid: bool
    reason: str
    nai: bytes | None = None
    mn_nonce: bytes | None = None
    prf: int | None = None


def reference(wire: bytes, hmk: bytes | None, nai: bytes | None) -> Reference:
    """A case may get an Access-Accept (or HKResp Success) only when the core decodes
    its HKReq, its MN-ID is the NAI the request names, and (with an HMK) its MN-HKS MAC
    verifies. Anything else must be refused."""
    try:
        message = decode_message(wire)
    except DecodeError as exc:
        return Reference(False, f"does not decode: {type(exc).__name__}")
    if not isinstance(message, HKReq):
        return Reference(False, "not an HKReq")
    mn_id = message.mn_id
    if mn_id is None or (nai is not None and mn_id != nai):
        return Reference(False, "MN-ID missing or not the User-Name")
    mac = message.mac(MacSubtype.MN_HKS)
    if mac is None or not crypto.supported_mac_algorithm(mac.algorithm):
        return Reference(False, "no MN-HKS MAC of a known algorithm")
    if not crypto.supported_prf(message.prf):
        return Reference(False, "unknown PRF")
    if hmk is not None:
        try:
            hik = crypto.derive_hik(hmk, message.prf, message.message_id, mac.algorithm)
        except HKPError:
            return Reference(False, "no HIK for these parameters")
        if not crypto.verify_mac(wire, message, MacSubtype.MN_HKS, hik):
            return Reference(False, "MN-HKS MAC does not verify")
    return Reference(True, "valid", mn_id, message.mn_nonce, message.prf)


# --- mutators: each takes (rng, layout) and returns a description of what it did ---


def _pick(rng: random.Random, layout: Layout) -> int | None:
    return rng.randrange(len(layout.options)) if layout.options else None


def m_option_length(rng: random.Random, layout: Layout) -> str:
    """An option's length octet off by a little or a lot (no re-layout)."""
    index = _pick(rng, layout)
    if index is None:
        return "none"
    kind, value = layout.options[index]
    value = rng.choice([value[:-1], value + b"\x00", b"", value[: rng.randrange(len(value) + 1)]])
    layout.options[index] = (kind, value)
    return f"opt{kind}-len{len(value)}"


def m_option_order(rng: random.Random, layout: Layout) -> str:
    rng.shuffle(layout.options)
    return ",".join(str(k) for k, _ in layout.options)


def m_duplicate_option(rng: random.Random, layout: Layout) -> str:
    index = _pick(rng, layout)
    if index is None:
        return "none"
    layout.options.insert(index, layout.options[index])
    return f"opt{layout.options[index][0]}"


def m_unknown_option(rng: random.Random, layout: Layout) -> str:
    kind = rng.choice([2, 3, 7, 100, 200, 252, 253, 254, 255, rng.randrange(2, 256)])
    value = rng.randbytes(rng.choice([0, 1, 2, 16, 40]))
    layout.options.insert(rng.randrange(len(layout.options) + 1), (kind, value))
    return f"opt{kind}-len{len(value)}"


def m_prf(rng: random.Random, layout: Layout) -> str:
    prf = rng.choice([0, 1, 2, 2, 3, 7])
    layout.fixed[1] = (layout.fixed[1] & ~0x70 & 0xFF) | (prf << 4)
    return f"prf{prf}"


def m_mac_algorithm(rng: random.Random, layout: Layout) -> str:
    for index, (kind, value) in enumerate(layout.options):
        if kind == MAC_OPTION and len(value) >= 2:
            algorithm = rng.choice([0, 1, 2, 3, 15, 255])
            auth_length = {1: 20, 2: 32}.get(algorithm & 0x0F, len(value) - 2)
            new = bytes((value[0], algorithm)) + bytes(auth_length)
            layout.options[index] = (kind, new)
            return f"alg{algorithm}"
    return "none"


def m_v_flag(rng: random.Random, layout: Layout) -> str:
    layout.fixed[1] ^= V_FLAG
    return "toggled"


def m_reserved(rng: random.Random, layout: Layout) -> str:
    layout.fixed[1] ^= rng.choice([0x01, 0x02, 0x08])
    return "set"


def m_nai_size(rng: random.Random, layout: Layout) -> str:
    for index, (kind, value) in enumerate(layout.options):
        if kind == MN_ID_OPTION:
            size = rng.choice([0, 1, 2, 200, 253, rng.randrange(3, 120)])
            nai = (value[1:] * 255)[: max(size - 1, 0)]
            layout.options[index] = (kind, value[:1] + nai if size else b"")
            return f"len{size}"
    return "none"


def m_nonce_size(rng: random.Random, layout: Layout) -> str:
    for index, (kind, value) in enumerate(layout.options):
        if kind == NONCE_OPTION and len(value) >= 2:
            size = rng.choice([0, 1, 3, 4, 15, 64, 200])
            layout.options[index] = (kind, value[:2] + rng.randbytes(size))
            return f"nonce{size}"
    return "none"


def m_timestamp(rng: random.Random, layout: Layout) -> str:
    """A Timestamp far off, zero, or of the wrong size; or one where there was none."""
    value = rng.choice([bytes(8), b"\xff" * 8, rng.randbytes(8), rng.randbytes(4)])
    for index, (kind, _) in enumerate(layout.options):
        if kind == TIMESTAMP_OPTION:
            layout.options[index] = (kind, value)
            return f"len{len(value)}"
    layout.options.insert(0, (TIMESTAMP_OPTION, value))
    return f"added-len{len(value)}"


def m_header(rng: random.Random, layout: Layout) -> str:
    which = rng.choice(["proto", "length", "type"])
    if which == "proto":
        layout.header[0] = rng.choice([1, 6, 17, 255])
    elif which == "length":
        layout.header_length = rng.randrange(256)
    else:
        layout.header[2] = rng.choice([0, 5, 249, 251, 252, 255])
    return which


def m_message_id(rng: random.Random, layout: Layout) -> str:
    layout.fixed[0] = rng.randrange(256)
    return f"id{layout.fixed[0]}"


STRUCTURED = {
    "mh.option-length": m_option_length,
    "mh.option-order": m_option_order,
    "mh.duplicate-option": m_duplicate_option,
    "mh.unknown-option": m_unknown_option,
    "mh.prf": m_prf,
    "mh.mac-algorithm": m_mac_algorithm,
    "mh.v-flag": m_v_flag,
    "mh.reserved": m_reserved,
    "mh.nai-size": m_nai_size,
    "mh.nonce-size": m_nonce_size,
    "mh.timestamp": m_timestamp,
    "mh.header": m_header,
    "mh.message-id": m_message_id,
}

_STRUCTURED_NAMES = sorted(STRUCTURED)


def byte_level(rng: random.Random, wire: bytes) -> tuple[str, bytes]:
    """Mutations below the structure: flips, truncation, garbage after the end."""
    which = rng.choice(["flip", "truncate", "append", "garbage"])
    if which == "flip" and wire:
        buf = bytearray(wire)
        for _ in range(rng.randint(1, 4)):
            buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
        return "mh.bytes:flip", bytes(buf)
    if which == "truncate":
        cut = rng.randrange(len(wire) + 1)
        return f"mh.bytes:truncate{cut}", wire[:cut]
    if which == "append":
        return "mh.bytes:append", wire + rng.randbytes(rng.randint(1, 16))
    return "mh.bytes:garbage", rng.randbytes(rng.randint(1, 300))


def mutate(
    rng: random.Random,
    wire: bytes,
    hmk: bytes | None,
    count: int = 1,
    signer: Signer | None = None,
) -> tuple[list[str], bytes]:
    """Apply `count` mutators to an unsigned template. Structured ones are re-signed
    (crypto-valid: the case passes the MAC check when its fields allow a HIK); byte
    level ones are applied after signing, so they break the MAC too."""
    chain: list[str] = []
    layout = Layout.parse(wire)
    late = []
    for _ in range(count):
        if rng.random() < 0.8:
            name = rng.choice(_STRUCTURED_NAMES)
            chain.append(f"{name}:{STRUCTURED[name](rng, layout)}")
        else:
            late.append(rng.random())
    out = (signer or Signer(hmk)).sign(layout.encode())
    for _ in late:
        name, out = byte_level(rng, out)
        chain.append(name)
    return chain, out


def valid_hmk(hmk: bytes | None) -> bytes | None:
    """Our draft §6.1 check: an HMK below 64 octets cannot sign (returned as None)."""
    return hmk if hmk is not None and len(hmk) >= HMK_MIN_LENGTH else None


@functools.lru_cache(maxsize=4096)
def answer_status(data: bytes) -> tuple[int | None, str | None]:
    """An answer to an mh case: (its HKResp Status, None), or (None, why it is
    malformed). Kept for the last 4,096 distinct answers: decoding is a function of the
    bytes alone, and an AR's answers repeat byte for byte (an error HKResp carries only
    the Message ID and the Status), so most are decoded once a run."""
    try:
        message = decode_message(data)
    except DecodeError as exc:
        return None, f"the reply does not decode: {type(exc).__name__}"
    if not isinstance(message, HKResp):
        return None, "the reply is not an HKResp"
    return message.status, None
