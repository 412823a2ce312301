"""RADIUS attributes between AR and HKS (PROFILE P8): names, chunking, reading replies.

Pure helpers shared by the AR (pyrad) and the HKS's FreeRADIUS adapter, which sees
octets as '0x…' hex strings. Attribute names are fixed by the profile; numbers live
in raddb/dictionary.hkp (on the wire) and raddb/dictionary.hkp.internal (FreeRADIUS
only) alone.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Union

from hkp_radius.constants import (
    HK_MAX_LENGTH,
    HK_MAX_LIFETIME,
    IPV6_ADDRESS_LENGTH,
    NONCE_MAX_LENGTH,
    NONCE_MIN_LENGTH,
    PRF,
    Status,
)
from hkp_radius.errors import (
    FieldValueError,
    LengthMismatchError,
    LocalProtocolError,
    TruncatedError,
)

# Standard attributes (RFC 2865, RFC 2869, RFC 3162).
USER_NAME = "User-Name"
NAS_IP_ADDRESS = "NAS-IP-Address"
NAS_IPV6_ADDRESS = "NAS-IPv6-Address"
NAS_IDENTIFIER = "NAS-Identifier"
REPLY_MESSAGE = "Reply-Message"
MESSAGE_AUTHENTICATOR = "Message-Authenticator"

# P8, vendor HKP.
MOBILITY_HEADER = "HKP-Mobility-Header"
AR_ADDRESS = "HKP-AR-Address"
CARE_OF_ADDRESS = "HKP-Care-of-Address"
HANDOVER_KEY = "HKP-Handover-Key"
HKS_NONCE = "HKP-HKS-Nonce"
KEY_LIFETIME = "HKP-Key-Lifetime"
PRF_ATTRIBUTE = "HKP-PRF"
TIMESTAMP = "HKP-Timestamp"
STATUS_CODE = "HKP-Status-Code"
RESPONSE_HEADER = "HKP-Response-Header"
# Server-internal attributes (raddb/dictionary.hkp.internal, FreeRADIUS only).
HMK = "HKP-HMK"
AUTHORIZATION = "HKP-Authorization"
AUTHORIZATION_PROHIBIT = "Prohibit"
# The HKS module's salt-encrypted HK (RFC 2548 §2.4.2): HKP-Handover-Key's vendor
# attribute without the encrypt flag, so FreeRADIUS sends the octets as they are.
HANDOVER_KEY_SALTED = "HKP-Handover-Key-Salted"
# What the module needs to salt-encrypt: policy.d/hkp_hks (hkp_hks_salt_inputs)
# copies them into the control list. The secret behind a fixed prefix, so that one
# beginning with "0x" is not read as hex.
RADIUS_SECRET = "HKP-RADIUS-Secret"  # noqa: S105 - an attribute name, not a secret
RADIUS_SECRET_PREFIX = b"s:"
REQUEST_AUTHENTICATOR = "HKP-Request-Authenticator"
# The User-Name's octets, which policy hkp_hks_select copies into the control list:
# rlm_python3 cuts a string at its first NUL, so the module cannot see them otherwise.
USER_NAME_OCTETS = "HKP-User-Name"
# "<fd>:<ticket>": where and what the post-auth waiter reads once the accept's replay
# record is committed (freeradius_module/rlm_hkp_hks.py, mods-config/perl/hkp/).
COMMIT_WAIT = "HKP-Commit-Wait"
STAGED_KEY = "HKP-Staged-Key"  # the salted HK until then, in the control list

# RFC 2865 §5.26: a VSA's value is at most 255 - 2 (attribute header) - 4 (Vendor-Id)
# - 2 (vendor type and length) = 247 octets.
VSA_MAX_VALUE_LENGTH = 247
TIMESTAMP_LENGTH = 8
PRF_FIELD_MAX = 7  # P2: the HKReq/HKResp PRF field is 3 bits

# VALUE names of dictionary.hkp, which pyrad and FreeRADIUS hand out instead of numbers.
PRF_VALUE_NAMES = {"HMAC-SHA1": PRF.HMAC_SHA1, "HMAC-SHA256": PRF.HMAC_SHA256}
STATUS_VALUE_NAMES = {
    "Success": Status.SUCCESS,
    "CoA-Auth-Failed": Status.COA_AUTH_FAILED,
    "Administratively-Prohibited": Status.ADMINISTRATIVELY_PROHIBITED,
    "HK-Verify-Failed": Status.HK_VERIFY_FAILED,
    "Timestamp-Reqd": Status.TIMESTAMP_REQD,
    "Invalid-PRF-Alg": Status.INVALID_PRF_ALG,
    "Invalid-MAC-Alg": Status.INVALID_MAC_ALG,
    "Invalid-Timestamp": Status.INVALID_TIMESTAMP,
}

AttributeValue = Union[str, bytes, int]


def split_mobility_header(mh: bytes) -> tuple[bytes, ...]:
    """P8: an HKReq longer than 247 octets goes in consecutive attributes."""
    if not mh:
        raise LocalProtocolError("an empty Mobility Header cannot be sent")
    return tuple(mh[i : i + VSA_MAX_VALUE_LENGTH] for i in range(0, len(mh), VSA_MAX_VALUE_LENGTH))


def join_mobility_header(chunks: Iterable[bytes]) -> bytes:
    """P8: the HKS joins HKP-Mobility-Header attributes in order."""
    return b"".join(chunks)


def to_hex(value: bytes) -> str:
    """Octets as FreeRADIUS writes and reads them: '0x' and lowercase hex."""
    return "0x" + value.hex()


def from_hex(text: str, what: str = "octets") -> bytes:
    """Parse FreeRADIUS's '0x…' rendering of octets. Raises FieldValueError."""
    if not isinstance(text, str) or not text[:2].lower() == "0x":
        raise FieldValueError(f"{what}: expected '0x' and hex digits")
    try:
        return bytes.fromhex(text[2:])
    except ValueError:
        raise FieldValueError(f"{what}: not hex digits") from None


