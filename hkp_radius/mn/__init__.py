"""The mobile node role (draft §6.2): `MobileNode` and what goes in and comes out."""

from __future__ import annotations

from .clock import (
    TIMESTAMP_RANDOM_BITS,
    RandomSource,
    TimestampClock,
    echoes_low_bits,
    seconds_correction,
)
from .config import MESSAGE_ID_REUSE_GUARD, MNConfig
from .events import (
    Datagram,
    Discarded,
    ErrorReceived,
    Event,
    GaveUp,
    KeyEstablished,
    Kind,
    Output,
    RequestSent,
    VerifyUnanswered,
)
from .keys import HeldKey, KeyStore, format_address
from .role import COA_RETRY_JITTER, MAX_CORRECTIONS, MobileNode, exchange_started
from .state import FINISHED, TRANSITIONS, Action, Input, State, transition
from .verdict import Correction, Verdict

__all__ = [
    "COA_RETRY_JITTER",
    "FINISHED",
    "MAX_CORRECTIONS",
    "MESSAGE_ID_REUSE_GUARD",
    "TIMESTAMP_RANDOM_BITS",
    "TRANSITIONS",
    "Action",
    "Correction",
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
    "Output",
    "RandomSource",
    "RequestSent",
    "State",
    "TimestampClock",
    "Verdict",
    "VerifyUnanswered",
    "echoes_low_bits",
    "exchange_started",
    "format_address",
    "seconds_correction",
    "transition",
]
