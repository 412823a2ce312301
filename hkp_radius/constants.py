"""Code points, status codes, timers and limits: PROFILE v1 §P1, §P10.

Every code point is a default a deployment may change (see CodePoints); the
defaults are what tests and the lab use.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

# RFC 6275 §6.1: the Mobility Header is IPv6 Next Header 135 and its Payload
# Proto is 59 (IPPROTO_NONE) for the messages we send.
IPPROTO_MH = 135
MH_PAYLOAD_PROTO_NONE = 59
# RFC 6275 §6.1.1: MH length is a multiple of 8 octets.
MH_ALIGNMENT = 8
# RFC 6275 §6.1: Header Len is one octet counting 8-octet units beyond the first,
# so an MH holds at most 256 * 8 octets.
MH_MAX_LENGTH = 256 * MH_ALIGNMENT

HKREQ_FIXED_LENGTH = 24  # P2: octets 0-23 before options
HKRESP_FIXED_LENGTH = 16  # P2: octets 0-15 before options
IPV6_ADDRESS_LENGTH = 16
NULL_COA = bytes(IPV6_ADDRESS_LENGTH)  # draft §6.5: all-zero Key CoA means NULL

# P2 option lengths
NONCE_MIN_LENGTH = 16  # P2: 16 <= n <= 64 ...
NONCE_MAX_LENGTH = 64  # ... long enough to be unique, short enough to bound the HK input
NONCE_LENGTH = 16  # P2: senders generate 16-octet nonces
NAI_MIN_LENGTH = 1  # P2: 1 <= m <= 253
NAI_MAX_LENGTH = 253  # RFC 7542 §2.2 and the one-octet Option Length (1 + m <= 254)
TIMESTAMP_OPTION_LENGTH = 8  # P2: a 64-bit NTP timestamp
MN_ID_SUBTYPE_NAI = 1  # RFC 4283

# draft §6.1: the HMK MUST be at least 64 octets.
HMK_MIN_LENGTH = 64
# P4: the HK is 20 octets by default; one octet of Y and an encrypt=2 RADIUS value
# (at most 239 octets, RFC 2548 §2.4.2 in a 247-octet VSA) bound it.
HK_DEFAULT_LENGTH = 20
HK_MAX_LENGTH = 239

HIK_LABEL = b"Handover Integrity Key"  # draft §6.1.1, 22 octets, no NUL
HK_LABEL = b"Handover Key"  # draft §6.1.2, 12 octets, no NUL


class PRF(enum.IntEnum):
    """PRF field of HKReq/HKResp (P1): three bits."""

    HMAC_SHA1 = 1
    HMAC_SHA256 = 2


class MacAlgorithm(enum.IntEnum):
    """Algorithm Type of the MAC option (P1): four bits."""

    HMAC_SHA1 = 1
    HMAC_SHA256 = 2


class NonceSubtype(enum.IntEnum):
    HKS_NONCE = 1
    MN_NONCE = 2


class MacSubtype(enum.IntEnum):
    MN_HKS = 1  # keyed with the HIK
    MN_AR = 2  # keyed with the HK


class Status(enum.IntEnum):
    """HKResp Status Code (draft §5.1.2, P1)."""

    SUCCESS = 0
    COA_AUTH_FAILED = 130
    ADMINISTRATIVELY_PROHIBITED = 131
    HK_VERIFY_FAILED = 132  # numbered in draft -02, used unnumbered in -04
    TIMESTAMP_REQD = 135
    INVALID_PRF_ALG = 136
    INVALID_MAC_ALG = 137
    INVALID_TIMESTAMP = 138


class MHType(enum.Enum):
    """Which of our two messages; the numbers come from CodePoints."""

    HKREQ = "HKReq"
    HKRESP = "HKResp"


@dataclass(frozen=True)
class CodePoints:
    """P1 code points; every one a default a deployment may change."""

    hkreq: int = 250
    hkresp: int = 251
    nonce_option: int = 250
    mac_option: int = 251
    timestamp_option: int = 252
    mn_id_option: int = 8
    pad1_option: int = 0
    padn_option: int = 1

    def __post_init__(self) -> None:
        from hkp_radius.errors import ConfigError

        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if not isinstance(value, int) or not 0 <= value <= 255:
                raise ConfigError(f"code point {name} = {value!r}: must be an integer 0-255")
        if self.hkreq == self.hkresp:
            raise ConfigError("code points hkreq and hkresp must differ")
        kinds = [
            self.nonce_option,
            self.mac_option,
            self.timestamp_option,
            self.mn_id_option,
            self.pad1_option,
            self.padn_option,
        ]
        if len(set(kinds)) != len(kinds):
            raise ConfigError("option code points must all differ")


DEFAULT_CODE_POINTS = CodePoints()

# Configuration item -> CodePoints field: the names the HKS module's `config { }` and
# hkp-ar's [code_points] section share, so one deployment change reads the same in both.
CODE_POINT_SETTINGS = {
    "mh_type_hkreq": "hkreq",
    "mh_type_hkresp": "hkresp",
    "option_handover_nonce": "nonce_option",
    "option_mac": "mac_option",
    "option_timestamp": "timestamp_option",
    "option_mn_id": "mn_id_option",
}

# P10 timers (seconds) and counts.
HKEY_REQ_TOUT = 1.0  # MN retransmission timeout; AR response cache lifetime
N_HO_KEYTRIES = 3
HK_RETRY_INTERVAL = 5.0
RETRANS_RATE_INTERVAL = 1.0  # at most one re-sent response per MN per second
HK_DEFAULT_LIFETIME = 3600
HK_MAX_LIFETIME = 65535  # P2: 16-bit Lifetime field
TIMESTAMP_WINDOW = 7.0  # P5: ±7 s

# P6: ARs allocate SPIs of 256 or more (0-255 reserved by RFC 4285).
SPI_MIN = 256
SPI_MAX = 0xFFFFFFFF