def ipv6_octets(text: str, what: str = "IPv6 address") -> bytes:
    """An ipv6addr attribute value (text) as its 16 octets. Raises FieldValueError."""
    try:
        return ipaddress.IPv6Address(text.strip()).packed
    except (ValueError, AttributeError):
        raise FieldValueError(f"{what}: not an IPv6 address") from None


def ipv6_text(address: bytes) -> str:
    """16 octets as the text pyrad and FreeRADIUS take for ipv6addr. Raises
    LocalProtocolError (an address we were asked to send)."""
    if len(address) != IPV6_ADDRESS_LENGTH:
        raise LocalProtocolError("an IPv6 address is 16 octets")
    return _ipv6_text(address)


@functools.lru_cache(maxsize=4096)  # the AR's address and its MNs' CoAs repeat (issue 14)
def _ipv6_text(address: bytes) -> str:
    return str(ipaddress.IPv6Address(address))


def access_request_attributes(
    mobility_header: bytes,
    nai: bytes,
    ar_address: bytes,
    care_of_address: bytes,
    nas_identifier: str | None = None,
    nas_ip_address: str | None = None,
    nas_ipv6_address: str | None = None,
) -> list[tuple[str, AttributeValue]]:
    """The P8 Access-Request attributes in order, as (name, value) pairs pyrad takes
    (`packet.AddAttribute(name, value)`); Message-Authenticator is the client's job.
    The NAI goes in User-Name as text (RFC 7542 NAIs are UTF-8). Raises
    LocalProtocolError for values the request cannot carry."""
    try:
        user_name = nai.decode("utf-8")
    except UnicodeDecodeError:
        raise LocalProtocolError("the NAI is not UTF-8 (RFC 7542)") from None
    attributes: list[tuple[str, AttributeValue]] = [(USER_NAME, user_name)]
    attributes += [(MOBILITY_HEADER, chunk) for chunk in split_mobility_header(mobility_header)]
    attributes.append((AR_ADDRESS, ipv6_text(ar_address)))
    attributes.append((CARE_OF_ADDRESS, ipv6_text(care_of_address)))
    if nas_ipv6_address is not None:
        attributes.append((NAS_IPV6_ADDRESS, nas_ipv6_address))
    if nas_ip_address is not None:
        attributes.append((NAS_IP_ADDRESS, nas_ip_address))
    if nas_identifier is not None:
        attributes.append((NAS_IDENTIFIER, nas_identifier))
    return attributes


@dataclass(frozen=True)
class HKSGrant:
    """What an Access-Accept carries (P8): the one type for the HKS's answer. The HKS
    role builds it (`hkp_radius.hks.Accept` is one) and `parse_accept` reads it back;
    every value is checked here, once, whoever builds it. Raises LocalProtocolError
    (`parse_accept` turns that into a DecodeError for a peer's attributes)."""

    handover_key: bytes = field(repr=False)
    hks_nonce: bytes
    lifetime: int
    prf: int
    timestamp: int | None = None  # the MN's, to echo (P5)

    def __post_init__(self) -> None:
        problem = _grant_problem(self)
        if problem:
            raise LocalProtocolError(problem)


