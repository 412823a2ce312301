"""The lab's exchanges and the account it prints of them: who asked, what each hop
decided (the MN's events, the AR's and the HKS's log lines for that MN), the key's
SPI and lifetime, and how long each exchange took. Never a key."""

from __future__ import annotations

import contextlib
import ipaddress
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hkp_radius.constants import Status
from hkp_radius.mn import (
    ErrorReceived,
    Event,
    GaveUp,
    KeyEstablished,
    Kind,
    MNConfig,
    MobileNode,
    RequestSent,
)
from mn_client import (
    ExchangeResult,
    LossyTransport,
    RawIPv6Transport,
    SkippingClock,
    Transport,
    UdpTransport,
    describe_event,
    run_exchange,
    starter,
    status_name,
    system_random,
)

from . import netns
from .lab import LAB_REALM, PROHIBITED, Identity, Lab, LabError, wait_for

HOP_LOG_WAIT = 2.0  # how long to wait for the AR's log line of an exchange
MN_HOST_BASE = 16  # UDP lab: identity i sends from 127.0.0.(16 + i)


@dataclass(frozen=True)
class Scenario:
    title: str
    who: str  # local part of the NAI
    kind: str  # request | verify | refresh
    expect: str  # key | verified | prohibited
    clock_offset: float = 0.0
    lose_first: bool = False


SCENARIOS = (
    Scenario("alice attaches and requests a key (§6.2.1)", "alice", "request", "key"),
    Scenario("alice returns and verifies her key, V flag (§6.2.3)", "alice", "verify", "verified"),
    Scenario(
        "bob's clock is 2 minutes slow: INVALID_TIMESTAMP, signed by the HKS (P5, P7)",
        "bob",
        "request",
        "key",
        clock_offset=-120.0,
    ),
    Scenario(
        "carol's first HKReq is lost: she retransmits after HKEY_REQ_TOUT (§6.2.1)",
        "carol",
        "request",
        "key",
        lose_first=True,
    ),
    Scenario("alice refreshes her key indirectly, NULL CoA (§6.5)", "alice", "refresh", "key"),
    Scenario(
        "mallory is not authorised: ADMINISTRATIVELY_PROHIBITED (§6.4, §6.2.2.1)",
        "mallory",
        "request",
        "prohibited",
    ),
)


