"""RADIUS level: the dictionary (pyrad's reader), raw attribute lists, packets laid out
by hand (pyrad refuses wrong lengths, which is the point of a fuzzer), and the checks
on a reply: Response Authenticator, Message-Authenticator, attribute framing (pyrad's
decoder) and the salt-encrypted HKP-Handover-Key.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyrad.dictionary
import pyrad.packet

from hkp_radius.crypto.salt import salt_decrypt
from hkp_radius.errors import DecodeError
from hkp_support.paths import raddb_source

ACCESS_REQUEST, ACCESS_ACCEPT, ACCESS_REJECT, ACCESS_CHALLENGE = 1, 2, 3, 11
STATUS_SERVER = 12
USER_NAME, VENDOR_SPECIFIC, MESSAGE_AUTHENTICATOR = 1, 26, 80
HKP_VENDOR = 32473
VT_MOBILITY_HEADER, VT_AR_ADDRESS, VT_HANDOVER_KEY, VT_HKS_NONCE = 1, 2, 4, 5
Attributes = list[tuple[int, bytes]]
CODE_NAMES = {ACCESS_ACCEPT: "accept", ACCESS_REJECT: "reject", ACCESS_CHALLENGE: "challenge"}


def load_dictionary(path: str | Path | None = None) -> Any:
    """A FreeRADIUS-format dictionary: a file, or a directory holding `dictionary`
    or `dictionary.pyrad` (the default is ours, raddb/dictionary.pyrad)."""
    where = Path(path) if path is not None else raddb_source() / "dictionary.pyrad"
    if where.is_dir():
        for name in ("dictionary", "dictionary.pyrad"):
            if (where / name).is_file():
                where = where / name
                break
    if not where.is_file():
        raise FileNotFoundError(f"no dictionary at {where}")
    return pyrad.dictionary.Dictionary(str(where))


def vsa(vendor: int, vendor_type: int, value: bytes, vendor_length: int | None = None) -> bytes:
    """RFC 2865 §5.26 Vendor-Specific value; `vendor_length` may lie."""
    length = len(value) + 2 if vendor_length is None else vendor_length
    return struct.pack("!IBB", vendor, vendor_type, length & 0xFF) + value


def hkp_vsas(attrs: Attributes, vendor_type: int) -> list[bytes]:
    """The values of well-formed HKP VSAs of one type, in order (what an HKS joins)."""
    found = []
    for kind, value in attrs:
        if kind != VENDOR_SPECIFIC or len(value) < 6:
            continue
        vendor, vtype, vlen = struct.unpack("!IBB", value[:6])
        if vendor == HKP_VENDOR and vtype == vendor_type and vlen == len(value) - 4:
            found.append(value[6:])
    return found


def framing_ok(attrs: Attributes) -> bool:
    """Every attribute fits its length octet (a server must discard a packet otherwise)."""
    return all(len(value) <= 253 for _, value in attrs)


def as_received(attrs: Attributes) -> Attributes | None:
    """The attributes as a server reads them from the packet encode_request lays out.
    A value over 253 octets goes out with its length octet modulo 256, so a server
    reads a short attribute and the rest of the value as the attributes that follow
    (FreeRADIUS's `radiusd -X` shows them); None when that framing breaks (an
    attribute shorter than its header or running past the end: RFC 2865 §5, the
    packet is discarded)."""
    if framing_ok(attrs):
        return attrs
    body = b"".join([bytes((t, (len(v) + 2) & 0xFF)) + v for t, v in attrs])
    received: Attributes = []
    offset, end = 0, len(body)
    while offset < end:
        if end - offset < 2 or not 2 <= body[offset + 1] <= end - offset:
            return None
        received.append((body[offset], body[offset + 2 : offset + body[offset + 1]]))
        offset += body[offset + 1]
    return received


def encode_request(
    code: int,
    identifier: int,
    authenticator: bytes,
    attrs: Attributes,
    secret: bytes,
    message_authenticator: str = "valid",
) -> bytes:
    """An Access-Request (or Status-Server). Message-Authenticator first: "valid",
    "wrong" (one bit off) or "none". Values over 253 octets keep their length octet
    modulo 256: a framing error on purpose."""
    return RequestEncoder(secret).encode(
        code, identifier, authenticator, attrs, message_authenticator
    )


class RequestEncoder:
    """encode_request for one shared secret: the HMAC-MD5 keyed once (RFC 3579 §3.2)."""

    def __init__(self, secret: bytes) -> None:
        self.keyed = hmac.new(secret, digestmod=hashlib.md5)

    def encode(
        self,
        code: int,
        identifier: int,
        authenticator: bytes,
        attrs: Attributes,
        message_authenticator: str = "valid",
    ) -> bytes:
        header = _ATTRIBUTE_HEADER
        body = b"".join([header(t, (len(v) + 2) & 0xFF) + v for t, v in attrs])
        if message_authenticator == "none":
            length = 20 + len(body)
            return bytes((code, identifier)) + (length & 0xFFFF).to_bytes(2) + authenticator + body
        length = 38 + len(body)
        head = bytes((code, identifier)) + (length & 0xFFFF).to_bytes(2) + authenticator
        mac = self.keyed.copy()
        mac.update(head + _EMPTY_MA + body)
        digest = mac.digest()
        if message_authenticator == "wrong":
            digest = bytes((digest[0] ^ 1,)) + digest[1:]
        return head + _MA_HEADER + digest + body


_ATTRIBUTE_HEADER = struct.Struct("!BB").pack  # type, length (modulo 256: see encode_request)
_MA_HEADER = bytes((MESSAGE_AUTHENTICATOR, 18))
_EMPTY_MA = _MA_HEADER + bytes(16)
PYRAD_MAX_LENGTH = 8192  # pyrad refuses longer packets ("Packet length is too long")


@dataclass
class Reply:
    code: int
    attributes: Attributes
    problem: str | None  # why the reply is malformed, or None


def check_reply(data: bytes, authenticator: bytes, secret: bytes, dictionary: Any) -> Reply:
    """Decode a reply and check what RFC 2865 §3 and RFC 3579 §3.2 say a client must."""
    return ReplyChecker(secret, dictionary).check(data, authenticator)


class ReplyChecker:
    """check_reply for one secret and dictionary: the HMAC keyed once, one pyrad packet
    reused for decoding (pyrad's DecodePacket starts afresh on each call)."""

    def __init__(self, secret: bytes, dictionary: Any) -> None:
        self.secret = secret
        self.keyed = hmac.new(secret, digestmod=hashlib.md5)
        self.packet = pyrad.packet.Packet(dict=dictionary, secret=secret)
        # pyrad can refuse a reply only over a VSA (26) or a TLV: the codes it decodes
        # as TLVs, asked of pyrad itself. Other attributes it only files by code.
        self.pyrad_codes = {VENDOR_SPECIFIC} | {
            code for code in range(256) if self.packet._PktIsTlvAttribute(code)
        }

    def check(self, data: bytes, authenticator: bytes) -> Reply:
        if len(data) < 20:
            return Reply(0, [], "shorter than a RADIUS header")
        code, length = data[0], int.from_bytes(data[2:4])
        if length < 20 or length > len(data):
            return Reply(code, [], f"Length field {length} for {len(data)} octets")
        data = data[:length]
        # RFC 2865 §3 fixes MD5 for the Response Authenticator.
        expected = hashlib.md5(data[:4] + authenticator + data[20:] + self.secret).digest()  # noqa: S324
        if not hmac.compare_digest(expected, data[4:20]):
            return Reply(code, [], "wrong Response Authenticator")
        attrs: Attributes = []
        offset = 20
        pyrad_needed = length > PYRAD_MAX_LENGTH
        codes = self.pyrad_codes
        while offset < length:
            kind = data[offset]
            if offset + 2 > length or data[offset + 1] < 2 or offset + data[offset + 1] > length:
                return Reply(code, attrs, f"attribute framing broken at octet {offset}")
            end = offset + data[offset + 1]
            attrs.append((kind, data[offset + 2 : end]))
            if kind in codes:
                pyrad_needed = True
            if kind == MESSAGE_AUTHENTICATOR:
                zeroed = (
                    data[:4]
                    + authenticator
                    + data[20 : offset + 2]
                    + bytes(16)
                    + data[offset + 18 :]
                )
                mac = self.keyed.copy()
                mac.update(zeroed)
                if data[offset + 1] != 18 or not hmac.compare_digest(
                    mac.digest(), data[offset + 2 : offset + 18]
                ):
                    return Reply(code, attrs, "wrong Message-Authenticator")
            offset = end
        if pyrad_needed:
            try:  # pyrad's decoder: VSAs and values as the dictionary defines them
                self.packet.DecodePacket(data)
                self.packet.keys()
            except (pyrad.packet.PacketError, struct.error, IndexError, ValueError) as exc:
                return Reply(code, attrs, f"pyrad cannot decode it: {exc}")
        if code not in (ACCESS_ACCEPT, ACCESS_REJECT, ACCESS_CHALLENGE):
            return Reply(code, attrs, f"code {code} is no answer to an Access-Request")
        return Reply(code, attrs, None)


def handover_key(reply: Reply, secret: bytes, authenticator: bytes) -> bytes | None:
    """The decrypted HKP-Handover-Key of an Accept, None when it carries none. Raises
    DecodeError when it does not decrypt."""
    values = hkp_vsas(reply.attributes, VT_HANDOVER_KEY)
    if not values:
        return None
    key: bytes = salt_decrypt(values[0], secret, authenticator)
    return key


def hks_nonce(reply: Reply) -> bytes | None:
    values = hkp_vsas(reply.attributes, VT_HKS_NONCE)
    return values[0] if values else None


def radclient_text(attrs: Attributes, dictionary: Any) -> str:
    """The request as radclient reads it (`radclient -f FILE -D DIR`): one attribute a
    line, octets as 0x..; what the dictionary does not name as Attr-N or a raw VSA."""
    lines = []
    for kind, value in attrs:
        name = _name(kind, value, dictionary)
        if name is None:
            lines.append(f"Attr-{kind} = 0x{value.hex()}")
        else:
            attr_name, payload = name
            lines.append(f"{attr_name} = 0x{payload.hex()}")
    out = io.StringIO()
    out.write(",\n".join(lines) + "\n")
    return out.getvalue()


def _name(kind: int, value: bytes, dictionary: Any) -> tuple[str, bytes] | None:
    key: Any = kind
    payload = value
    if kind == VENDOR_SPECIFIC:
        if len(value) < 6 or value[5] != len(value) - 4:
            return None
        key, payload = (struct.unpack("!I", value[:4])[0], value[4]), value[6:]
    try:
        return str(dictionary.attrindex.GetBackward(key)), payload
    except KeyError:
        return None


def decrypt_problem(reply: Reply, secret: bytes, authenticator: bytes) -> str | None:
    try:
        handover_key(reply, secret, authenticator)
    except DecodeError as exc:
        return f"HKP-Handover-Key does not decrypt: {exc}"
    return None
