"""The Handover Key Server role: draft §6.4, PROFILE P4, P5, P7 and P8.

Every rule the HKS follows lives in `handle_request`, in the order the checks run:

1. the request must be usable at all (exactly one HKP-AR-Address, a global unicast
   IPv6 address; an HKReq; exactly one User-Name, byte for byte the NAI of its MN-ID):
   otherwise nothing is answered to the MN;
2. the MN must be authenticated (a known NAI, an HMK of at least 64 octets, a PRF and
   MAC algorithm we implement, an MN-HKS MAC that verifies with the HIK): otherwise
   silent discard (§6.4, P7). An unknown MAC algorithm is a discard too, not the
   INVALID_MAC_ALG that §6.4 SHOULD send: its MAC cannot be verified, and a signed
   answer to an unauthenticated request would hand anyone a valid MN-HKS-signed
   HKResp for every Message ID (docs/decisions.md, "Unknown MAC algorithm");
3. then, each answered with a signed HKResp (P7): a PRF the policy disallows
   (INVALID_PRF_ALG), a MAC algorithm it disallows (INVALID_MAC_ALG), a missing
   timestamp it requires (TIMESTAMP_REQD), a stale, future or replayed timestamp
   (INVALID_TIMESTAMP, P5), an MN the operator's policy does not authorize
   (ADMINISTRATIVELY_PROHIBITED);
4. otherwise the replay state is advanced and the HK derived (§6.1.2, P4). For an
   authorized MN the replay check and the advance are one atomic `record_if_newer` (a
   replay gets INVALID_TIMESTAMP from it, one store round trip per request); a refused
   MN's timestamp is only read (a replay of it is still INVALID_TIMESTAMP) and never
   stored.

Sans-I/O: the clock (`now`, Unix seconds), the random source and the replay state are
arguments. Results never carry key material in their repr.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, Union

from hkp_radius import crypto
from hkp_radius.constants import (
    DEFAULT_CODE_POINTS,
    HK_DEFAULT_LENGTH,
    HK_DEFAULT_LIFETIME,
    HK_MAX_LENGTH,
    HK_MAX_LIFETIME,
    HMK_MIN_LENGTH,
    IPV6_ADDRESS_LENGTH,
    NONCE_LENGTH,
    PRF,
    TIMESTAMP_WINDOW,
    CodePoints,
    MacAlgorithm,
    MacSubtype,
    Status,
)
from hkp_radius.errors import ConfigError, DecodeError, LocalProtocolError
from hkp_radius.wire import ntp
from hkp_radius.wire.messages import HKReq, HKResp, decode_message
from hkp_radius.wire.options import MacOption, Option, Timestamp
from hkp_radius.wire.radius_attrs import HKSGrant

# P5's window is ±7 s; an operator may widen it for poorly synchronised MNs, but a
# window of more than an hour would no longer be replay protection worth the name.
MAX_TIMESTAMP_WINDOW = 3600  # seconds


class ReplayStore(Protocol):
    """The last accepted timestamp per NAI (P5). Implementations must make
    `record_if_newer` atomic: several FreeRADIUS workers may race on one NAI."""

    def last_accepted(self, nai: bytes) -> int | None:
        """The last timestamp accepted for `nai`, or None."""
        ...

    def record_if_newer(self, nai: bytes, timestamp: int) -> bool:
        """Store `timestamp` for `nai` if it is strictly greater than the stored one
        (or none is stored) and say whether it was stored."""
        ...


class MemoryReplayStore:
    """A ReplayStore in a dict: for tests and single-threaded callers."""

    def __init__(self) -> None:
        self._last: dict[bytes, int] = {}

    def last_accepted(self, nai: bytes) -> int | None:
        return self._last.get(nai)

    def record_if_newer(self, nai: bytes, timestamp: int) -> bool:
        last = self._last.get(nai)
        if last is not None and timestamp <= last:
            return False
        self._last[nai] = timestamp
        return True


@dataclass(frozen=True)
class HKSPolicy:
    """What the operator configures (docs/hks.md). Defaults are PROFILE P10's."""

    allowed_prfs: frozenset[int] = frozenset({PRF.HMAC_SHA1, PRF.HMAC_SHA256})
    required_prf: int = PRF.HMAC_SHA1  # put in the PRF field of INVALID_PRF_ALG
    allowed_mac_algorithms: frozenset[int] = frozenset(
        {MacAlgorithm.HMAC_SHA1, MacAlgorithm.HMAC_SHA256}
    )
    required_mac_algorithm: int = MacAlgorithm.HMAC_SHA1  # used in INVALID_MAC_ALG
    # Draft §5.2.3, §7.3: without timestamps a recorded HKReq can be replayed forever
    # (each replay mints a fresh key at the AR), so they are required by default.
    require_timestamp: bool = True
    timestamp_window: float = TIMESTAMP_WINDOW
    key_lifetime: int = HK_DEFAULT_LIFETIME
    hk_length: int = HK_DEFAULT_LENGTH
    code_points: CodePoints = DEFAULT_CODE_POINTS

    def __post_init__(self) -> None:
        if not self.allowed_prfs or not all(crypto.supported_prf(p) for p in self.allowed_prfs):
            raise ConfigError(
                f"allowed_prf {sorted(self.allowed_prfs)}: name at least one of "
                f"{[p.name for p in PRF]}"
            )
        if self.required_prf not in self.allowed_prfs:
            raise ConfigError(f"required_prf {self.required_prf} must be one of allowed_prf")
        if not self.allowed_mac_algorithms or not all(
            crypto.supported_mac_algorithm(a) for a in self.allowed_mac_algorithms
        ):
            raise ConfigError(
                f"allowed_mac_algorithms {sorted(self.allowed_mac_algorithms)}: name at least "
                f"one of {[a.name for a in MacAlgorithm]}"
            )
        if self.required_mac_algorithm not in self.allowed_mac_algorithms:
            raise ConfigError("required_mac_algorithm must be one of allowed_mac_algorithms")
        if not 0 < self.timestamp_window <= MAX_TIMESTAMP_WINDOW:
            raise ConfigError(
                f"timestamp_window {self.timestamp_window}: 0 < seconds <= {MAX_TIMESTAMP_WINDOW}"
            )
        if not 1 <= self.key_lifetime <= HK_MAX_LIFETIME:
            raise ConfigError(
                f"key_lifetime {self.key_lifetime}: 1-{HK_MAX_LIFETIME} seconds "
                "(the HKResp Lifetime field is 16 bits)"
            )
        if not 1 <= self.hk_length <= HK_MAX_LENGTH:
            raise ConfigError(
                f"hk_length {self.hk_length}: 1-{HK_MAX_LENGTH} octets "
                "(an encrypt=2 RADIUS value holds at most 239)"
            )


