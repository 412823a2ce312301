"""hkp-ar: the access router of draft-vidya-mipshop-handover-keys-aaa-04 as a daemon.

    hkp-ar -c /etc/hkp-ar/hkp-ar.conf        (or: python3 -m ar_proxy -c ...)

The protocol decisions are the sans-I/O AR role (hkp_radius.ar); this module only
carries its outputs out: HKResps to the transports, Access-Requests to the RADIUS
client, CoA checks to the validator, key changes to the SQLite store, exchanges to
the log. An HKResp that follows a key change in the role's outputs is sent only once
the key store has committed that change (docs/ar.md, ## Key store durability). Logs
are JSON lines written off the loop (ar_proxy.logs); once every socket
is bound it logs {"event": "ready"}. SIGTERM and SIGINT stop it cleanly (every task it
started is cancelled and awaited, pending key writes are committed); SIGHUP reopens
the log file. Under systemd (Type=notify) it sends READY=1 once ready and STOPPING=1
when it stops (ar_proxy.notify). `hkp-ar status` and `hkp-ar keys` ask a running daemon
over its control socket (ar_proxy.control); counters are in ar_proxy.metrics. Timers
run on the monotonic clock; the wall clock is read only for what the role persists or
compares with the wire (key expiry, V timestamps).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import os
import signal
import sqlite3
import sys
import time
from collections import deque
from collections.abc import Callable, Hashable

import uvloop
from pyrad.dictionary import Dictionary

import hkp_radius
from hkp_radius.ar import FastBindingVerifier, FbuAccepted, FbuOutput, FbuRefused, SendFBack
from hkp_radius.ar.events import (
    Action,
    CancelAccessRequest,
    DeleteKey,
    Discarded,
    ExchangeDone,
    HKSAnswer,
    SendAccessRequest,
    SendHKResp,
    StoreKey,
    ValidateCoA,
)
from hkp_radius.ar.role import AccessRouter
from hkp_radius.errors import ConfigError
from hkp_radius.wire.fmip import MH_TYPE_FBU, fmip_type

from .admission import AdmissionFront
from .clock import Clock
from .config import DaemonConfig, load_config
from .control import COMMANDS, ControlError, ControlServer, format_keys, format_status, query
from .keystore import SqliteKeyStore
from .logs import LogSink, address_text, emit, log, nai_text, setup_logging
from .metrics import Metrics
from .neighbours import (
    NeighbourMonitor,
    NeighbourValidator,
    PermissiveValidator,
    StaticValidator,
    Validator,
)
from .notify import notify
from .radius_client import RadiusClient
from .transports import RawPeer, RawTransport, UdpPeer, UdpTransport, network_namespace

EXIT_CONFIG = 2
EXIT_STARTUP = 3


def load_dictionary(path: str) -> Dictionary:
    """The pyrad dictionary of `[ar] dictionary`; a file pyrad cannot parse is a
    configuration error naming the setting, not a traceback."""
    try:
        return Dictionary(path)
    except Exception as exc:  # pyrad raises ParseError, KeyError, ValueError, OSError...
        raise ConfigError(
            f"[ar] dictionary = {path!r}: pyrad cannot read it ({exc}); point it at "
            "raddb/dictionary.pyrad or a copy of it"
        ) from None


class ARDaemon:
    def __init__(
        self,
        config: DaemonConfig,
        random_bytes: Callable[[int], bytes] = os.urandom,
        radius_clock: Clock | None = None,
    ) -> None:
        self.config = config
        self._radius_clock = radius_clock  # None: the monotonic clock; tests move a manual one
        self.front = AdmissionFront(config)  # issue 15: admission control, bounded logs
        self.role = AccessRouter(config.role, random_bytes, self.front.admission)
        # P11: FBUs are checked against the role's own key table.
        self.fbu = FastBindingVerifier(self.role.keys)
        self.keystore = SqliteKeyStore(config.key_store, self._committed_elsewhere)
        self._committed = 0  # sequence number of the last key change on disk
        # Replies (HKResp, FBack) waiting for the commit of the change they depend on.
        self._held: deque[tuple[int, Callable[[], None]]] = deque()
        self.udp: UdpTransport | None = None
        self.raw: RawTransport | None = None
        self.validator: Validator = PermissiveValidator()
        self.monitor: NeighbourMonitor | None = None
        self.radius: RadiusClient | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None  # the role's next_timer() the timer is set for
        # Every task this daemon starts (CoA checks): owned here, cancelled and awaited
        # by stop(); the loop itself holds tasks only weakly.
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.discarded = 0
        self.metrics = Metrics(lambda: len(self.role.keys))
        if self.front.admission is not None:
            self.metrics.count_admission(self.front.dropped_by_reason)
        self.control: ControlServer | None = None
        self.metrics_bound: str | None = None
        self.started_at = time.monotonic()

    # ---- life cycle ------------------------------------------------------------------

    async def start(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        cfg = self.config
        self._apply(self.role.load_keys(self.keystore.load(), time.monotonic(), time.time()))
        self.fbu.restore_sequences(self.keystore.load_fbu_sequences())
        self.keystore.start()
        self.radius = RadiusClient(
            load_dictionary(cfg.dictionary),
            self._radius_answer,
            self._radius_timeout,
            nas_identifier=cfg.nas_identifier,
            nas_ip_address=cfg.nas_ip_address,
            nas_ipv6_address=cfg.nas_ipv6_address
            or (None if cfg.nas_ip_address else cfg.ar_address_text),
            on_result=self.metrics.radius_result,
            clock=self._radius_clock,
        )
        with network_namespace(cfg.netns):
            udp_sock = (
                UdpTransport.open_sockets(cfg.udp_listen, cfg.udp_port, cfg.udp_queues)
                if cfg.udp_enabled
                else None
            )
            raw_sock = RawTransport.open_socket(cfg.raw_listen) if cfg.raw_enabled else None
            if cfg.coa_mode == "neighbour":
                self.validator = NeighbourValidator(
                    cfg.neighbour_states, NeighbourValidator.open_socket, cfg.match_source
                )
            monitor_sock = NeighbourMonitor.open_socket()
        if cfg.coa_mode == "static" and cfg.static_table:
            self.validator = StaticValidator(cfg.static_table, cfg.match_source)
        self.monitor = NeighbourMonitor(self._neighbour_gone, monitor_sock)
        self.monitor.start(loop)
        if udp_sock is not None:
            self.udp = UdpTransport(self._datagram, cfg.ar_address, udp_sock, self.front.gate)
            self.udp.start(loop)
        if raw_sock is not None:
            self.raw = RawTransport(self._datagram, raw_sock)
            self.raw.start(loop)
        if cfg.control_socket is not None:
            self.control = ControlServer(
                cfg.control_socket, cfg.control_mode, {"status": self.status, "keys": self.keys}
            )
            await self.control.start()
        if cfg.metrics_enabled:
            self.metrics_bound = self.metrics.serve(cfg.metrics_listen, cfg.metrics_port)
        self._rearm()
        self.front.start(loop)
        emit(
            logging.INFO,
            "ready",
            version=hkp_radius.__version__,
            control=cfg.control_socket,
            metrics=self.metrics_bound,
            pid=os.getpid(),
            udp=self.udp.bound if self.udp else None,
            raw=self.raw.bound if self.raw else None,
            ar_address=cfg.ar_address_text,
            netns=cfg.netns,
            coa_validation=cfg.coa_mode,
            keys=len(self.role.keys),
            realms=sorted(cfg.realms),
        )
        notify("READY=1", f"STATUS=serving {len(self.role.keys)} key(s)", f"MAINPID={os.getpid()}")

    async def stop(self) -> None:
        notify("STOPPING=1")
        if self.control is not None:
            await self.control.close()
        self.metrics.close()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._loop = None  # nothing re-arms the timer from here on
        self.front.stop()
        if self.udp is not None:
            self.udp.close()
        if self.raw is not None:
            self.raw.close()
        if self.monitor is not None:
            self.monitor.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.radius is not None:
            await self.radius.close()
        self.validator.close()
        await asyncio.get_running_loop().run_in_executor(None, self.keystore.close)
        emit(logging.INFO, "stopped", keys=len(self.role.keys), discarded=self.discarded)

    # ---- what the control socket tells (never key material) -------------------------

    def status(self) -> dict[str, object]:
        radius: dict[str, dict[str, int]] = {}
        for (server, result), count in self.metrics.radius.items():
            radius.setdefault(server, {})[result] = count
        return {
            "version": hkp_radius.__version__,
            "pid": os.getpid(),
            "uptime_s": round(time.monotonic() - self.started_at, 3),
            "ar_address": self.config.ar_address_text,
            "udp": self.udp.bound if self.udp else None,
            "raw": self.raw.bound if self.raw else None,
            "metrics": self.metrics_bound,
            "keys": len(self.role.keys),
            "in_progress": self.role.record_count(),
            "exchanges": dict(self.metrics.exchanges),
            "discarded": dict(self.metrics.discarded),
            "radius": radius,
            "admission": self.front.counters(),
            "radsec": self.radius.radsec.states(self.config.realms.values()) if self.radius else {},
            "max_keys_per_nai": self.config.role.max_keys_per_nai,
        }

    def keys(self) -> list[dict[str, object]]:
        now = time.monotonic()
        found: list[dict[str, object]] = []
        for key in sorted(self.role.keys, key=lambda k: (k.nai, k.spi)):
            deadline = self.role.keys.deadline(key.spi)
            found.append(
                {
                    "nai": nai_text(key.nai),
                    "spi": key.spi,
                    "coa": address_text(key.care_of_address),
                    "ar_address": address_text(key.ar_address),
                    "prf": key.prf,
                    "remaining_s": round(max(0.0, (deadline or now) - now), 3),
                    "expires_at": key.expires_at,
                }
            )
        return found

    # ---- inputs to the role ----------------------------------------------------------

    def _guarded(self, what: str, call: Callable[[float, float], list[Action]]) -> None:
        """Every input goes through here with (monotonic now, wall clock): the daemon
        never dies on a packet."""
        try:
            actions = call(time.monotonic(), time.time())
        except Exception:
            log.exception("internal error handling %s", what)
            return
        self._apply(actions)

    def _datagram(self, data: bytes, peer: Hashable, ar_address: bytes) -> None:
        if isinstance(peer, RawPeer) and not self.front.admit_raw(peer.source, data):
            self.discarded += 1  # UDP datagrams passed the same gate in the transport
            return
        if fmip_type(data) == MH_TYPE_FBU and isinstance(peer, (RawPeer, UdpPeer)):
            self._fast_binding_update(data, peer, ar_address)
            return
        role = self.role
        self._guarded(
            "an HKReq", lambda now, wall: role.receive_hkreq(data, peer, ar_address, now, wall)
        )

    def _fast_binding_update(self, data: bytes, peer: RawPeer | UdpPeer, ar_address: bytes) -> None:
        """P11: an FMIPv6 FBU for which this AR is the PAR; one log line per decision."""
        try:
            outputs: list[FbuOutput] = self.fbu.receive_fbu(
                data, peer, peer.source, ar_address, time.monotonic()
            )
        except Exception:
            log.exception("internal error handling an FBU")
            return
        barrier = 0
        for output in outputs:
            if isinstance(output, FbuAccepted):
                barrier = self.keystore.store_fbu_sequence(output.spi, output.sequence)
                emit(
                    logging.INFO,
                    "fbu-accepted",
                    spi=output.spi,
                    nai=nai_text(output.nai),
                    sequence=output.sequence,
                    coa=address_text(output.care_of_address),
                    new_coa=address_text(output.new_care_of_address),
                )
            elif isinstance(output, FbuRefused):
                self.discarded += 1
                emit(logging.INFO, "fbu-refused", spi=output.spi, reason=output.reason)
            elif isinstance(output, SendFBack):
                # Sent once its Sequence # is on disk: a replay after a restart is refused.
                self._held.append((barrier, functools.partial(self._send_fback, peer, output)))
                self._on_commit(self._committed)

    def _send_fback(self, peer: RawPeer | UdpPeer, output: SendFBack) -> None:
        if isinstance(peer, UdpPeer) and self.udp is not None:
            self.udp.send(peer, output.wire)
        elif isinstance(peer, RawPeer) and self.raw is not None:
            # The NCoA is off-link for the PAR: routed, no interface pinned.
            ifindex = peer.ifindex if output.destination == peer.source else 0
            target = RawPeer(output.destination, ifindex)
            self.raw.send(target, output.par_address, output.wire)

    def _radius_answer(self, ref: int, answer: HKSAnswer) -> None:
        role = self.role
        self._guarded(
            "a RADIUS answer",
            lambda now, wall: role.receive_radius_answer(ref, answer, now, wall),
        )

    def _radius_timeout(self, ref: int, reason: str) -> None:
        self._guarded("a RADIUS timeout", lambda now, _: self.role.radius_timeout(ref, now, reason))

    def _neighbour_gone(self, coa: bytes) -> None:
        emit(logging.DEBUG, "neighbour-gone", coa=address_text(coa))
        self._guarded("a neighbour notification", lambda now, _: self.role.neighbour_gone(coa, now))

    def _on_timer(self) -> None:
        self._timer = None
        self._guarded("a timer", lambda now, _: self.role.on_timer(now))

    async def _validate(self, action: ValidateCoA) -> None:
        try:
            valid = await self.validator.validate(action.coa, action.nai, action.peer)
        except Exception:
            log.exception("CoA validator failed")
            valid = False
        self._coa_checked(action.ref, valid)

    def _coa_checked(self, ref: int, valid: bool) -> None:
        if self._loop is not None:  # else stopped meanwhile: as a cancelled check
            self._guarded("a CoA check", lambda now, _: self.role.coa_validated(ref, valid, now))

    # ---- actions ---------------------------------------------------------------------

    def _apply(self, actions: list[Action]) -> None:
        barrier = 0  # the last key change this batch of outputs queued
        for action in actions:
            try:
                if isinstance(action, (StoreKey, DeleteKey)):
                    barrier = self._write(action)
                elif isinstance(action, SendHKResp) and barrier > self._committed:
                    self._held.append((barrier, functools.partial(self._carry_out, action)))
                else:
                    self._carry_out(action)
            except Exception:
                log.exception("internal error carrying out %s", type(action).__name__)
        self._rearm()

    def _write(self, action: StoreKey | DeleteKey) -> int:
        if isinstance(action, StoreKey):
            return self.keystore.store(action.key)
        emit(logging.INFO, "key-deleted", spi=action.spi, reason=action.reason)
        return self.keystore.delete(action.spi)

    def _committed_elsewhere(self, sequence: int) -> None:
        """The key store's writer thread: hand the news to the loop."""
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._on_commit, sequence)

    def _on_commit(self, sequence: int) -> None:
        self._committed = max(self._committed, sequence)
        held = self._held
        while held and held[0][0] <= self._committed:
            _, send = held.popleft()
            try:
                send()
            except Exception:
                log.exception("internal error sending a held reply")

    def _carry_out(self, action: Action) -> None:
        if isinstance(action, SendHKResp):
            peer = action.peer
            if isinstance(peer, UdpPeer) and self.udp is not None:
                self.udp.send(peer, action.wire)
            elif isinstance(peer, RawPeer) and self.raw is not None:
                self.raw.send(peer, action.ar_address, action.wire)
        elif isinstance(action, SendAccessRequest):
            assert self.radius is not None
            if log.isEnabledFor(logging.DEBUG):  # nai_text only for a line written
                emit(logging.DEBUG, "access-request", nai=nai_text(action.nai), ref=action.ref)
            self.radius.send(action, self.config.realm_for(action.nai))
        elif isinstance(action, CancelAccessRequest):
            if self.radius is not None:
                self.radius.cancel(action.ref)
        elif isinstance(action, ValidateCoA):
            assert self._loop is not None
            decided = self.validator.decide(action.coa, action.nai, action.peer)
            if decided is not None:  # no I/O needed: a callback, not a task (issue 14)
                self._loop.call_soon(self._coa_checked, action.ref, decided)
                return
            task = self._loop.create_task(self._validate(action))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif isinstance(action, (StoreKey, DeleteKey)):
            self._write(action)
        elif isinstance(action, ExchangeDone):
            self._log_exchange(action)
        elif isinstance(action, Discarded):
            self.discarded += 1
            self.metrics.discard(action.reason)
            emit(logging.DEBUG, "discarded", reason=action.reason, nai=nai_text(action.nai))

    def _log_exchange(self, done: ExchangeDone) -> None:
        self.metrics.exchange(done.outcome.value, done.duration)
        if not self.front.log_line_for(done.outcome):
            return
        emit(
            logging.INFO,
            "exchange",
            nai=nai_text(done.nai),
            message_id=done.message_id,
            coa=address_text(done.care_of_address),
            spi=done.spi,
            outcome=done.outcome.value,
            status=done.status,
            ms=round(done.duration * 1000, 3),
            reason=done.reason or None,
        )

    def _rearm(self) -> None:
        """Runs after every input (every datagram): re-arm only when the role's next
        timer moved, which most datagrams (discards, duplicates) do not do."""
        if self._loop is None:
            return
        when = self.role.next_timer()
        if self._timer is not None and when == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = when
        if when is not None:  # the role's deadlines are monotonic, as loop.time() is
            self._timer = self._loop.call_later(max(0.0, when - time.monotonic()), self._on_timer)


