"""hkp-flood: bounded floods of junk HKReqs for tests and benchmarks (docs/flood.md).
A tool package: it imports the core, hkp_support and the mn_client package only."""

from __future__ import annotations

from .flood import (
    MAX_DURATION,
    MAX_RATE,
    FloodFigures,
    FloodRefused,
    check_bounds,
    check_target,
    open_sockets,
    send_flood,
)
from .junk import junk_hkreq, junk_pool
from .namespace import LoopbackNamespace, NamespaceError, in_own_namespace, inside

__all__ = [
    "MAX_DURATION",
    "MAX_RATE",
    "FloodFigures",
    "FloodRefused",
    "LoopbackNamespace",
    "NamespaceError",
    "check_bounds",
    "check_target",
    "in_own_namespace",
    "inside",
    "junk_hkreq",
    "junk_pool",
    "open_sockets",
    "send_flood",
]