@dataclass(frozen=True)
class HKSRequest:
    """What the AR's Access-Request and the operator's modules told us (P8).

    `user_name` is the octets of the request's User-Name and `ar_address` the 16 octets
    of its HKP-AR-Address (None: absent or unparsable); the counts say how many of each
    the request carried, since only exactly one of each is usable."""

    user_name: bytes | None
    mobility_header: bytes | None  # HKP-Mobility-Header chunks, joined
    ar_address: bytes | None  # HKP-AR-Address, 16 octets
    hmk: bytes | None = field(default=None, repr=False)  # control:HKP-HMK
    authorized: bool = True  # control:HKP-Authorization != Prohibit
    user_name_count: int = field(default=1, kw_only=True)
    ar_address_count: int = field(default=1, kw_only=True)


class DiscardReason(enum.Enum):
    """Why no HKResp goes to the MN. Values are log phrases (no secrets)."""

    NO_AR_ADDRESS = "the Access-Request has no usable HKP-AR-Address (draft §6.4)"
    AR_ADDRESS_NOT_ONE = "the Access-Request has more than one HKP-AR-Address"
    AR_ADDRESS_NOT_GLOBAL = "HKP-AR-Address is not a global unicast IPv6 address"
    NO_MOBILITY_HEADER = "the Access-Request has no HKP-Mobility-Header"
    MALFORMED = "the HKReq is malformed"
    NOT_HKREQ = "the Mobility Header is not an HKReq"
    NO_MN_ID = "the HKReq has no Mobile Node Identifier option"
    USER_NAME_NOT_ONE = "the Access-Request does not have exactly one User-Name"
    USER_NAME_MISMATCH = "User-Name differs from the NAI of the HKReq"
    NO_MN_NONCE = "the HKReq has no MN-Nonce"
    UNKNOWN_NAI = "no HKP-HMK is configured for this NAI"
    HMK_TOO_SHORT = "the configured HKP-HMK is shorter than 64 octets (draft §6.1)"
    NO_MN_HKS_MAC = "the HKReq has no MN-HKS MAC option"
    UNSUPPORTED_PRF = "the HKReq asks for a PRF this server does not implement"
    UNSUPPORTED_MAC_ALGORITHM = "the MN-HKS MAC uses an algorithm this server does not implement"
    BAD_MAC = "the MN-HKS MAC does not verify"


@dataclass(frozen=True)
class Accept(HKSGrant):
    """P8 Access-Accept content: the grant (checked by HKSGrant, the one type for an
    HKS answer, which the AR reads back with `radius_attrs.parse_accept`) for `nai`."""

    nai: bytes = field(kw_only=True)


