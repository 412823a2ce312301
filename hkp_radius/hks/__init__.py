"""The Handover Key Server role (draft §6.4, P5, P7, P8)."""

from __future__ import annotations

from .role import (
    MAX_TIMESTAMP_WINDOW,
    Accept,
    Decision,
    Discard,
    DiscardReason,
    HKSPolicy,
    HKSRequest,
    MemoryReplayStore,
    Reject,
    ReplayStore,
    handle_request,
    is_global_unicast,
    parse_algorithm,
)

__all__ = [
    "MAX_TIMESTAMP_WINDOW",
    "Accept",
    "Decision",
    "Discard",
    "DiscardReason",
    "HKSPolicy",
    "HKSRequest",
    "MemoryReplayStore",
    "Reject",
    "ReplayStore",
    "handle_request",
    "is_global_unicast",
    "parse_algorithm",
]
