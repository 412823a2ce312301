"""The project's errors. Every malformed byte string raises a DecodeError subclass.

Practice 7: an error says whose fault it is and, where the protocol answers it,
which status code travels back. Messages never include key material.
"""

from __future__ import annotations


class HKPError(Exception):
    """Base of every error this project raises on purpose."""


class DecodeError(HKPError):
    """Malformed input: the only exception a parser in this project lets escape."""


class TruncatedError(DecodeError):
    """The bytes end before a field that must be there."""


class LengthMismatchError(DecodeError):
    """A length field disagrees with the bytes held (Header Len, Option Length)."""


class UnknownMessageTypeError(DecodeError):
    """The MH Type is neither HKReq nor HKResp."""


class OptionLengthError(DecodeError):
    """An option's length is outside what the profile allows (nonce, NAI, MAC, timestamp)."""


class DuplicateOptionError(DecodeError):
    """Two options of the same kind (PROFILE P2)."""


class OptionOrderError(DecodeError):
    """A non-MAC option after a MAC option, or MAC options out of order (PROFILE P2)."""


class FieldValueError(DecodeError):
    """A fixed field holds a value the profile forbids (Payload Proto, Reserved)."""


class KeyMaterialError(HKPError):
    """Unusable key material (an HMK shorter than 64 octets). Never carries the key."""


class HMKTooShortError(KeyMaterialError):
    """Draft §6.1: the HMK MUST be at least 64 octets; derivation refuses shorter ones."""

    def __init__(self, length: int, minimum: int) -> None:
        super().__init__(
            f"HMK is {length} octets; draft §6.1 requires at least {minimum}: "
            "provision a longer HKP-HMK for this user"
        )
        self.length = length
        self.minimum = minimum


class ConfigError(HKPError):
    """A configuration value is invalid; the message names the setting and what to fix."""


class ProtocolError(HKPError):
    """A message that is well formed but not legal here. Carries the status to answer
    with, or None when the draft says to discard silently."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class LocalProtocolError(ProtocolError):
    """We were asked to do something the protocol forbids (our own bug or misuse)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol forbids in our current state."""
