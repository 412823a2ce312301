"""RADIUS to the HKS (PROFILE P8): pyrad packets over our own asyncio sockets.

pyrad encodes and decodes; this module owns identifiers, retransmission and fail-over
so that their timing is exact (pyrad's ClientAsync defaults can stall for minutes).

Per request: the realm of the NAI gives a pool of home servers (config.Realm), and
ar_proxy/pools.py their order (fail-over, load-balance, keyed-balance; dead servers
last, or, with Status-Server checks, not at all until their probes are answered). Each
server is sent the same packet (same Identifier and Request Authenticator, RFC 5080
§2.2.1) `retries + 1` times, `response_window` apart; then the next server. Every request carries a
Message-Authenticator; every reply must carry a valid one and a valid Response
Authenticator (pyrad VerifyReply, enforce_ma), or it is dropped as if never received.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from pyrad import packet as rpacket
from pyrad.dictionary import Dictionary

from hkp_radius.ar.events import HKSAccept, HKSAnswer, HKSReject, SendAccessRequest
from hkp_radius.crypto.salt import salt_decrypt
from hkp_radius.errors import DecodeError
from hkp_radius.wire import radius_attrs

from .clock import Clock, MonotonicClock
from .config import HomeServer, Realm
from .logs import emit
from .pools import Pools, PoolType, StateChange
from .radius_encoding import AttributeEncoder
from .radsec import RadSecClient, RadSecError

log = logging.getLogger("hkp-ar.radius")

IDS_PER_SOCKET = 256  # RFC 2865 §3: the Identifier is one octet
AUTHENTICATOR_LENGTH = 16  # RFC 2865 §3
RANDOM_POOL = 4096  # octets read from the OS CSPRNG at once


class RandomPool:
    """The OS CSPRNG read RANDOM_POOL octets at a time, each octet handed out once.
    pyrad draws a Request Authenticator one octet per SystemRandom call (16 getrandom
    syscalls a packet, 5 % of the AR's CPU in issue 14's profile); this is one per
    ~250 packets. Unpredictable as before: the octets are os.urandom's, never reused."""

    def __init__(self, size: int = RANDOM_POOL) -> None:
        self._size = size
        self._pool = b""
        self._at = 0

    def take(self, count: int) -> bytes:
        if self._at + count > len(self._pool):
            self._pool = os.urandom(max(self._size, count))
            self._at = 0
        out = self._pool[self._at : self._at + count]
        self._at += count
        return out


_ReplyFuture = asyncio.Future[rpacket.AuthPacket]  # the verified reply


@dataclass
class _Flight:
    ref: int
    request: SendAccessRequest
    realm: Realm
    task: asyncio.Task[None] | None = None


class _Lane(asyncio.DatagramProtocol):
    """One UDP socket to one home server: up to 256 requests in flight."""

    def __init__(self, server: HomeServer, clock: Clock) -> None:
        self.server = server
        self.clock = clock
        self.transport: asyncio.DatagramTransport | None = None
        self.waiting: dict[int, tuple[rpacket.AuthPacket, _ReplyFuture]] = {}
        self.dictionary: Dictionary | None = None
        # When the kernel last reported ICMP port unreachable on this connected socket:
        # nothing listens on the server's port (FreeRADIUS stopped), unlike a server that
        # takes the packets and stays silent (a wrong shared secret).
        self.refused_at: float | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # CPython 3.11's selector datagram transport does not subclass DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def free_id(self, start: int) -> int | None:
        """A free Identifier, searching from `start` (random: RFC 5080 §2.2.1)."""
        if len(self.waiting) >= IDS_PER_SOCKET:
            return None
        for offset in range(IDS_PER_SOCKET):
            candidate = (start + offset) % IDS_PER_SOCKET
            if candidate not in self.waiting:
                return candidate
        return None

    def datagram_received(self, data: bytes, addr: object) -> None:
        if len(data) < 20:
            return
        entry = self.waiting.get(data[1])
        if entry is None:
            log.debug("reply from %s for no request in flight (id %d)", self.server.name, data[1])
            return
        request, future = entry
        try:
            reply = rpacket.AuthPacket(packet=data, secret=self.server.secret, dict=self.dictionary)
        except Exception as exc:  # pyrad raises several kinds on garbage
            log.warning("undecodable reply from home server %s: %s", self.server.name, exc)
            return
        if reply.code not in (rpacket.AccessAccept, rpacket.AccessReject):  # RFC 5997 too
            log.warning("home server %s answered with code %d", self.server.name, reply.code)
            return
        # A Status-Server answer proves liveness by its Response Authenticator (keyed
        # with the secret); FreeRADIUS signs it only when told to (RFC 5997 §3: SHOULD).
        enforce_ma = request.code != rpacket.StatusServer
        try:
            valid = request.VerifyReply(reply, data, enforce_ma=enforce_ma)
        except Exception:
            valid = False
        if not valid:
            log.warning(
                "reply from home server %s failed the Response Authenticator or "
                "Message-Authenticator check (a wrong secret, or a late reply to an earlier "
                "request with this identifier): dropped",
                self.server.name,
            )
            return
        if not future.done():
            future.set_result(reply)

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, ConnectionRefusedError):
            self.refused_at = self.clock.now()
        log.debug("home server %s: %s", self.server.name, exc)


