"""MN events as lines for people (hkp-mn, hkp-lab). No key material, ever."""

from __future__ import annotations

from hkp_radius.constants import PRF, MacAlgorithm, Status
from hkp_radius.mn import (
    Discarded,
    ErrorReceived,
    Event,
    GaveUp,
    KeyEstablished,
    RequestSent,
    VerifyUnanswered,
    format_address,
)


def status_name(status: int | None) -> str:
    if status is None:
        return "-"
    try:
        return Status(status).name
    except ValueError:
        return f"status {status}"


def algorithm_name(kind: type[PRF] | type[MacAlgorithm], value: int) -> str:
    try:
        return kind(value).name.replace("_", "-")
    except ValueError:
        return str(value)


def describe_event(event: Event) -> str:
    if isinstance(event, RequestSent):
        again = "" if event.attempt == 1 else f" (retransmission {event.attempt - 1})"
        return (
            f"MN -> AR {format_address(event.ar_id)}: HKReq {event.kind.value}, "
            f"Message ID {event.message_id}, PRF {algorithm_name(PRF, event.prf)}, "
            f"MAC {algorithm_name(MacAlgorithm, event.mac_algorithm)}"
            f"{', timestamp' if event.timestamp else ', no timestamp'}{again}"
        )
    if isinstance(event, KeyEstablished):
        key = event.key
        what = "held key verified" if event.verified else "new key"
        replaced = ", replacing the old one" if event.replaced else ""
        # §5.1.2: the SPI with the AR's address names the key at the MN.
        return (
            f"MN: {what}{replaced}: SPI {key.spi} @ AR {format_address(key.ar_id)}, "
            f"lifetime {key.lifetime} s, CoA {format_address(key.care_of_address)} "
            f"({event.elapsed * 1000:.1f} ms)"
        )
    if isinstance(event, ErrorReceived):
        signed = "MN-HKS MAC verified" if event.authenticated else "no MAC"
        return f"AR -> MN: HKResp {status_name(event.status)} ({signed}): {event.reaction}"
    if isinstance(event, Discarded):
        return f"MN: silently discarded an HKResp: {event.reason}"
    if isinstance(event, VerifyUnanswered):
        return (
            f"MN: verify unanswered after {event.transmissions} transmissions (the AR drops a "
            "V request whose MAC fails, or they were lost): full MN-HKS request (§6.2.3)"
        )
    if isinstance(event, GaveUp):
        return (
            f"MN: gave up after {event.elapsed:.1f} s: {event.reason} "
            f"(last status {status_name(event.last_status)})"
        )
    return repr(event)
