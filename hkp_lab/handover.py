"""The handover lab (issue 12): one HKS, several ARs each on its own access link, an MN
moving between them in network namespaces (raw IPv6, as root), and the steps of a
scenario run against them: key requests, §6.5 indirect refreshes, §6.2.3 returns with
the V flag, and FMIPv6 FBUs authenticated with an HK (P11), forged ones included.

Each step's outcome is checked against what the scenario expects and told in the
account: which key (SPI), which CoA, and what each router decided (its log lines).
Never a key.
"""

from __future__ import annotations

import ipaddress
import json
import os
import select
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hkp_radius.crypto.fmip import sign_fmip, verify_badf
from hkp_radius.errors import DecodeError
from hkp_radius.mn import HeldKey, KeyEstablished, Kind, MNConfig, MobileNode
from hkp_radius.wire.fmip import (
    MH_TYPE_FBACK,
    AlternateCareOfAddress,
    BindingAuthorizationFMIP,
    FastBindingAck,
    FastBindingUpdate,
    decode_fmip,
)
from hkp_support.freeradius import terminate
from mn_client import RawIPv6Transport, run_exchange, starter, system_random

from . import links, netns
from .account import LogCursor, _matches
from .lab import STOP_TIMEOUT, Lab, LabError, spawn_ar, wait_ar_ready, wait_for
from .netns import NetnsError

IPPROTO_MH = 135
IPV6_CHECKSUM = 7
MH_CHECKSUM_OFFSET = 4
LOG_WAIT = 5.0  # bound on waiting for an AR's log line (or FBack) about a step
LOG_POLL = 0.02  # polling interval of the AR's log within that bound
FBU_LIFETIME = 15  # x 4 s (RFC 5568 §6.3.1 units)
FORGERIES = ("none", "wrong-key", "edited", "replay")


@dataclass(frozen=True)
class Step:
    do: str  # attach | request | refresh | verify | fbu
    line: int  # where the step starts in the scenario file
    who: str = ""
    ar: str = ""
    link: str = ""
    key_of: str = ""  # fbu: whose key (which AR's) signs; default: ar's
    spi_of: str = ""  # fbu: put this AR's SPI in the BADF (a forgery); default: key_of's
    forge: str = "none"
    expect: str = ""


@dataclass
class StepResult:
    step: Step
    ok: bool
    said: list[str] = field(default_factory=list)


class HandoverLab(Lab):
    """A Lab (the HKS and identities) with one hkp-ar per access router in `links`."""

    def __init__(self, directory: Path, routers: list[str]) -> None:
        super().__init__(directory, use_netns=True)
        self.router_names = routers
        self.links: links.HandoverTopology | None = None
        self.ar_processes: dict[str, subprocess.Popen[bytes]] = {}

    def ar_log_of(self, name: str) -> Path:
        return self.directory / f"ar-{name}" / "ar.log"

    def start(self, detach: bool = False) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o755)  # noqa: S103 - user freerad must reach the HKS's dir
        try:
            self._start_hks()
            try:
                self.links = links.create(self.router_names)
            except NetnsError as exc:
                raise LabError(f"cannot make the network namespaces: {exc}") from None
            for router in self.links.routers.values():
                self._start_router(router)
        except BaseException:
            self.stop()
            raise

    def _router_config(self, router: links.AccessRouterNode) -> str:
        assert self.hks is not None
        work = self.directory / f"ar-{router.name}"
        return "\n".join([
            *self.ar_common_lines(
                router.address, f"hkp-lab-{router.name}", work, router.namespace
            ),
            "[udp]", "enabled = no",
            "[raw]", "enabled = yes",
            *self.home_server_lines(),  # RadSec by default (Lab)
            "[realm DEFAULT]",
            "home_servers = lab-hks",
        ]) + "\n"  # fmt: skip

    def _start_router(self, router: links.AccessRouterNode) -> None:
        work = self.directory / f"ar-{router.name}"
        work.mkdir(parents=True, exist_ok=True)
        log_path = self.ar_log_of(router.name)
        process = spawn_ar(work, self._router_config(router), log_path)
        self.ar_processes[router.name] = process
        wait_ar_ready(process, log_path, f"hkp-ar {router.name}")

    def stop(self) -> None:
        processes, self.ar_processes = self.ar_processes, {}
        topology, self.links = self.links, None
        try:
            for process in processes.values():
                terminate(process, STOP_TIMEOUT)
        finally:
            try:
                super().stop()
            finally:
                if topology is not None:
                    links.destroy(topology)