@dataclass(frozen=True)
class Reject:
    """P7 HKS error: Access-Reject with HKP-Status-Code and HKP-Response-Header."""

    nai: bytes
    status: Status
    response_header: bytes
    detail: str


@dataclass(frozen=True)
class Discard:
    """Silent discard towards the MN (§6.4): Access-Reject without HKP attributes.
    `ar_error` marks a fault of the AR's request, worth a Reply-Message to it."""

    reason: DiscardReason
    detail: str = ""

    @property
    def ar_error(self) -> bool:
        return self.reason in _AR_ERRORS


_AR_ERRORS = frozenset(
    {
        DiscardReason.NO_AR_ADDRESS,
        DiscardReason.AR_ADDRESS_NOT_ONE,
        DiscardReason.AR_ADDRESS_NOT_GLOBAL,
        DiscardReason.NO_MOBILITY_HEADER,
    }
)


Decision = Union[Accept, Reject, Discard]


def handle_request(
    request: HKSRequest,
    policy: HKSPolicy,
    replay: ReplayStore,
    now: float,
    random_bytes: Callable[[int], bytes],
) -> Decision:
    """Decide one Access-Request (module docstring gives the order of the checks)."""
    if request.ar_address_count > 1:
        return Discard(DiscardReason.AR_ADDRESS_NOT_ONE, f"{request.ar_address_count} of them")
    ar_address = request.ar_address
    if ar_address is None or len(ar_address) != IPV6_ADDRESS_LENGTH:
        return Discard(DiscardReason.NO_AR_ADDRESS)
    if not is_global_unicast(ar_address):
        return Discard(DiscardReason.AR_ADDRESS_NOT_GLOBAL, str(ipaddress.IPv6Address(ar_address)))
    if not request.mobility_header:
        return Discard(DiscardReason.NO_MOBILITY_HEADER)
    wire = request.mobility_header
    try:
        message = decode_message(wire, policy.code_points)
    except DecodeError as exc:
        return Discard(DiscardReason.MALFORMED, str(exc))
    if not isinstance(message, HKReq):
        return Discard(DiscardReason.NOT_HKREQ)
    nai = message.mn_id
    if nai is None:
        return Discard(DiscardReason.NO_MN_ID)
    if request.user_name_count != 1 or request.user_name is None:
        return Discard(DiscardReason.USER_NAME_NOT_ONE, f"{request.user_name_count} of them")
    if request.user_name != nai:
        # P8: the HKS trusts only what the MN-HKS MAC covers; the HMK was looked up
        # by User-Name, so the two must name the same MN.
        return Discard(DiscardReason.USER_NAME_MISMATCH)
    mn_nonce = message.mn_nonce
    if mn_nonce is None:
        return Discard(DiscardReason.NO_MN_NONCE)
    hmk = request.hmk
    if hmk is None:
        return Discard(DiscardReason.UNKNOWN_NAI)
    if len(hmk) < HMK_MIN_LENGTH:
        return Discard(DiscardReason.HMK_TOO_SHORT, f"{len(hmk)} octets")
    mac = message.mac(MacSubtype.MN_HKS)
    if mac is None:
        return Discard(DiscardReason.NO_MN_HKS_MAC)
    if not crypto.supported_prf(message.prf):
        return Discard(DiscardReason.UNSUPPORTED_PRF, f"PRF {message.prf}")
    if not crypto.supported_mac_algorithm(mac.algorithm):
        return Discard(DiscardReason.UNSUPPORTED_MAC_ALGORITHM, f"AT {mac.algorithm}")
    hik = crypto.derive_hik(hmk, message.prf, message.message_id, mac.algorithm)
    if not crypto.verify_mac(wire, message, MacSubtype.MN_HKS, hik):
        return Discard(DiscardReason.BAD_MAC)

    # Authenticated: from here on the MN gets an answer (P7).
    def error(
        status: Status,
        detail: str,
        *,
        prf: int = message.prf,
        mac_algorithm: int = mac.algorithm,
        options: tuple[Option, ...] = (),
    ) -> Reject:
        return Reject(
            nai,
            status,
            _signed_error(
                message, hmk, hik, mac.algorithm, policy, status, prf, mac_algorithm, options
            ),
            detail,
        )

    if message.prf not in policy.allowed_prfs:
        return error(
            Status.INVALID_PRF_ALG, f"PRF {message.prf} not allowed", prf=policy.required_prf
        )
    if mac.algorithm not in policy.allowed_mac_algorithms:
        return error(
            Status.INVALID_MAC_ALG,
            f"MAC algorithm {mac.algorithm} not allowed",
            mac_algorithm=policy.required_mac_algorithm,
        )
    timestamp = message.timestamp
    if timestamp is None and policy.require_timestamp:
        return error(Status.TIMESTAMP_REQD, "timestamp required")
    if timestamp is not None and not ntp.within_window(timestamp, now, policy.timestamp_window):
        offset = ntp.from_ntp(timestamp) - now
        where = "future" if offset > 0 else "stale"
        return _invalid_timestamp(error, timestamp, now, f"{where} by {abs(offset):.1f} s")
    if not request.authorized:
        # A refused request advances nothing; a replay of one is still a replay.
        last = None if timestamp is None else replay.last_accepted(nai)
        if timestamp is not None and last is not None and timestamp <= last:
            return _invalid_timestamp(error, timestamp, now, "replayed")
        return error(Status.ADMINISTRATIVELY_PROHIBITED, "prohibited by policy")
    if timestamp is not None and not replay.record_if_newer(nai, timestamp):
        # Not after the last accepted one (P5): the one atomic check-and-store decides,
        # so that concurrent workers (or servers sharing the store) accept it once.
        return _invalid_timestamp(error, timestamp, now, "replayed")

    hks_nonce = random_bytes(NONCE_LENGTH)
    if len(hks_nonce) != NONCE_LENGTH:
        raise LocalProtocolError("the random source returned the wrong number of octets")
    hk = crypto.derive_hk(hmk, message.prf, mn_nonce, hks_nonce, nai, ar_address, policy.hk_length)
    return Accept(hk, hks_nonce, policy.key_lifetime, message.prf, timestamp, nai=nai)


