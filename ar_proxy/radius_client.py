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
import socket
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

from pyrad import packet as rpacket
from pyrad.dictionary import Dictionary

from hkp_radius.ar.events import HKSAccept, HKSAnswer, HKSReject, SendAccessRequest
from hkp_radius.crypto.salt import salt_decrypt
from hkp_radius.errors import DecodeError
from hkp_radius.wire import radius_attrs

from .clock import Clock, MonotonicClock, Timer
from .config import HomeServer, Realm
from .logs import emit
from .pools import Pools, PoolType, StateChange
from .radius_encoding import AttributeEncoder, request_packet
from .radius_lanes import (
    AUTHENTICATOR_LENGTH,
    REPLY_ATTRIBUTES,
    Key,
    Lane,
    RandomPool,
    _ReplyFuture,
    settle,
)
from .radsec import RadSecClient, RadSecError

log = logging.getLogger("hkp-ar.radius")


@dataclass(eq=False)
class _Flight:
    """One Access-Request through its realm: the server being tried, its packet, the
    transmissions left and the timer of the current response window."""

    ref: int
    request: SendAccessRequest
    realm: Realm
    order: Iterator[HomeServer]
    server: HomeServer | None = None  # being tried (counted as started by the pools)
    started: float = 0.0
    lane: Lane | None = None
    identifier: int = -1
    raw: bytes = b""
    sends_left: int = 0
    timer: Timer | None = None
    task: asyncio.Task[None] | None = None  # a RadSec exchange, or the lane it waits for


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
        self._lanes: dict[str, list[Lane]] = {}
        self.pools = Pools(())
        self._prober: asyncio.Task[None] | None = None
        self._probes: set[asyncio.Task[None]] = set()
        self._wake: asyncio.Future[None] | None = None
        self._flights: dict[int, _Flight] = {}
        self._cancelled: list[asyncio.Task[None]] = []  # cancelled, not yet ended
        self._vendor_id = dictionary.vendors.GetForward("HKP")
        self._random = RandomPool()
        self._encoder = AttributeEncoder(dictionary)
        # The reply attributes read (_answer), by their pyrad key: a reply is decoded
        # only as far as these (Lane.decode).
        self._reply_names = tuple((name, self._key(name)) for name in REPLY_ATTRIBUTES)
        self._reply_keys = frozenset(key for _, key in self._reply_names)
        self._opening: dict[str, asyncio.Task[None]] = {}  # a socket being opened, by server
        self._lane_waiters: dict[str, list[_Flight]] = {}  # flights waiting for it
        self.radsec = RadSecClient(dictionary, self.clock)  # the `proto = tls` home servers

    # ---- the role's actions ------------------------------------------------------------

    def send(self, request: SendAccessRequest, realm: Realm | None) -> None:
        if realm is None:
            reason = "no [realm] section for this NAI and no [realm DEFAULT]"
            asyncio.get_running_loop().call_soon(self._on_timeout, request.ref, reason)
            return
        order = iter(self._order(realm, request.nai))
        flight = _Flight(request.ref, request, realm, order)
        self._flights[request.ref] = flight
        if self._prober is None:
            self._prober = asyncio.get_running_loop().create_task(self._probe_loop())
        self._guarded(self._next_server, flight)

    def cancel(self, ref: int) -> None:
        flight = self._flights.pop(ref, None)
        if flight is not None:
            self._stop(flight)
            if flight.server is not None:
                self.pools.abandoned(flight.server)
                flight.server = None

    def _stop(self, flight: _Flight) -> None:
        """No more timer, Identifier or task for this flight."""
        if flight.timer is not None:
            flight.timer.cancel()
            flight.timer = None
        if flight.lane is not None:  # its Identifier is free again
            flight.lane.waiting.pop(flight.identifier, None)
            flight.lane = None
        task, flight.task = flight.task, None
        if task is not None and not task.done():
            task.cancel()
            self._cancelled.append(task)  # close() awaits it
            task.add_done_callback(self._forget)

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
        tasks += list(self._opening.values())
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

    # ---- one request through its realm: callbacks, one timer per window ----------------

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

    def _live(self, flight: _Flight) -> bool:
        return self._flights.get(flight.ref) is flight

    def _guarded(self, step: Callable[..., None], flight: _Flight, *args: object) -> None:
        """Run one step of a flight; an error ends it as a timeout, never the daemon."""
        try:
            step(flight, *args)
        except DecodeError as exc:  # attributes the request cannot carry
            self._fail(flight, f"cannot build the Access-Request: {exc}")
        except Exception:  # a bug here must not kill the daemon, nor leave state behind
            log.exception("RADIUS exchange for ref %d failed", flight.ref)
            self._fail(flight, "internal error in the RADIUS client")

    def _fail(self, flight: _Flight, reason: str) -> None:
        if self._flights.pop(flight.ref, None) is flight:
            self._stop(flight)
            if flight.server is not None:
                self.pools.abandoned(flight.server)
                flight.server = None
            self._on_timeout(flight.ref, reason)

    def _next_server(self, flight: _Flight) -> None:
        """Start the next usable server of the flight's order, or end it unanswered."""
        for server in flight.order:
            if not self.pools.may_use(server, flight.realm.servers, self.clock.now()):
                continue  # marked dead since this request's order was made
            flight.server, flight.started = server, self.clock.now()
            self.pools.started(server)
            loop = asyncio.get_running_loop()
            if server.proto == "tls":  # RadSec: its own connection and Identifiers
                flight.task = loop.create_task(self._radsec_exchange(flight, server))
                return
            self._start_on_lane(flight, server)
            return
        self._flights.pop(flight.ref, None)
        self._on_timeout(flight.ref, f"no answer from the {len(flight.realm.servers)} "
                         f"home server(s) of realm {flight.realm.name}")  # fmt: skip

    def _start_on_lane(self, flight: _Flight, server: HomeServer) -> None:
        lane, identifier = self._free_id(server)
        if lane is None:  # every socket full, or none yet: open one, then send
            self._lane_waiters.setdefault(server.name, []).append(flight)
            if server.name not in self._opening:
                loop = asyncio.get_running_loop()
                self._opening[server.name] = loop.create_task(self._open_lane(server))
            return
        packet = self._build(flight.request, server, identifier)
        flight.raw = request_packet(packet)
        flight.lane, flight.identifier = lane, identifier
        lane.waiting[identifier] = (packet, partial(self._replied_udp, flight))
        flight.sends_left = server.retries + 1
        self._transmit(flight)

    def _transmit(self, flight: _Flight) -> None:
        """Send the packet (the same one each time: RFC 5080 §2.2.1), window armed first."""
        server, lane = flight.server, flight.lane
        assert server is not None and lane is not None and lane.transport is not None
        flight.sends_left -= 1
        window_end = self.clock.now() + server.response_window
        flight.timer = self.clock.call_at(window_end, partial(self._window_ended, flight))
        lane.transport.sendto(flight.raw)

    def _window_ended(self, flight: _Flight) -> None:
        flight.timer = None
        if self._live(flight):
            self._guarded(self._after_window, flight)

    def _after_window(self, flight: _Flight) -> None:
        if flight.sends_left > 0:
            self._transmit(flight)
            return
        self._stop(flight)
        server, flight.server = flight.server, None
        assert server is not None
        self._diagnose_silence(server, flight.started)
        self._log_pool(self.pools.unanswered(server, self.clock.now()))
        self._next_server(flight)

    def _replied_udp(
        self, flight: _Flight, request: rpacket.AuthPacket, reply: rpacket.AuthPacket
    ) -> None:
        flight.lane = None  # its Identifier is free again (the lane dropped it)
        if self._live(flight):
            self._guarded(self._replied, flight, request, reply)

    def _replied(
        self, flight: _Flight, request: rpacket.AuthPacket, reply: rpacket.AuthPacket
    ) -> None:
        self._stop(flight)
        server, flight.server = flight.server, None
        assert server is not None
        self._on_result(server.name, "answered")
        self._log_pool(self.pools.answered(server, self.clock.now()))
        answer = self._answer(server, request, reply)
        if self._flights.pop(flight.ref, None) is not None:
            self._on_answer(flight.ref, answer)

    def _unreachable(self, flight: _Flight, server: HomeServer, exc: OSError) -> None:
        """Its socket cannot be opened (no route, bad scope) or RadSec has no connection."""
        flight.server = None
        failed = "no_connection" if isinstance(exc, RadSecError) else "unreachable"
        self._on_result(server.name, failed)
        log.warning("home server %s (%s:%d) cannot be reached: %s",
                    server.name, server.host, server.port, exc)  # fmt: skip
        self._log_pool(self.pools.unanswered(server, self.clock.now()))
        self._next_server(flight)

    def _free_id(self, server: HomeServer) -> tuple[Lane, int] | tuple[None, int]:
        for lane in self._lanes.get(server.name, ()):
            identifier = lane.free_id(self._random.take(1)[0])
            if identifier is not None:
                return lane, identifier
        return None, -1

    async def _open_lane(self, server: HomeServer) -> None:
        """One more socket to `server`; then the flights that waited for one go on."""
        error: OSError | None = None
        try:
            await self._new_lane(server)
        except OSError as exc:
            error = exc
        finally:
            self._opening.pop(server.name, None)
        for flight in self._lane_waiters.pop(server.name, []):
            if not self._live(flight):
                continue
            if error is not None:
                self._guarded(self._unreachable, flight, server, error)
                continue
            self._guarded(self._start_on_lane, flight, server)

    async def _radsec_exchange(self, flight: _Flight, server: HomeServer) -> None:
        try:
            result = await self.radsec.exchange(
                server, lambda identifier: self._build(flight.request, server, identifier)
            )
        except OSError as exc:  # RadSecError: no connection
            flight.task = None
            if self._live(flight):
                self._guarded(self._unreachable, flight, server, exc)
            return
        except asyncio.CancelledError:
            raise
        except DecodeError as exc:
            flight.task = None
            self._fail(flight, f"cannot build the Access-Request: {exc}")
            return
        except Exception:
            flight.task = None
            log.exception("RADIUS exchange for ref %d failed", flight.ref)
            self._fail(flight, "internal error in the RADIUS client")
            return
        flight.task = None
        if not self._live(flight):
            return
        if result is not None:
            self._guarded(self._replied, flight, *result)
            return
        flight.server = None
        self._diagnose_silence(server, flight.started)
        self._log_pool(self.pools.unanswered(server, self.clock.now()))
        self._guarded(self._next_server, flight)

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
            lane, identifier = self._free_id(server)
            if lane is None:
                lane = await self._new_lane(server)
                identifier = lane.free_id(self._random.take(1)[0]) or 0
            probe = rpacket.AuthPacket(
                code=rpacket.StatusServer, id=identifier, secret=server.secret,
                dict=self.dictionary,
            )  # fmt: skip
            probe.add_message_authenticator()  # RFC 5997 §3: required
            future: _ReplyFuture = asyncio.get_running_loop().create_future()
            lane.waiting[identifier] = (probe, lambda _request, reply: settle(future, reply))
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

    async def _new_lane(self, server: HomeServer) -> Lane:
        lane = Lane(server, self.clock, self._reply_keys)
        lane.dictionary = self.dictionary
        family = socket.AF_INET6 if ":" in server.host else socket.AF_INET
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: lane, remote_addr=(server.host, server.port), family=family
        )
        lane.transport = transport
        self._lanes.setdefault(server.name, []).append(lane)
        return lane

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

    def _key(self, name: str) -> Key:
        attribute = self.dictionary.attributes[name]
        return (self._vendor_id, attribute.code) if attribute.vendor else attribute.code

    def _answer(
        self, server: HomeServer, request: rpacket.AuthPacket, reply: rpacket.AuthPacket
    ) -> HKSAnswer:
        attributes: dict[str, list[radius_attrs.AttributeValue]] = {}
        for name, key in self._reply_names:
            values = OrderedDict.get(reply, key)
            if values:
                attributes[name] = [bytes(v) for v in values]
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
