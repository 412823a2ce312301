"""The MN client: the public API other tools (hkp-lab, benchmarks, tests) use. Transports
(UDP, raw IPv6), a socket driver for hkp_radius.mn, exchanges and the load generator, the
`hkp-mn` key file and HMK file reader, and lines for people about MN events."""

from __future__ import annotations

from .describe import describe_event, status_name
from .driver import Driver, system_random
from .hmk import HmkFileError, parse_hmk, read_hmk_file
from .keyfile import KeyFile, KeyFileError
from .lossy import LossyTransport, SkippingClock
from .session import (
    ExchangeResult,
    LoadFigures,
    exchange_deadline,
    run_exchange,
    run_load,
    starter,
)
from .transport import (
    UDP_DEFAULT_PORT,
    RawIPv6Transport,
    Transport,
    UdpTransport,
    parse_endpoint,
    source_towards,
)

__all__ = [
    "UDP_DEFAULT_PORT",
    "Driver",
    "ExchangeResult",
    "HmkFileError",
    "KeyFile",
    "KeyFileError",
    "LoadFigures",
    "LossyTransport",
    "RawIPv6Transport",
    "SkippingClock",
    "Transport",
    "UdpTransport",
    "describe_event",
    "exchange_deadline",
    "parse_endpoint",
    "parse_hmk",
    "read_hmk_file",
    "run_exchange",
    "run_load",
    "source_towards",
    "starter",
    "status_name",
    "system_random",
]