def is_global_unicast(address: bytes) -> bool:
    """RFC 4291 §2.4: an address the MN can reach its AR at. Not the unspecified or
    loopback address (nor anything else in ::/96, IPv4-compatible), not IPv4-mapped,
    not multicast, link-local or site-local (RFC 3879). Unique local addresses
    (RFC 4193) have global scope and are accepted."""
    head = address[:12]
    first, second = address[0], address[1] & 0xC0
    return not (
        head == _ZERO_96  # ::/96: unspecified, loopback, IPv4-compatible
        or head == _IPV4_MAPPED_96  # ::ffff:0:0/96
        or first == 0xFF  # ff00::/8 multicast
        or (first == 0xFE and second in (0x80, 0xC0))  # fe80::/10 link-, fec0::/10 site-local
    )


_ZERO_96 = bytes(12)
_IPV4_MAPPED_96 = bytes(10) + b"\xff\xff"


def _signed_error(
    message: HKReq,
    hmk: bytes,
    hik: bytes,
    request_mac_algorithm: int,
    policy: HKSPolicy,
    status: Status,
    prf: int,
    mac_algorithm: int,
    options: tuple[Option, ...],
) -> bytes:
    """P7: the complete HKResp, Message ID copied, SPI and Lifetime 0, ending with an
    MN-HKS MAC keyed with the HIK of the request."""
    key = hik
    if mac_algorithm != request_mac_algorithm:
        # INVALID_MAC_ALG: signed with the algorithm we require, so the HIK is sized
        # for it (P4: truncated to that algorithm's key length).
        key = crypto.derive_hik(hmk, message.prf, message.message_id, mac_algorithm)
    response = HKResp(
        message_id=message.message_id,
        verify=False,
        prf=prf,
        status=status,
        lifetime=0,
        spi=0,
        options=(*options, MacOption(MacSubtype.MN_HKS, mac_algorithm)),
    )
    return crypto.sign_message(response, {MacSubtype.MN_HKS: key}, policy.code_points)


def _invalid_timestamp(
    error: Callable[..., Reject], timestamp: int, now: float, detail: str
) -> Reject:
    # §5.2.3 / P5: our high 32 bits, the MN's low 32 bits.
    answer = ntp.replace_seconds(timestamp, ntp.to_ntp(now))
    return error(Status.INVALID_TIMESTAMP, f"timestamp {detail}", options=(Timestamp(answer),))


def parse_algorithm(name: str, kind: type[enum.IntEnum]) -> int:
    """A configuration name ("HMAC-SHA1" or "1") of a PRF or MAC algorithm."""
    key = name.strip().upper().replace("-", "_")
    if key.isascii() and key.isdigit():  # not "²": isdigit() alone lets int() fail
        value = int(key)
        if value in {m.value for m in kind}:
            return value
    elif key in kind.__members__:
        return int(kind.__members__[key])
    choices = ", ".join(m.name.replace("_", "-") for m in kind)
    raise ConfigError(f"unknown {kind.__name__} {name!r}: use one of {choices}")