class LogCursor:
    """New lines of a log file since the last call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0

    def new_lines(self) -> list[str]:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except OSError:
            return []
        cut = data.rfind(b"\n") + 1
        self.offset += cut
        return data[:cut].decode("utf-8", "replace").splitlines()


def _matches(expect: str, result: ExchangeResult) -> bool:
    final = result.final
    if expect == "prohibited":
        return (
            isinstance(final, GaveUp)
            and final.last_status == Status.ADMINISTRATIVELY_PROHIBITED
            and any(isinstance(e, ErrorReceived) and e.authenticated for e in result.events)
        )
    if not isinstance(final, KeyEstablished):
        return False
    return final.verified == (expect == "verified")


class Runner:
    def __init__(self, lab: Lab, out: Callable[[str], None] = print) -> None:
        self.lab = lab
        self.out = out
        self.nodes: dict[str, MobileNode] = {}
        self.identities: dict[str, Identity] = {i.nai.split("@")[0]: i for i in lab.identities}

    def node(self, who: str) -> MobileNode:
        if who not in self.nodes:
            identity = self.identities[who]
            config = MNConfig(nai=identity.nai.encode(), hmk=identity.hmk)
            self.nodes[who] = MobileNode(config, system_random)
        return self.nodes[who]

    def source(self, who: str) -> str:
        """The MN's own address: its namespace address with --netns, else its own
        127.0.0.0/8 address; the Key CoA of its direct requests (production default)."""
        index = sorted(self.identities).index(who)
        if self.lab.topology is not None:
            return self.lab.topology.coa(index)
        return f"127.0.0.{MN_HOST_BASE + index}"

    def transport(self, who: str) -> Transport:
        ar_id = ipaddress.IPv6Address(self.lab.ar_id).packed
        topology = self.lab.topology
        if topology is not None:
            with netns.inside(topology.mn_ns):
                return RawIPv6Transport()
        mapped = ipaddress.IPv6Address(self.lab.ar_host).ipv4_mapped
        endpoint = (str(mapped or self.lab.ar_host), self.lab.ar_port)
        return UdpTransport({ar_id: endpoint}, source=self.source(who))

    def run(self, scenarios: tuple[Scenario, ...] = SCENARIOS) -> bool:
        results = []
        for number, scenario in enumerate(scenarios, 1):
            if scenario.lose_first and self.lab.topology is not None:
                self.out(f"\n[{number}] {scenario.title}\n    (skipped: UDP only)")
                continue
            results.append((number, scenario, *self.one(number, scenario)))
        self.out("\nSummary")
        for number, scenario, ok, result in results:
            final = result.final
            took = f"{final.elapsed * 1000:8.1f} ms" if final else "       - ms"
            detail = ""
            if isinstance(final, KeyEstablished):
                detail = f"SPI {final.key.spi}, lifetime {final.key.lifetime} s"
            elif isinstance(final, GaveUp):
                detail = f"no key: {final.reason}"
            self.out(
                f"  [{number}] {'ok  ' if ok else 'FAIL'} {took}  "
                f"{scenario.who}@{LAB_REALM} "
                f"{scenario.kind}: {detail}"
            )
        return all(ok for _, _, ok, _ in results)

    def one(self, number: int, scenario: Scenario) -> tuple[bool, ExchangeResult]:
        node = self.node(scenario.who)
        node.clock_offset = scenario.clock_offset
        identity = self.identities[scenario.who]
        ar_id = ipaddress.IPv6Address(self.lab.ar_id).packed
        ar_log, hks_log = LogCursor(self.lab.ar_log), LogCursor(self.lab.hks_log)
        self.out(f"\n[{number}] {scenario.title}")

        def show(event: Event) -> None:
            self.out("    " + describe_event(event))

        clock = SkippingClock()
        with contextlib.ExitStack() as stack:
            transport: Transport = self.transport(scenario.who)
            stack.callback(transport.close)
            if scenario.lose_first:
                # Loss on the MN's own link: known at once, so the MN's clock skips to its
                # retransmission timer rather than waiting HKEY_REQ_TOUT (docs/lab.md).
                transport = LossyTransport(
                    transport, drop=1, on_drop=lambda: clock.skip_to(node.next_timer())
                )
                self.out("    (the MN's first datagram is lost on its link; its clock skips to "
                         "the retransmission timer)")  # fmt: skip
            # The production default: a direct request's Key CoA is the MN's own address.
            coa = transport.local_address(ar_id)
            self.out(
                f"    who: {identity.nai}, CoA "
                f"{'NULL' if scenario.kind == 'refresh' else ipaddress.IPv6Address(coa)}, "
                f"AR-ID {self.lab.ar_id}"
            )
            start = starter(node, Kind(scenario.kind), ar_id, coa)
            result = run_exchange(node, transport, start, show, clock=clock)
        sent = [e for e in result.events if isinstance(e, RequestSent)]
        self._hops(identity.nai, ar_log, hks_log, sent[-1].message_id if sent else None)
        ok = _matches(scenario.expect, result)
        self.out(f"    => {'as expected' if ok else 'NOT as expected'} ({scenario.expect})")
        return ok, result

    def _hops(
        self, nai: str, ar_log: LogCursor, hks_log: LogCursor, last_message_id: int | None
    ) -> None:
        """Print what the HKS and the AR logged for this MN; wait (bounded) for the AR's
        line about the exchange's last HKReq, so that the account is complete."""
        ar_lines: list[str] = []

        def ar_logged() -> bool:
            ar_lines.extend(line for line in ar_log.new_lines() if nai in line)
            if last_message_id is None:
                return bool(ar_lines)
            return any(_message_id(line) == last_message_id for line in ar_lines)

        try:
            wait_for(ar_logged, HOP_LOG_WAIT, "the AR's log line")
        except LabError:
            ar_lines.append("(no log line from the AR for this MN)")
        hks_lines = [line for line in hks_log.new_lines() if "hkp_hks" in line and nai in line]
        for line in hks_lines or ["(the HKS was not asked)"]:
            self.out(f"    HKS decided: {_tidy(line)}")
        for line in ar_lines:
            self.out(f"    AR decided:  {_tidy(line)}")


def _message_id(line: str) -> int | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    value = record.get("message_id") if isinstance(record, dict) else None
    return value if isinstance(value, int) else None


def _tidy(line: str) -> str:
    """The decision in a log line: FreeRADIUS's prefix dropped, the AR's JSON summarised."""
    if "hkp_hks: " in line:
        return line.split("hkp_hks: ", 1)[1]
    try:
        record = json.loads(line)
    except ValueError:
        return line.strip()
    if not isinstance(record, dict):
        return line.strip()
    parts = [str(record.get("outcome") or record.get("event", "?"))]
    if record.get("status") is not None:
        parts.append(status_name(int(record["status"])))
    if record.get("spi") is not None:
        parts.append(f"SPI {record['spi']}")
    if record.get("coa") is not None:
        parts.append(f"CoA {record['coa']}")
    if record.get("message_id") is not None:
        parts.append(f"Message ID {record['message_id']}")
    if record.get("ms") is not None:
        parts.append(f"{record['ms']} ms at the AR")
    if record.get("reason"):
        parts.append(str(record["reason"]))
    return ", ".join(parts)


__all__ = ["PROHIBITED", "SCENARIOS", "Runner", "Scenario"]
