"""RadSec (RADIUS over TLS, RFC 6614) to home servers with `proto = tls`.

Draft §7.1: the AAA channel MUST protect the messages' confidentiality and integrity;
over UDP only the HK is hidden. pyrad still builds and checks every packet (the
Message-Authenticator, the Response Authenticator, the salt-encrypted HK with the
shared secret "radsec", RFC 6614 §2.3); this module carries them:

- one TLS connection (asyncio streams, the standard library's ssl) per home server,
  RFC 6613 framing: a packet's own Length field delimits it in the stream;
- up to 256 requests in flight per connection, keyed by Identifier: the 257th waits
  for an Identifier to come free, it never reuses one in flight;
- no retransmission (RFC 6613 §2.6.1): a request is sent once per connection; a
  connection that stays silent is found by the RFC 3539-style watchdog below and
  closed, which fails its requests over to the next server of the realm;
- watchdog: with requests in flight and nothing received for `response_window`, or
  idle for `[tls] keepalive_interval`, a Status-Server (RFC 5997) goes out; any packet
  received counts as an answer; none within one more `response_window` and the
  connection is closed ("silent");
- reconnect with back-off: after a failed or lost connection the next attempt waits
  BACKOFF_START, doubling up to BACKOFF_MAX, reset by the first packet received.

Every refusal is one "radsec" log line saying why (docs/ar.md "RadSec").
"""

from __future__ import annotations

import asyncio
import collections
import logging
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pyrad import packet as rpacket
from pyrad.dictionary import Dictionary

from .clock import Clock, MonotonicClock
from .config import HomeServer, Realm, TlsSettings
from .logs import emit
from .radius_encoding import request_packet

log = logging.getLogger("hkp-ar.radsec")

IDS_PER_CONNECTION = 256  # RFC 2865 §3: the Identifier is one octet
HEADER_LENGTH = 4  # Code, Identifier, Length (RFC 6613 §2.6.2: Length delimits a packet)
MIN_PACKET = 20  # RFC 2865 §3
MAX_PACKET = 4096  # RFC 2865 §3; FreeRADIUS 3.2 sends no more over TCP either
BACKOFF_START = 0.25  # seconds before the first reconnection after a failure
BACKOFF_MAX = 8.0  # the MN's retries (1 s, 2 s, ...) then still find the HKS back soon
HANDSHAKE_MARGIN = 1.0  # a TLS handshake needs some round trips beyond the window

REFUSED_AFTER_HANDSHAKE = (
    "the HKS closed the connection before any answer: it does not accept this AR's "
    "certificate ([tls] certificate_file; its log says 'unknown CA' or 'certificate "
    "verify failed'), or this AR's address is not in its RadSec clients section, or it "
    "was stopping"
)

Build = Callable[[int], rpacket.AuthPacket]
Exchange = tuple[rpacket.AuthPacket, rpacket.AuthPacket]  # (request, verified reply)

# OpenSSL's X509_V_ERR_* codes an operator meets, and what to check (docs/ar.md).
_VERIFY_HINTS = {
    9: "the HKS's certificate is not valid yet: check both clocks",
    10: "the HKS's certificate has expired: renew it (or check this AR's clock)",
    18: "the HKS's certificate is self-signed and not in [tls] ca_file",
    19: "the HKS's chain ends in a CA that is not in [tls] ca_file",
    20: "the HKS's certificate is not signed by a CA in [tls] ca_file",
    21: "the HKS's certificate is not signed by a CA in [tls] ca_file",
    62: "the HKS's certificate does not name server_name: fix server_name or the certificate",
}


class RadSecError(OSError):
    """No usable connection to a home server (the RADIUS client fails over)."""


