"""The project's errors, by whose fault they are (STYLE practice 7).

- `DecodeError` and its subclasses: the bytes (or attributes) a peer sent are
  malformed. The only exception a parser lets escape; raised on the decode side only.
- `LocalProtocolError`: we were asked to build or do something the protocol forbids
  (a field that does not fit, an unimplemented algorithm, a missing key): our own bug
  or misuse, raised on the encode side. Never caused by a peer's bytes.
- `KeyMaterialError` (`HMKTooShortError`): an unusable provisioned key.
- `ConfigError`: a configuration value is invalid.

What a peer did wrong in a well-formed message is not an exception: the roles return
it as a decision or an action carrying the status to answer with (the HKS's `Reject`,
the AR's and MN's events), since the draft answers most such faults by a silent
discard. Messages never include key material.
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


class LocalProtocolError(HKPError):
    """We were asked to build or do something the protocol forbids (our own bug or
    misuse): the encode-side counterpart of DecodeError."""