async def serve(config: DaemonConfig, sink: LogSink | None = None) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reopen_log, sink)
    daemon: ARDaemon | None = None
    try:
        daemon = ARDaemon(config)  # opens the key store: a bad path fails here
        await daemon.start()
    except (OSError, sqlite3.Error, ConfigError) as exc:
        emit(logging.ERROR, "startup-failed", error=str(exc))
        if sink is not None and sink.file is not None:  # the operator also sees why
            print(f"hkp-ar: cannot start: {exc}", file=sys.stderr)
        if daemon is not None:
            await daemon.stop()
        return EXIT_CONFIG if isinstance(exc, ConfigError) else EXIT_STARTUP
    await stop.wait()
    await daemon.stop()
    return 0


def reopen_log(sink: LogSink | None) -> None:
    """SIGHUP: reopen the log file (logrotate moved it); the daemon keeps serving."""
    if sink is not None:
        try:
            sink.reopen()
        except OSError as exc:  # keep serving; the old file handle is gone
            print(f"hkp-ar: SIGHUP: cannot reopen the log file: {exc}", file=sys.stderr)
            return
    emit(logging.INFO, "log-reopened", file=sink.file if sink is not None else None)


# Secrets of shipped examples and tutorials: a file still holding one was never finished.
PLACEHOLDER_SECRETS = {b"change-me", b"testing123", b"secret", b"adminsecret"}
# RFC 2865 §3 recommends at least 16 octets; shorter ones fall to an offline guess.
MIN_SECRET_LENGTH = 16