def client_context(settings: TlsSettings) -> ssl.SSLContext:
    """TLS 1.2 or newer, the server's certificate checked against `ca_file` and its name,
    this AR's certificate offered (RFC 6614 §2.3: mutual authentication). Raises
    OSError or ssl.SSLError on unreadable files (config.py reports them at start)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, check_hostname
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_verify_locations(cafile=settings.ca_file)
    context.load_cert_chain(settings.certificate_file, settings.private_key_file)
    return context


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        hint = _VERIFY_HINTS.get(exc.verify_code, "check [tls] ca_file and server_name")
        return f"certificate refused: {exc.verify_message} ({hint})"
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or str(exc)
        if "ALERT" in reason.upper():
            return (
                f"the HKS ended the TLS handshake ({reason}): it does not accept this AR's "
                "certificate ([tls] certificate_file), or the TLS versions do not meet"
            )
        return f"TLS error: {reason}"
    if isinstance(exc, TimeoutError):
        return "no TLS connection within the response window"
    return str(exc) or type(exc).__name__


def _tell(level: int, server: HomeServer, action: str, reason: str) -> None:
    emit(
        level, "radsec", server=server.name, address=f"{server.host}:{server.port}",
        action=action, reason=reason,
    )  # fmt: skip


@dataclass
class _Waiting:
    request: rpacket.AuthPacket
    reply: asyncio.Future[rpacket.AuthPacket]


class Connection:
    """One TLS connection to one home server and the requests in flight on it."""

    def __init__(
        self,
        server: HomeServer,
        dictionary: Dictionary,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        keepalive: float,
        on_packet: Callable[[], None],
        clock: Clock,
    ) -> None:
        self.server = server
        self.clock = clock
        self.dictionary = dictionary
        self._reader = reader
        self._writer = writer
        self._keepalive = keepalive
        self._on_packet = on_packet
        loop = asyncio.get_running_loop()
        self.waiting: dict[int, _Waiting] = {}
        self._free: collections.deque[int] = collections.deque(range(IDS_PER_CONNECTION))
        self._id_waiters: collections.deque[asyncio.Future[int]] = collections.deque()
        self.last_received = clock.now()
        self._busy_since = clock.now()
        self._busy: asyncio.Future[None] = loop.create_future()  # set by a request sent
        self.closed: str | None = None  # why, once closed
        self.tls_refused = False  # closed by a TLS alert before any packet came
        self.packets = 0  # packets received
        self.probes = 0  # Status-Server packets sent
        self._tasks = [
            loop.create_task(self._read(), name=f"radsec-read-{server.name}"),
            loop.create_task(self._watch(), name=f"radsec-watch-{server.name}"),
        ]

    # ---- Identifiers -------------------------------------------------------------------

    @property
    def waiting_for_id(self) -> int:
        """Requests waiting for an Identifier to come free (all 256 in flight)."""
        return sum(1 for f in self._id_waiters if not f.done())

    async def _acquire(self) -> int:
        if self.closed is not None:
            raise RadSecError(self.closed)
        if self._free and not self._id_waiters:
            return self._free.popleft()
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._id_waiters.append(future)
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled() and future.exception() is None:
                self._release(future.result())  # handed over as we were cancelled
            raise

    def _release(self, identifier: int) -> None:
        while self._id_waiters:
            waiter = self._id_waiters.popleft()
            if not waiter.done():
                waiter.set_result(identifier)
                return
        self._free.append(identifier)  # least recently used first: late replies miss

    # ---- one request ---------------------------------------------------------------------

    async def exchange(self, build: Build, timeout: float) -> Exchange | None:
        """Send once; the verified reply, or None when the server, alive, did not answer
        within `timeout`. Raises RadSecError when the connection closes meanwhile."""
        identifier = await self._acquire()
        try:
            request = build(identifier)
            reply = await self._send(request, timeout)
            return None if reply is None else (request, reply)
        finally:
            self._release(identifier)

    async def _send(self, request: rpacket.AuthPacket, timeout: float) -> rpacket.AuthPacket | None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[rpacket.AuthPacket] = loop.create_future()
        if not self.waiting:
            self._busy_since = self.clock.now()
        self.waiting[request.id] = _Waiting(request, future)
        if request.code != rpacket.StatusServer and not self._busy.done():
            self._busy.set_result(None)
        try:
            self._writer.write(request_packet(request))
            try:
                return await self.clock.wait(future, timeout)
            except TimeoutError:
                return None
        finally:
            self.waiting.pop(request.id, None)

    def _requests_in_flight(self) -> int:
        return sum(1 for w in self.waiting.values() if w.request.code != rpacket.StatusServer)

    # ---- receiving -----------------------------------------------------------------------

    async def _read(self) -> None:
        try:
            while True:
                header = await self._reader.readexactly(HEADER_LENGTH)
                length = int.from_bytes(header[2:4], "big")
                if not MIN_PACKET <= length <= MAX_PACKET:
                    # RFC 6613 §2.6.4: the stream cannot be resynchronised: close it.
                    self._close(f"the HKS sent a packet of length {length}: not RADIUS")
                    return
                data = header + await self._reader.readexactly(length - HEADER_LENGTH)
                self.last_received = self.clock.now()
                self.packets += 1
                self._on_packet()
                self._dispatch(data)
        except asyncio.IncompleteReadError:
            detail = "the HKS closed the connection"
        except (OSError, ssl.SSLError) as exc:
            detail = _describe(exc)
        # TLS 1.3: the HKS checks this AR's certificate after the client's side of the
        # handshake is done, so its refusal comes after "connected", as an alert, a reset
        # or just the end of the stream, before any packet.
        self.tls_refused = self.packets == 0
        self._close(f"{REFUSED_AFTER_HANDSHAKE} ({detail})" if self.tls_refused else detail)

    def _dispatch(self, data: bytes) -> None:
        entry = self.waiting.get(data[1])
        if entry is None:
            log.debug("reply from %s for no request in flight (id %d)", self.server.name, data[1])
            return
        try:
            reply = rpacket.AuthPacket(packet=data, secret=self.server.secret, dict=self.dictionary)
            # The HKS signs its answers (P8); FreeRADIUS answers a Status-Server unsigned,
            # so there the Response Authenticator (and TLS) must do.
            probe = entry.request.code == rpacket.StatusServer
            valid = entry.request.VerifyReply(reply, data, enforce_ma=not probe)
        except Exception as exc:  # pyrad raises several kinds on garbage
            log.warning("undecodable reply from home server %s: %s", self.server.name, exc)
            return
        if not valid or reply.code not in (rpacket.AccessAccept, rpacket.AccessReject):
            log.warning(
                "reply from home server %s over RadSec failed the Response Authenticator or "
                "Message-Authenticator check, or has code %d: dropped (is its secret radsec?)",
                self.server.name, reply.code,
            )  # fmt: skip
            return
        if not entry.reply.done():
            entry.reply.set_result(reply)

    # ---- the watchdog (RFC 3539 §3.4, with Status-Server as in RFC 5997 §4.3) ------------

    async def _pause(self, seconds: float) -> None:
        never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        try:
            await self.clock.wait(never, seconds)
        except TimeoutError:
            pass
        finally:
            never.cancel()

    async def _watch(self) -> None:
        window = self.server.response_window
        while self.closed is None:
            if not self._requests_in_flight():
                if self._busy.done():
                    self._busy = asyncio.get_running_loop().create_future()
                try:
                    await self.clock.wait(self._busy, self._keepalive)
                    continue
                except TimeoutError:
                    quiet_since = max(self.last_received, self._busy_since)
                    if self.clock.now() - quiet_since < self._keepalive:
                        continue
            else:
                quiet_since = max(self.last_received, self._busy_since)
                due = quiet_since + window
                if self.clock.now() < due:
                    await self._pause(due - self.clock.now())
                    continue
            answered = await self._probe(window)
            if not answered and self.last_received <= quiet_since:
                in_flight = self._requests_in_flight()
                reason = (
                    f"silent: nothing received for {self.clock.now() - quiet_since:.3g} s with "
                    f"{in_flight} request(s) in flight, and no answer to Status-Server"
                )
                _tell(logging.WARNING, self.server, "silent", reason)
                self._close(reason)
                return

    async def _probe(self, window: float) -> bool:
        """One Status-Server; True when answered within `window`. With all 256
        Identifiers in flight none can be sent: then any packet received in the window
        counts (the caller looks at last_received)."""
        if not self._free or self._id_waiters:
            await self._pause(window)
            return False
        identifier = self._free.popleft()
        try:
            probe = rpacket.AuthPacket(
                code=rpacket.StatusServer,
                id=identifier,
                secret=self.server.secret,
                dict=self.dictionary,
            )
            probe.add_message_authenticator()
            self.probes += 1
            log.debug("Status-Server to %s (id %d)", self.server.name, identifier)
            try:
                return await self._send(probe, window) is not None
            except RadSecError:
                return False
        finally:
            self._release(identifier)

    # ---- closing -------------------------------------------------------------------------

    def _close(self, reason: str) -> None:
        if self.closed is not None:
            return
        self.closed = reason
        error = RadSecError(f"connection lost: {reason}")
        for entry in self.waiting.values():
            if not entry.reply.done():
                entry.reply.set_exception(error)
        for waiter in self._id_waiters:
            if not waiter.done():
                waiter.set_exception(error)
        self._id_waiters.clear()
        self._writer.close()
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()

    async def close(self, reason: str = "hkp-ar stops") -> None:
        self._close(reason)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        # close() sent TLS close_notify; FreeRADIUS does not answer it, and waiting for
        # that (asyncio's ssl_shutdown_timeout, 30 s) would hold up a stopping daemon.
        self._writer.transport.abort()


class RadSecClient:
    """The connections of one hkp-ar: one per `proto = tls` home server, opened on first
    use, re-opened with back-off when lost."""

    def __init__(self, dictionary: Dictionary, clock: Clock | None = None) -> None:
        self.dictionary = dictionary
        self.clock: Clock = clock or MonotonicClock()
        self._contexts: dict[TlsSettings, ssl.SSLContext] = {}
        self._connections: dict[str, Connection] = {}
        self._connecting: dict[str, asyncio.Task[Connection]] = {}
        self._retry_at: dict[str, float] = {}
        self._backoff: dict[str, float] = {}
        self._last_failure: dict[str, str] = {}
        self._closing: list[Connection] = []

    def connection(self, server: HomeServer) -> Connection | None:
        return self._connections.get(server.name)

    async def exchange(self, server: HomeServer, build: Build) -> Exchange | None:
        """The request `build(identifier)` over this server's connection: (request,
        verified reply), None if unanswered within the server's budget, RadSecError if
        there is no connection (or it was lost): the caller fails over."""
        connection = await self._connected(server)
        try:
            return await connection.exchange(build, server.budget)
        except RadSecError:
            self._lost(server, connection)
            raise

    def states(self, realms: Iterable[Realm]) -> dict[str, dict[str, object]]:
        """For `hkp-ar status`: each `proto = tls` home server's connection. connected
        (requests in flight, packets received), connecting, failed (the last attempt
        failed or the connection was lost before an answer: why, and when the next
        attempt may start), or idle (not opened yet, or closed after it had worked:
        reopened at the next request)."""
        now = self.clock.now()
        found: dict[str, dict[str, object]] = {}
        for server in (s for realm in realms for s in realm.servers if s.proto == "tls"):
            connection = self._connections.get(server.name)
            state: dict[str, object]
            if connection is not None and connection.closed is None:
                state = {"state": "connected", "in_flight": connection._requests_in_flight(),
                         "packets": connection.packets}  # fmt: skip
            elif server.name in self._connecting:
                state = {"state": "connecting"}
            elif server.name in self._retry_at:
                retry_in = max(0.0, self._retry_at[server.name] - now)
                state = {"state": "failed", "retry_in_s": round(retry_in, 3),
                         "reason": self._last_failure.get(server.name, "")}  # fmt: skip
            else:
                state = {"state": "idle"}
            found[server.name] = {"address": f"{server.host}:{server.port}", **state}
        return found

    def note_silence(self, server: HomeServer) -> None:
        """The RADIUS client's one line when a live connection did not answer a request."""
        _tell(
            logging.WARNING, server, "unanswered",
            f"no answer within {server.budget:.3g} s over a live RadSec connection (it "
            "answers Status-Server): the HKS dropped the request; see its log",
        )  # fmt: skip

    async def _connected(self, server: HomeServer) -> Connection:
        current = self._connections.get(server.name)
        if current is not None and current.closed is None:
            return current
        if current is not None:
            self._lost(server, current)
        loop = asyncio.get_running_loop()
        retry_at = self._retry_at.get(server.name, 0.0)
        if self.clock.now() < retry_at:
            raise RadSecError(
                f"reconnecting in {retry_at - self.clock.now():.2g} s "
                f"(last failure: {self._last_failure.get(server.name, 'unknown')})"
            )
        task = self._connecting.get(server.name)
        if task is None:
            task = loop.create_task(self._connect(server), name=f"radsec-connect-{server.name}")
            self._connecting[server.name] = task
        return await asyncio.shield(task)

    async def _connect(self, server: HomeServer) -> Connection:
        assert server.tls is not None
        try:
            context = self._contexts.get(server.tls)
            if context is None:
                context = self._contexts[server.tls] = client_context(server.tls)
            name = server.tls.server_name or server.host
            timeout = server.budget + HANDSHAKE_MARGIN
            opening = asyncio.ensure_future(
                asyncio.open_connection(
                    server.host, server.port, ssl=context, server_hostname=name,
                    ssl_handshake_timeout=timeout,
                )
            )  # fmt: skip
            try:
                reader, writer = await self.clock.wait(opening, timeout)
            finally:
                opening.cancel()  # nothing once done; else no half-open connection stays
        except (OSError, ssl.SSLError, TimeoutError) as exc:
            reason = _describe(exc)
            self._failed(server, reason)
            _tell(logging.WARNING, server, "refused", reason)
            raise RadSecError(reason) from None
        finally:
            self._connecting.pop(server.name, None)
        tls = writer.get_extra_info("ssl_object")
        version = tls.version() if isinstance(tls, ssl.SSLObject) else "?"
        _tell(logging.INFO, server, "connected", f"{version}, server name {name} verified")
        connection = Connection(
            server, self.dictionary, reader, writer, server.tls.keepalive_interval,
            lambda: self._answered(server), self.clock,
        )  # fmt: skip
        self._connections[server.name] = connection
        return connection

    def _answered(self, server: HomeServer) -> None:
        self._backoff.pop(server.name, None)
        self._retry_at.pop(server.name, None)

    def _failed(self, server: HomeServer, reason: str) -> None:
        delay = self._backoff.get(server.name, BACKOFF_START / 2) * 2
        delay = min(delay, BACKOFF_MAX)
        self._backoff[server.name] = delay
        self._retry_at[server.name] = self.clock.now() + delay
        self._last_failure[server.name] = reason

    def _lost(self, server: HomeServer, connection: Connection) -> None:
        if self._connections.get(server.name) is not connection:
            return
        del self._connections[server.name]
        reason = connection.closed or "closed"
        if connection.packets == 0:
            self._failed(server, reason)  # never answered: back off as after a failed connect
        else:
            self._backoff.pop(server.name, None)  # it worked: reconnect at once
        _tell(logging.WARNING, server, "refused" if connection.tls_refused else "closed", reason)
        self._closing.append(connection)
        task = asyncio.get_running_loop().create_task(connection.close(reason))
        task.add_done_callback(lambda _: self._forget(connection))

    def _forget(self, connection: Connection) -> None:
        if connection in self._closing:
            self._closing.remove(connection)

    async def close(self) -> None:
        for task in list(self._connecting.values()):
            task.cancel()
        await asyncio.gather(*self._connecting.values(), return_exceptions=True)
        connections = [*self._connections.values(), *self._closing]
        self._connections.clear()
        self._closing.clear()
        await asyncio.gather(*(c.close() for c in connections), return_exceptions=True)