def _ar_records(cursor: LogCursor, events: tuple[str, ...]) -> list[dict[str, Any]]:
    """The AR's new JSON log records whose event is one of `events`."""
    found = []
    for line in cursor.new_lines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("event") in events:
            found.append(record)
    return found


class HandoverRunner:
    """Runs steps against a started HandoverLab; `out` gets the account's lines."""

    def __init__(self, lab: HandoverLab, out: Callable[[str], None] = print) -> None:
        assert lab.links is not None
        self.lab = lab
        self.links = lab.links
        self.out = out
        self.nodes: dict[str, MobileNode] = {}
        self.keys: dict[tuple[str, str], HeldKey] = {}  # (who, AR name) -> the key held
        self.sequence: dict[tuple[str, str], int] = {}
        self.last_fbu: dict[tuple[str, str], bytes] = {}

    def node(self, who: str) -> MobileNode:
        if who not in self.nodes:
            identity = next(i for i in self.lab.identities if i.nai.split("@")[0] == who)
            config = MNConfig(nai=identity.nai.encode(), hmk=identity.hmk)
            self.nodes[who] = MobileNode(config, system_random)
        return self.nodes[who]

    def _ar_id(self, name: str) -> bytes:
        return ipaddress.IPv6Address(self.links.routers[name].address).packed

    def _here(self) -> links.AccessRouterNode:
        if self.links.attached is None:
            raise LabError("the MN is attached to no link: an `attach` step comes first")
        return self.links.routers[self.links.attached]

    def run(self, steps: list[Step]) -> list[StepResult]:
        results = []
        for number, step in enumerate(steps, 1):
            result = StepResult(step, False)
            try:
                result.ok = getattr(self, f"_do_{step.do}")(step, result.said)
            except (LabError, OSError, NetnsError) as exc:
                result.said.append(f"error: {exc}")
            mark = "ok" if result.ok else "FAILED"
            self.out(f"step {number} (line {step.line}) {step.do}: {mark}")
            for line in result.said:
                self.out(f"    {line}")
            results.append(result)
        return results

    # ---- steps -----------------------------------------------------------------------

    def _do_attach(self, step: Step, said: list[str]) -> bool:
        router = self.links.attach(step.link)
        said.append(f"MN on {router.name}'s link, CoA {router.mn_address}")
        return True

    def _exchange(self, step: Step, kind: Kind, said: list[str]) -> bool:
        here = self._here()
        node = self.node(step.who)
        ar = self.links.routers[step.ar]
        coa = ipaddress.IPv6Address(here.mn_address).packed
        cursor = LogCursor(self.lab.ar_log_of(ar.name))
        with netns.inside(self.links.mn_ns):
            transport = RawIPv6Transport(source=here.mn_address)
        try:
            result = run_exchange(node, transport, starter(node, kind, self._ar_id(ar.name), coa))
        finally:
            transport.close()
        final = result.final
        route = "directly" if ar.name == here.name else f"via {here.name}"
        if isinstance(final, KeyEstablished):
            self.keys[(step.who, ar.name)] = final.key
            bound = "NULL (§6.5)" if kind is Kind.REFRESH else here.mn_address
            said.append(
                f"{step.who} -> {ar.name} {route}: "
                f"{'verified' if final.verified else 'new'} key SPI {final.key.spi}, "
                f"Key CoA {bound}"
            )
        else:
            said.append(f"{step.who} -> {ar.name} {route}: no key ({type(final).__name__})")
        records: list[dict[str, Any]] = []

        def logged() -> bool:
            records.extend(_ar_records(cursor, ("exchange",)))
            return bool(records)

        try:
            wait_for(logged, LOG_WAIT, f"{ar.name}'s exchange line")
            r = records[-1]
            said.append(f"{ar.name} decided: {r.get('outcome')} (SPI {r.get('spi')}, "
                        f"CoA bound {r.get('coa') or 'none'})")  # fmt: skip
        except LabError:
            said.append(f"{ar.name} logged no exchange")
        return _matches(step.expect, result)

    def _do_request(self, step: Step, said: list[str]) -> bool:
        return self._exchange(step, Kind.REQUEST, said)

    def _do_refresh(self, step: Step, said: list[str]) -> bool:
        return self._exchange(step, Kind.REFRESH, said)

    def _do_verify(self, step: Step, said: list[str]) -> bool:
        return self._exchange(step, Kind.VERIFY, said)

    def _do_fbu(self, step: Step, said: list[str]) -> bool:
        here = self._here()
        par = self.links.routers[step.ar]
        key = self.keys.get((step.who, step.key_of or step.ar))
        if key is None:
            raise LabError(f"{step.who} holds no key for {step.key_of or step.ar}")
        spi = key.spi
        if step.spi_of:
            other = self.keys.get((step.who, step.spi_of))
            if other is None:
                raise LabError(f"{step.who} holds no key for {step.spi_of}")
            spi = other.spi
        source = ipaddress.IPv6Address(here.mn_address).packed
        # Mobility Data's care-of address: the CoA bound to the HK, or (a key refreshed
        # with the NULL CoA binds none, §6.5) the FBU's source (P11, erratum E3).
        bound = key.care_of_address if any(key.care_of_address) else source
        par_address = self._ar_id(par.name)
        pair = (step.who, par.name)
        if step.forge == "replay":
            wire = self.last_fbu.get(pair)
            if wire is None:
                raise LabError("nothing to replay: no FBU was sent to this AR yet")
            sequence = decode_fmip(wire).sequence
        else:
            sequence = self.sequence.get(pair, 0) + 1
            fbu = FastBindingUpdate(
                sequence=sequence,
                lifetime=FBU_LIFETIME,
                badf=BindingAuthorizationFMIP(spi),
                options=(AlternateCareOfAddress(source),),
            )
            hk = bytes(len(key.hk)) if step.forge == "wrong-key" else key.hk
            wire = sign_fmip(fbu, hk, bound, par_address)
            if step.forge == "edited":
                edited = bytearray(wire)
                edited[10] ^= 0x01  # the Lifetime, after signing
                wire = bytes(edited)
        cursor = LogCursor(self.lab.ar_log_of(par.name))
        fback, record = self._send_fbu(here.mn_address, par.address, wire, cursor)
        signer = f"HK of {step.key_of or step.ar}" if step.forge == "none" else step.forge
        said.append(
            f"{step.who} FBU #{sequence} to {par.name} from {here.mn_address}, "
            f"BADF SPI {spi} ({signer})"
        )
        fback_ok = False
        if fback is not None:
            try:
                message = decode_fmip(fback)
                fback_ok = (
                    isinstance(message, FastBindingAck)
                    and message.status == 0
                    and message.sequence == sequence
                    and verify_badf(fback, message.badf, key.hk, bound, par_address)
                )
            except DecodeError:
                fback_ok = False
            said.append(f"FBack from {par.name}: {'verified with the HK' if fback_ok else 'BAD'}")
        else:
            said.append(f"no FBack from {par.name}")
        if record is None:
            said.append(f"{par.name} logged nothing about the FBU")
        elif record["event"] == "fbu-accepted":
            said.append(f"{par.name} decided: accepted (SPI {record.get('spi')}, CoA "
                        f"{record.get('coa')} -> {record.get('new_coa')})")  # fmt: skip
        else:
            said.append(f"{par.name} decided: refused ({record.get('reason')})")
        records = [record] if record is not None else []
        decision = records[-1]["event"] if records else None
        if fback_ok and step.forge != "replay":
            self.sequence[pair] = sequence
            self.last_fbu[pair] = wire
        if step.expect == "fback":
            return fback_ok and decision == "fbu-accepted"
        return fback is None and decision == "fbu-refused"

    def _send_fbu(
        self, source: str, destination: str, wire: bytes, cursor: LogCursor
    ) -> tuple[bytes | None, dict[str, Any] | None]:
        """Send `wire` over raw IPv6 from the MN's namespace and wait (bound LOG_WAIT) for
        the PAR's decision line and, when it accepted, the FBack: a refused FBU is
        silently discarded (P11), so its log line is the event that ends the wait."""
        with netns.inside(self.links.mn_ns):
            sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_MH)
        fback: bytes | None = None
        record: dict[str, Any] | None = None
        try:
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_CHECKSUM, MH_CHECKSUM_OFFSET)
            sock.bind((source, 0))
            sock.sendto(wire, (destination, 0))
            deadline = time.monotonic() + LOG_WAIT
            while (left := deadline - time.monotonic()) > 0:
                if record is None:
                    found = _ar_records(cursor, ("fbu-accepted", "fbu-refused"))
                    record = found[-1] if found else None
                if record is not None and (record["event"] == "fbu-refused" or fback):
                    break
                # Wake for the FBack, or after a poll interval to read the log again.
                readable, _, _ = select.select([sock], [], [], min(left, LOG_POLL))
                if readable:
                    data, sender = sock.recvfrom(2048)
                    if sender[0] == destination and len(data) > 2 and data[2] == MH_TYPE_FBACK:
                        fback = data
            return fback, record
        finally:
            sock.close()