class RadiusClient:
    def __init__(
        self,
        dictionary: Dictionary,
        on_answer: Callable[[int, HKSAnswer], None],
        on_timeout: Callable[[int, str], None],
        nas_identifier: str | None = None,
        nas_ip_address: str | None = None,
        nas_ipv6_address: str | None = None,
        on_result: Callable[[str, str], None] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.dictionary = dictionary
        self.clock: Clock = clock or MonotonicClock()
        self._on_result = on_result or (lambda server, result: None)
        self._on_answer = on_answer
        self._on_timeout = on_timeout
        self._nas = (nas_identifier, nas_ip_address, nas_ipv6_address)
        self._lanes: dict[str, list[_Lane]] = {}
        self.pools = Pools(())
        self._prober: asyncio.Task[None] | None = None
        self._probes: set[asyncio.Task[None]] = set()
        self._wake: asyncio.Future[None] | None = None
        self._flights: dict[int, _Flight] = {}
        self._cancelled: list[asyncio.Task[None]] = []  # cancelled, not yet ended
        self._vendor_id = dictionary.vendors.GetForward("HKP")
        self._random = RandomPool()
        self._encoder = AttributeEncoder(dictionary)
        self.radsec = RadSecClient(dictionary, self.clock)  # the `proto = tls` home servers

    # ---- the role's actions ------------------------------------------------------------

    def send(self, request: SendAccessRequest, realm: Realm | None) -> None:
        if realm is None:
            reason = "no [realm] section for this NAI and no [realm DEFAULT]"
            asyncio.get_running_loop().call_soon(self._on_timeout, request.ref, reason)
            return
        flight = _Flight(request.ref, request, realm)
        self._flights[request.ref] = flight
        loop = asyncio.get_running_loop()
        flight.task = loop.create_task(self._run(flight))
        if self._prober is None:
            self._prober = loop.create_task(self._probe_loop())

    def cancel(self, ref: int) -> None:
        flight = self._flights.pop(ref, None)
        if flight is not None and flight.task is not None:
            flight.task.cancel()
            if not flight.task.done():  # close() awaits it
                self._cancelled.append(flight.task)
                flight.task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        if task in self._cancelled:
            self._cancelled.remove(task)

    async def close(self) -> None:
        """Cancel every request in flight and wait until each task has ended, then close
        the sockets: nothing of this client runs after it returns."""
        for ref in list(self._flights):
            self.cancel(ref)
        tasks, self._cancelled = self._cancelled, []
        if self._prober is not None:
            tasks.append(self._prober)
            self._prober = None
        tasks += list(self._probes)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for health in self.pools.health.values():  # the per-server counters, at shutdown
            emit(
                logging.INFO, "home_server_counters", home_server=health.server.name,
                state="alive" if health.dead_since is None else "dead", **health.counters,
            )  # fmt: skip
        for lanes in self._lanes.values():
            for lane in lanes:
                if lane.transport is not None:
                    lane.transport.close()
        self._lanes.clear()
        await self.radsec.close()

    # ---- one request through its realm -------------------------------------------------

    def _order(self, realm: Realm, nai: bytes) -> list[HomeServer]:
        return self.pools.order(
            realm.name, PoolType(realm.type), realm.servers, nai, self.clock.now()
        )

    def _log_pool(self, changes: list[StateChange]) -> None:
        # INFO: the WARNING for a silent server is _diagnose_silence's, saying what to
        # check; these lines carry the pool's view (state and per-server counters).
        for change in changes:
            emit(
                logging.INFO, "home_server_state", home_server=change.server,
                state=change.state, why=change.why, message=change.text, **change.counters,
            )  # fmt: skip
        if changes:
            self._rearm()

    async def _run(self, flight: _Flight) -> None:
        try:
            for server in self._order(flight.realm, flight.request.nai):
                if not self.pools.may_use(server, flight.realm.servers, self.clock.now()):
                    continue  # marked dead since this request's order was made
                started = self.clock.now()
                self.pools.started(server)
                try:
                    result = await self._try_server(flight, server)
                except OSError as exc:  # its socket cannot be opened (no route, bad scope)
                    failed = "no_connection" if isinstance(exc, RadSecError) else "unreachable"
                    self._on_result(server.name, failed)
                    log.warning("home server %s (%s:%d) cannot be reached: %s",
                                server.name, server.host, server.port, exc)  # fmt: skip
                    self._log_pool(self.pools.unanswered(server, self.clock.now()))
                    continue
                except BaseException:
                    self.pools.abandoned(server)
                    raise
                if result is not None:
                    request, reply = result
                    self._on_result(server.name, "answered")
                    self._log_pool(self.pools.answered(server, self.clock.now()))
                    self._finish(flight, self._answer(server, request, reply))
                    return
                self._diagnose_silence(server, started)
                self._log_pool(self.pools.unanswered(server, self.clock.now()))
            self._flights.pop(flight.ref, None)
            self._on_timeout(flight.ref, f"no answer from the {len(flight.realm.servers)} "
                             f"home server(s) of realm {flight.realm.name}")  # fmt: skip
        except asyncio.CancelledError:
            raise
        except DecodeError as exc:  # attributes the request cannot carry
            self._flights.pop(flight.ref, None)
            self._on_timeout(flight.ref, f"cannot build the Access-Request: {exc}")
        except Exception:  # a bug here must not kill the daemon, nor leave state behind
            log.exception("RADIUS exchange for ref %d failed", flight.ref)
            self._flights.pop(flight.ref, None)
            self._on_timeout(flight.ref, "internal error in the RADIUS client")

    # ---- Status-Server probes of dead servers (RFC 5997) ---------------------------------

    def _rearm(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def _probe_loop(self) -> None:
        """Sleep until the pools' next probe is due (or they change), send what is due."""
        loop = asyncio.get_running_loop()
        while True:
            self._wake = loop.create_future()
            due_at = self.pools.next_timer()
            try:
                if due_at is None:
                    await self._wake
                else:
                    await self.clock.wait(self._wake, max(0.0, due_at - self.clock.now()))
            except TimeoutError:
                pass
            for server in self.pools.probes_due(self.clock.now()):
                task = loop.create_task(self._probe(server))
                self._probes.add(task)
                task.add_done_callback(self._probes.discard)

    async def _probe(self, server: HomeServer) -> None:
        answered = False
        try:
            lane, identifier = await self._lane_with_free_id(server)
            probe = rpacket.AuthPacket(
                code=rpacket.StatusServer, id=identifier, secret=server.secret,
                dict=self.dictionary,
            )  # fmt: skip
            probe.add_message_authenticator()  # RFC 5997 §3: required
            future: _ReplyFuture = asyncio.get_running_loop().create_future()
            lane.waiting[identifier] = (probe, future)
            try:
                assert lane.transport is not None
                lane.transport.sendto(probe.RequestPacket())
                reply = await self.clock.wait(future, server.check_timeout)
                answered = reply.code == rpacket.AccessAccept
            except TimeoutError:
                answered = False
            finally:
                lane.waiting.pop(identifier, None)
        except OSError as exc:
            log.debug("Status-Server to %s not sent: %s", server.name, exc)
        finally:
            lines = self.pools.probe_result(server, answered, self.clock.now())
            self._on_result(server.name, "probe_answered" if answered else "probe_unanswered")
            self._log_pool(lines)
            self._rearm()

    def _diagnose_silence(self, server: HomeServer, since: float) -> None:
        """One WARNING line that tells a closed port from a silent server, with what to
        check (docs/ar.md "When the HKS does not answer")."""
        refused = any(
            lane.refused_at is not None and lane.refused_at >= since
            for lane in self._lanes.get(server.name, [])
        )
        if server.proto == "tls":
            self._on_result(server.name, "silent")
            self.radsec.note_silence(server)
            return
        where = f"home server {server.name} ({server.host}:{server.port})"
        tries = f"{server.retries + 1} transmission(s) in {server.budget:.3g} s"
        if refused:
            self._on_result(server.name, "refused")
            log.warning(
                "%s is down: its port is closed (ICMP port unreachable) after %s. Check that "
                "FreeRADIUS runs there (systemctl status freeradius) and listens on port %d "
                "(the HKS site's hkp_hks_listen_port), and [home_server %s] ipaddr/port",
                where, tries, server.port, server.name,
            )  # fmt: skip
        else:
            self._on_result(server.name, "silent")
            log.warning(
                "%s did not answer %s, and its port is not closed: most likely a wrong "
                "shared secret (FreeRADIUS drops such requests without a reply; its log says "
                "'Shared secret is incorrect'), or this AR is not a client there, or a "
                "filter drops the packets. Check that [home_server %s] secret equals the "
                "HKS's client secret for this AR's address",
                where, tries, server.name,
            )  # fmt: skip

    async def _try_server(
        self, flight: _Flight, server: HomeServer
    ) -> tuple[rpacket.AuthPacket, rpacket.AuthPacket] | None:
        """(request, verified reply), or None when the server stayed silent."""
        if server.proto == "tls":  # RadSec: its own connection and Identifiers
            return await self.radsec.exchange(
                server, lambda identifier: self._build(flight.request, server, identifier)
            )
        lane, identifier = await self._lane_with_free_id(server)
        request = self._build(flight.request, server, identifier)
        raw = request.RequestPacket()
        loop = asyncio.get_running_loop()
        future: _ReplyFuture = loop.create_future()
        lane.waiting[identifier] = (request, future)
        try:
            for _ in range(server.retries + 1):
                assert lane.transport is not None
                lane.transport.sendto(raw)
                try:
                    reply = await self.clock.wait(future, server.response_window)
                    return request, reply
                except TimeoutError:
                    continue
            return None
        finally:
            lane.waiting.pop(identifier, None)

    async def _lane_with_free_id(self, server: HomeServer) -> tuple[_Lane, int]:
        lanes = self._lanes.setdefault(server.name, [])
        for lane in lanes:
            identifier = lane.free_id(self._random.take(1)[0])
            if identifier is not None:
                return lane, identifier
        lane = _Lane(server, self.clock)
        lane.dictionary = self.dictionary
        family = socket.AF_INET6 if ":" in server.host else socket.AF_INET
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: lane, remote_addr=(server.host, server.port), family=family
        )
        lane.transport = transport
        lanes.append(lane)
        identifier = lane.free_id(self._random.take(1)[0])
        assert identifier is not None
        return lane, identifier

    def _build(
        self, request: SendAccessRequest, server: HomeServer, identifier: int
    ) -> rpacket.AuthPacket:
        packet = rpacket.AuthPacket(
            code=rpacket.AccessRequest,
            id=identifier,
            secret=server.secret,
            authenticator=self._random.take(AUTHENTICATOR_LENGTH),  # RFC 2865 §3
            dict=self.dictionary,
        )
        packet.add_message_authenticator()  # P8: always; first attribute (BlastRADIUS)
        nas_identifier, nas_ip, nas_ipv6 = self._nas
        for name, value in radius_attrs.access_request_attributes(
            request.mobility_header,
            request.nai,
            request.ar_address,
            request.care_of_address,
            nas_identifier=nas_identifier,
            nas_ip_address=nas_ip,
            nas_ipv6_address=nas_ipv6,
        ):
            self._encoder.add(packet, name, value)
        return packet

    def _raw_values(self, reply: rpacket.AuthPacket, name: str) -> list[bytes]:
        attribute = self.dictionary.attributes[name]
        key = (self._vendor_id, attribute.code) if attribute.vendor else attribute.code
        return [bytes(v) for v in dict.get(reply, key, [])]

    def _answer(
        self, server: HomeServer, request: rpacket.AuthPacket, reply: rpacket.AuthPacket
    ) -> HKSAnswer:
        names = (
            radius_attrs.HANDOVER_KEY,
            radius_attrs.HKS_NONCE,
            radius_attrs.KEY_LIFETIME,
            radius_attrs.PRF_ATTRIBUTE,
            radius_attrs.TIMESTAMP,
            radius_attrs.STATUS_CODE,
            radius_attrs.RESPONSE_HEADER,
        )
        attributes: dict[str, list[radius_attrs.AttributeValue]] = {}
        for name in names:
            values: list[radius_attrs.AttributeValue] = list(self._raw_values(reply, name))
            if values:
                attributes[name] = values
        if reply.code == rpacket.AccessReject:
            if radius_attrs.HANDOVER_KEY in attributes:
                log.warning("Access-Reject from %s carries key material: ignored", server.name)
            try:
                refusal = radius_attrs.parse_reject(attributes)
            except DecodeError as exc:
                log.warning("Access-Reject from %s unusable: %s", server.name, exc)
                return HKSReject(None)
            return HKSReject(refusal.response_header, refusal.status)
        hk_values = attributes.get(radius_attrs.HANDOVER_KEY, [])
        try:
            attributes[radius_attrs.HANDOVER_KEY] = [
                salt_decrypt(bytes(v), server.secret, request.authenticator)  # type: ignore[arg-type]
                for v in hk_values
            ]
            grant = radius_attrs.parse_accept(attributes)
        except DecodeError as exc:
            log.warning("Access-Accept from %s unusable: %s", server.name, exc)
            return HKSAccept(None, None)
        return HKSAccept(
            grant.handover_key, grant.hks_nonce, grant.lifetime, grant.prf, grant.timestamp
        )

    def _finish(self, flight: _Flight, answer: HKSAnswer) -> None:
        if self._flights.pop(flight.ref, None) is not None:
            self._on_answer(flight.ref, answer)