def _grant_problem(grant: HKSGrant) -> str:
    """Why `grant` cannot yield a key and an HKResp (P2, P8), or "" when it can."""
    if not 1 <= len(grant.handover_key) <= HK_MAX_LENGTH:  # the salt-encrypted maximum
        return f"{HANDOVER_KEY} of {len(grant.handover_key)} octets, expected 1-{HK_MAX_LENGTH}"
    if not NONCE_MIN_LENGTH <= len(grant.hks_nonce) <= NONCE_MAX_LENGTH:
        return (
            f"{HKS_NONCE} of {len(grant.hks_nonce)} octets, "
            f"expected {NONCE_MIN_LENGTH}-{NONCE_MAX_LENGTH} (P2)"
        )
    if not 1 <= grant.lifetime <= HK_MAX_LIFETIME:
        return f"{KEY_LIFETIME} {grant.lifetime}, expected 1-{HK_MAX_LIFETIME} (16 bits, P2)"
    if not 0 <= grant.prf <= PRF_FIELD_MAX:
        return f"{PRF_ATTRIBUTE} {grant.prf} does not fit the 3-bit PRF field (P2)"
    if grant.timestamp is not None and not 0 <= grant.timestamp < 1 << 64:
        return f"{TIMESTAMP} is not 64 bits"
    return ""


@dataclass(frozen=True)
class HKSRefusal:
    """An Access-Reject. `response_header` is the HKResp to forward to the MN unchanged
    (P7); None means the HKS discarded silently (or refused the AR's request)."""

    status: int | None
    response_header: bytes | None
    reply_message: str | None


def _values(attributes: Mapping[str, Sequence[AttributeValue]], name: str) -> list[AttributeValue]:
    return list(attributes.get(name, ()))


def _single(
    attributes: Mapping[str, Sequence[AttributeValue]], name: str, required: bool
) -> AttributeValue | None:
    values = _values(attributes, name)
    if len(values) > 1:
        raise FieldValueError(f"{name} appears {len(values)} times, expected once")
    if not values:
        if required:
            raise TruncatedError(f"{name} is missing")
        return None
    return values[0]


def _octets(value: AttributeValue, name: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return from_hex(value, name)
    raise FieldValueError(f"{name}: expected octets")


def _integer(value: AttributeValue, name: str, names: Mapping[str, int]) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, bytes) and len(value) == 4:
        return int.from_bytes(value, "big")
    if isinstance(value, str):
        if value in names:
            return int(names[value])
        if value.isascii() and value.isdigit():  # not "²": isdigit() alone lets int() fail
            return int(value)
    raise FieldValueError(f"{name}: expected an integer")


def parse_accept(attributes: Mapping[str, Sequence[AttributeValue]]) -> HKSGrant:
    """Read an Access-Accept (attributes as pyrad gives them, HKP-Handover-Key already
    decrypted). Raises DecodeError subclasses when a P8 attribute is missing or bad."""
    hk = _octets(_single(attributes, HANDOVER_KEY, True) or b"", HANDOVER_KEY)
    nonce = _octets(_single(attributes, HKS_NONCE, True) or b"", HKS_NONCE)
    lifetime = _integer(_single(attributes, KEY_LIFETIME, True) or 0, KEY_LIFETIME, {})
    prf = _integer(_single(attributes, PRF_ATTRIBUTE, True) or 0, PRF_ATTRIBUTE, PRF_VALUE_NAMES)
    raw_timestamp = _single(attributes, TIMESTAMP, False)
    timestamp = None
    if raw_timestamp is not None:
        octets = _octets(raw_timestamp, TIMESTAMP)
        if len(octets) != TIMESTAMP_LENGTH:
            raise LengthMismatchError(f"{TIMESTAMP} of {len(octets)} octets, expected 8")
        timestamp = int.from_bytes(octets, "big")
    try:
        return HKSGrant(hk, nonce, lifetime, prf, timestamp)
    except LocalProtocolError as exc:  # the HKS sent it: a decode error here
        raise FieldValueError(str(exc)) from None


def parse_reject(attributes: Mapping[str, Sequence[AttributeValue]]) -> HKSRefusal:
    """Read an Access-Reject. Raises DecodeError subclasses when HKP-Status-Code and
    HKP-Response-Header are not both present or both absent."""
    raw_status = _single(attributes, STATUS_CODE, False)
    raw_header = _single(attributes, RESPONSE_HEADER, False)
    if (raw_status is None) != (raw_header is None):
        raise FieldValueError(f"{STATUS_CODE} and {RESPONSE_HEADER} must come together")
    messages = _values(attributes, REPLY_MESSAGE)
    reply_message = None
    if messages:
        first = messages[0]
        reply_message = first.decode("utf-8", "replace") if isinstance(first, bytes) else str(first)
    if raw_status is None or raw_header is None:
        return HKSRefusal(None, None, reply_message)
    status = _integer(raw_status, STATUS_CODE, STATUS_VALUE_NAMES)
    return HKSRefusal(status, _octets(raw_header, RESPONSE_HEADER), reply_message)