def secret_warnings(config: DaemonConfig) -> list[str]:
    """--check: placeholder and short shared secrets (valid, but not for production)."""
    servers = {server.name: server for realm in config.realms.values() for server in realm.servers}
    found = []
    for name, server in sorted(servers.items()):
        if server.proto == "tls":  # RFC 6614 §2.3: "radsec" by design; TLS protects
            continue
        if server.secret in PLACEHOLDER_SECRETS:
            found.append(f"[home_server {name}] secret is a placeholder: set the HKS's secret")
        elif len(server.secret) < MIN_SECRET_LENGTH:
            found.append(
                f"[home_server {name}] secret is {len(server.secret)} octets: use at least "
                f"{MIN_SECRET_LENGTH} (RFC 2865 §3)"
            )
    return found


def admin(argv: list[str]) -> int:
    """hkp-ar status|keys: ask a running daemon over its control socket."""
    parser = argparse.ArgumentParser(
        prog=f"hkp-ar {argv[0]}",
        description="status: uptime, counters, keys held; keys: every key by NAI, SPI, CoA "
        "and remaining lifetime (never the key itself)",
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("-c", "--config", help="the daemon's configuration ([control] socket)")
    where.add_argument("-s", "--socket", help="the control socket's path")
    parser.add_argument("--json", action="store_true", help="print the daemon's JSON answer")
    args = parser.parse_args(argv[1:])
    path = args.socket
    if path is None:
        try:
            path = load_config(args.config).control_socket
        except ConfigError as exc:
            print(f"hkp-ar: configuration error: {exc}", file=sys.stderr)
            return EXIT_CONFIG
        if path is None:
            print(f"hkp-ar: {args.config}: no [control] socket set", file=sys.stderr)
            return EXIT_CONFIG
    try:
        answer = query(path, argv[0])
    except ControlError as exc:
        print(f"hkp-ar: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(answer, indent=2, sort_keys=True))
    elif argv[0] == "status":
        print(format_status(answer))
    else:
        print(format_keys(answer))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in COMMANDS:
        return admin(argv)
    parser = argparse.ArgumentParser(
        prog="hkp-ar",
        description="Handover key access router (draft-vidya-mipshop-handover-keys-aaa-04); "
        "'hkp-ar status|keys -c CONFIG' asks a running one",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {hkp_radius.__version__}")
    parser.add_argument("-c", "--config", required=True, help="configuration file (INI)")
    parser.add_argument("--check", action="store_true", help="validate the configuration and exit")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"hkp-ar: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.check:
        for warning in secret_warnings(config):
            print(f"hkp-ar: {args.config}: warning: {warning}", file=sys.stderr)
        print(f"hkp-ar: {args.config}: configuration is valid")
        return 0
    try:
        sink = setup_logging(config.log_file, config.log_level)
    except OSError as exc:
        print(f"hkp-ar: [log] file: cannot open it: {exc}", file=sys.stderr)
        return EXIT_STARTUP
    try:
        # uvloop (libuv): the loop's own work per datagram and timer in C (issue 14).
        code: int = uvloop.run(serve(config, sink))
        return code
    finally:
        sink.stop()  # every queued line written


if __name__ == "__main__":
    sys.exit(main())
