"""What the MN role (hkp_radius.mn) puts out: datagrams and events (draft §6.2).

Every command, `receive_datagram` and `on_timer` returns a list of these (`Output`), in
the order they happened: a `RequestSent` comes just before its `Datagram`. Frozen values;
none carries an HMK, HIK or HK in its repr.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from hkp_radius.mn.keys import HeldKey


class Kind(enum.Enum):
    REQUEST = "request"  # full MN-HKS request (§6.2.1)
    VERIFY = "verify"  # V flag, MN-AR MAC with a held key (§6.2.3)
    REFRESH = "refresh"  # indirect, NULL CoA (§6.5)


# ---- outputs -----------------------------------------------------------------------


@dataclass(frozen=True)
class Datagram:
    """An MH to send to the AR whose AR-ID (IPv6 address, P4) is `ar_id`."""

    ar_id: bytes
    data: bytes


@dataclass(frozen=True)
class RequestSent:
    exchange: int
    ar_id: bytes
    message_id: int
    attempt: int  # 1 for the first transmission of this Message ID
    kind: Kind
    prf: int
    mac_algorithm: int
    timestamp: bool


@dataclass(frozen=True)
class KeyEstablished:
    exchange: int
    key: HeldKey  # its repr omits the HK
    verified: bool  # True: a held key was confirmed (V flag), False: a new key
    replaced: bool  # an older key for this AR was discarded (§6.2.1)
    elapsed: float  # seconds since the exchange started (monotonic)


@dataclass(frozen=True)
class ErrorReceived:
    exchange: int
    status: int
    authenticated: bool  # its MN-HKS MAC verified (P7); False: a hint, acted on at the timer
    reaction: str  # what the MN does about it, for people


@dataclass(frozen=True)
class Discarded:
    """An HKResp silently discarded (§6.2.2); reported for logs, nothing goes on the wire."""

    exchange: int | None
    reason: str


@dataclass(frozen=True)
class VerifyUnanswered:
    """Draft §6.2.3: a verify (V flag) got no answer after `transmissions` tries, so the
    exchange goes on as a full MN-HKS request; the held key stays until one replaces it.
    An AR silently drops a V request whose MN-AR MAC does not verify (§6.3.1), so silence
    may mean a key the AR does not hold, or loss on the path."""

    exchange: int
    transmissions: int


@dataclass(frozen=True)
class GaveUp:
    exchange: int
    reason: str
    last_status: int | None
    elapsed: float


Event = RequestSent | KeyEstablished | ErrorReceived | Discarded | VerifyUnanswered | GaveUp

Output = Datagram | Event
