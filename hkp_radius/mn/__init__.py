"""The mobile node role (draft §6.2)."""

from __future__ import annotations

from .clock import (
    TIMESTAMP_RANDOM_BITS,
    RandomSource,
    TimestampClock,
    echoes_low_bits,
    seconds_correction,
)
from .events import (
    Datagram,
    Discarded,
    ErrorReceived,
    Event,
    GaveUp,
    KeyEstablished,
    Kind,
    RequestSent,
    VerifyUnanswered,
)
from .keys import HeldKey, KeyStore, format_address
from .role import TRANSITIONS, Action, Input, MNConfig, MobileNode, State

__all__ = [
    "TIMESTAMP_RANDOM_BITS",
    "TRANSITIONS",
    "Action",
    "Datagram",
    "Discarded",
    "ErrorReceived",
    "Event",
    "GaveUp",
    "HeldKey",
    "Input",
    "KeyEstablished",
    "KeyStore",
    "Kind",
    "MNConfig",
    "MobileNode",
    "RandomSource",
    "RequestSent",
    "State",
    "TimestampClock",
    "VerifyUnanswered",
    "echoes_low_bits",
    "format_address",
    "seconds_correction",
]
