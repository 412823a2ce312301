"""rlm_python3 adapter for the HKS: attribute lists in, the core's decision out.

Loaded by FreeRADIUS (mods-available/hkp_hks, `pass_all_vps_dict = yes`). Every rule
is in `hkp_radius.hks`; this file only translates FreeRADIUS's tuples of strings
(octets as '0x…' hex) into an `HKSRequest` and the decision back into reply tuples.
It never logs key material, and never lets an exception out to FreeRADIUS.

The HK leaves this module salt-encrypted (RFC 2548 §2.4.2, `hkp_radius.salt`), in
HKP-Handover-Key-Salted: rlm_python3 prints every attribute a module returns at
debug level, so a plaintext HK would be in `freeradius -X` output. The secret and
Request Authenticator come from policy hkp_hks_salt_inputs (policy.d/hkp_hks).

With the SQLite replay store and `replay_commit = post-auth` (as shipped), an
accept's upsert is staged here and committed by the store's background thread, in
groups: rlm_python3 runs one call at a time, so a call that waited for its fsync
would hold every other request back. The reply waits in post-auth instead, outside
rlm_python3, in the perl instance hkp_hks_commit_wait (mods-config/perl/
hkp/commit_wait.pl, called by policy hkp_hks_sign_reply): it reads this thread's
pipe until the committer writes the ticket of control:HKP-Commit-Wait, and rejects
if the commit failed. So no Access-Accept leaves before its record is on disk.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from freeradius_module.config import ModuleConfig, parse_module_config
from freeradius_module.replay_postgresql import PostgreSQLReplayStore, ReplayStateUnavailable
from freeradius_module.replay_sqlite import NoticePipe, SQLiteReplayStore
from hkp_radius.crypto import salt
from hkp_radius.errors import ConfigError, DecodeError, HKPError
from hkp_radius.hks.log_summary import DecisionLog, LogLine, Severity
from hkp_radius.hks.role import (
    Accept,
    Decision,
    Discard,
    HKSPolicy,
    HKSRequest,
    Reject,
    ReplayStore,
    handle_request,
)
from hkp_radius.wire import radius_attrs as attrs

try:  # provided by rlm_python3 inside FreeRADIUS only
    import radiusd
except ImportError:  # imported outside FreeRADIUS (tests, linters)
    radiusd = None

# rlm_python3 exports these; RLM_MODULE_FAIL it does not (rlm_rcode_t order).
RLM_MODULE_REJECT = 0
RLM_MODULE_FAIL = 1
RLM_MODULE_OK = 2
L_INFO = 3
L_ERR = 4

_state: dict[str, Any] = {}
# Per FreeRADIUS worker thread: the pipe the committer writes its notices to (the
# thread's post-auth reads it; FreeRADIUS runs a whole request in one thread, and
# rlm_python3 keeps one thread state per thread, freed with the thread).
_thread = threading.local()
_tickets = itertools.count(1)

Pairs = Iterable[tuple[str, str]]
Seal = Callable[[bytes], bytes]

MISSING_USER_NAME_COPY = (
    f"control:{attrs.USER_NAME_OCTETS} is missing: call policy hkp_hks_select in "
    "authorize (see sites-available/hkp_hks), which copies the User-Name's octets"
)
MISSING_SALT_INPUTS = (
    f"control:{attrs.RADIUS_SECRET} or control:{attrs.REQUEST_AUTHENTICATOR} is missing "
    "or malformed, so the HK cannot be salt-encrypted: call policy hkp_hks_salt_inputs "
    "right before hkp_hks (see sites-available/hkp_hks)"
)


def _log(level: int, message: str) -> None:
    if radiusd is not None:
        radiusd.radlog(level, "hkp_hks: " + message)


def instantiate(config: object = None) -> int:
    """Read `config { }` and open the replay store. A negative return stops start-up
    (the only way to stop it from Python), with the reason in the log."""
    source = getattr(radiusd, "config", None) if radiusd is not None else None
    try:
        module_config = parse_module_config(source if isinstance(source, dict) else {})
        _state["policy"] = module_config.policy
        _state["replay"], where = _replay_store(module_config)
        _state["log"] = DecisionLog(module_config.log_summary_interval)
        _state["commit_in_post_auth"] = module_config.replay_commit == "post-auth"
    except ConfigError as exc:
        _log(L_ERR, f"cannot start: {exc}")
        return -1
    except Exception as exc:
        # rlm_python3 reads an exception here as a positive (start-up continues) code:
        # only -1 stops a server that would fail every request.
        _log(L_ERR, f"cannot start: internal error: {type(exc).__name__}: {exc}")
        return -1
    _log(L_INFO, f"ready (replay state in {where})")
    return 0


def _replay_store(config: ModuleConfig) -> tuple[ReplayStore, str]:
    """The configured replay store and where it is, for the log (no password)."""
    if config.replay_store == "postgresql":
        store = PostgreSQLReplayStore(config.replay_postgresql)
        return store, f"PostgreSQL {store.description}"
    return SQLiteReplayStore(config.replay_db), config.replay_db


def detach(_: object = None) -> int:
    log = _state.pop("log", None)
    if log is not None:
        _write(log.flush(time.monotonic()))
    replay = _state.pop("replay", None)
    if isinstance(replay, SQLiteReplayStore):
        replay.flush()
        if replay.upserts:
            _log(L_INFO, f"replay state: {replay.upserts} upserts in {replay.commits} commits")
    if replay is not None:
        replay.close()
    return 0


def _commit_failed(error: str) -> None:
    _log(L_ERR, f"replay commit failed, its accepts become rejects: {error}")


class _Staging:
    """The replay store as `authenticate` shows it to the core: an accept's upsert
    is staged, with a notice for this thread's pipe, and awaited in post-auth."""

    def __init__(self, store: SQLiteReplayStore) -> None:
        self.store = store
        pipe = getattr(_thread, "pipe", None)
        if pipe is None:
            pipe = _thread.pipe = NoticePipe()
        self.pipe: NoticePipe = pipe
        self.ticket = 0

    def last_accepted(self, nai: bytes) -> int | None:
        return self.store.last_accepted(nai)

    def record_if_newer(self, nai: bytes, timestamp: int) -> bool:
        self.ticket = next(_tickets)
        return self.store.stage(nai, timestamp, (self.pipe, self.ticket)) is not None

    def commit_wait(self) -> str:
        """control:HKP-Commit-Wait for the perl waiter: "<read fd>:<ticket>"."""
        return f"{self.pipe.read_fd}:{self.ticket}"


def _values(pairs: Pairs, name: str) -> list[str]:
    return [value for key, value in pairs if key == name]


def _octets_or_none(text: str, what: str) -> bytes | None:
    try:
        return attrs.from_hex(text, what)
    except DecodeError:
        return None


class MissingUserNameCopy(HKPError):
    """control:HKP-User-Name is missing although the request has a User-Name."""


def request_from_lists(lists: Mapping[str, Any]) -> HKSRequest:
    """The HKSRequest for rlm_python3's `pass_all_vps_dict` lists. Values the AR got
    wrong become None, which the core turns into a discard.

    rlm_python3 hands a string to Python as a C string, cut at its first NUL, so the
    User-Name's octets come from control:HKP-User-Name (policy hkp_hks_select copies
    them); its count from the request list. Raises MissingUserNameCopy when the policy
    did not run."""
    user_name_count = 0
    chunks: list[str] = []
    ar_texts: list[str] = []
    for key, value in lists.get("request") or ():  # one pass: this runs per request
        if key == attrs.MOBILITY_HEADER:
            chunks.append(value)
        elif key == attrs.USER_NAME:
            user_name_count += 1
        elif key == attrs.AR_ADDRESS:
            ar_texts.append(value)
    hmk_texts: list[str] = []
    user_names: list[str] = []
    prohibited = False
    for key, value in lists.get("config") or ():
        if key == attrs.HMK:
            hmk_texts.append(value)
        elif key == attrs.USER_NAME_OCTETS:
            user_names.append(value)
        elif key == attrs.AUTHORIZATION:
            prohibited = prohibited or value == attrs.AUTHORIZATION_PROHIBIT
    mh: bytes | None = None
    try:
        mh = attrs.join_mobility_header(attrs.from_hex(v, attrs.MOBILITY_HEADER) for v in chunks)
    except DecodeError:
        mh = None
    ar_address = None
    if len(ar_texts) == 1:
        try:
            ar_address = attrs.ipv6_octets(ar_texts[0], attrs.AR_ADDRESS)
        except DecodeError:
            ar_address = None
    user_name = None
    if user_name_count and not user_names:
        raise MissingUserNameCopy(MISSING_USER_NAME_COPY)
    if len(user_names) == 1:
        user_name = _octets_or_none(user_names[0], attrs.USER_NAME_OCTETS)
    hmk = _octets_or_none(hmk_texts[0], attrs.HMK) if len(hmk_texts) == 1 else None
    return HKSRequest(
        user_name,
        mh,
        ar_address,
        hmk,
        not prohibited,
        user_name_count=user_name_count,
        ar_address_count=len(ar_texts),
    )


def salt_inputs_from_lists(lists: Mapping[str, Any]) -> tuple[bytes, bytes] | None:
    """(RADIUS secret, Request Authenticator) from the control list, as policy
    hkp_hks_salt_inputs put them there; None when either is missing or malformed."""
    control = tuple(lists.get("config") or ())
    secrets = _values(control, attrs.RADIUS_SECRET)
    vectors = _values(control, attrs.REQUEST_AUTHENTICATOR)
    if len(secrets) != 1 or len(vectors) != 1:
        return None
    try:
        secret = attrs.from_hex(secrets[0], attrs.RADIUS_SECRET)
        vector = attrs.from_hex(vectors[0], attrs.REQUEST_AUTHENTICATOR)
    except DecodeError:
        return None
    prefix = attrs.RADIUS_SECRET_PREFIX
    if not secret.startswith(prefix) or len(secret) == len(prefix):
        return None
    if len(vector) != salt.REQUEST_AUTHENTICATOR_LENGTH:
        return None
    return secret[len(prefix) :], vector


def sealer(secret: bytes, request_authenticator: bytes) -> Seal:
    """Salt-encrypts an HK for the reply to this request, with a fresh salt."""

    def seal(handover_key: bytes) -> bytes:
        return salt.salt_encrypt(
            handover_key, secret, request_authenticator, salt.new_salt(os.urandom)
        )

    return seal


def reply_for(
    decision: Decision, seal: Seal
) -> tuple[int, dict[str, tuple[tuple[str, str, str], ...]]]:
    """The rlm_python3 return value for a decision (P8). `seal` salt-encrypts the HK:
    the plaintext never leaves this module."""
    if isinstance(decision, Accept):
        reply = [
            (attrs.HANDOVER_KEY_SALTED, ":=", attrs.to_hex(seal(decision.handover_key))),
            (attrs.HKS_NONCE, ":=", attrs.to_hex(decision.hks_nonce)),
            (attrs.KEY_LIFETIME, ":=", str(decision.lifetime)),
            (attrs.PRF_ATTRIBUTE, ":=", str(decision.prf)),
        ]
        if decision.timestamp is not None:
            reply.append(
                (attrs.TIMESTAMP, ":=", attrs.to_hex(decision.timestamp.to_bytes(8, "big")))
            )
        return RLM_MODULE_OK, {"reply": tuple(reply)}
    if isinstance(decision, Reject):
        return RLM_MODULE_REJECT, {
            "reply": (
                (attrs.STATUS_CODE, ":=", str(int(decision.status))),
                (attrs.RESPONSE_HEADER, ":=", attrs.to_hex(decision.response_header)),
            )
        }
    if decision.ar_error:  # draft §6.4: "return an error to the AR"
        return RLM_MODULE_REJECT, {
            "reply": ((attrs.REPLY_MESSAGE, ":=", f"hkp_hks: {decision.reason.value}"),)
        }
    return RLM_MODULE_REJECT, {}


def _write(lines: Iterable[LogLine]) -> None:
    for line in lines:
        _log(L_ERR if line.severity is Severity.ERROR else L_INFO, line.text)


def decide(
    lists: Mapping[str, Any],
    policy: HKSPolicy,
    replay: ReplayStore | _Staging,
    log: DecisionLog,
) -> Decision:
    request = request_from_lists(lists)
    decision = handle_request(request, policy, replay, time.time(), os.urandom)
    _write(log.record(decision, request.user_name, time.monotonic()))
    return decision


def authenticate(p: Mapping[str, Any]) -> Any:
    """rlm_python3 entry point (Auth-Type HKP)."""
    try:
        policy = _state["policy"]
        replay = _state["replay"]
        log = _state["log"]
        salt_inputs = salt_inputs_from_lists(p)
        if salt_inputs is None:
            # Checked before deciding: an accept that cannot be sent must not
            # advance the replay state.
            _log(L_ERR, f"request failed: {MISSING_SALT_INPUTS}")
            return RLM_MODULE_FAIL, {}
        if isinstance(replay, SQLiteReplayStore) and _state.get("commit_in_post_auth"):
            replay.commit_in_background(_commit_failed)
            staging = _Staging(replay)
            decision = decide(p, policy, staging, log)
            rcode, lists = reply_for(decision, sealer(*salt_inputs))
            if isinstance(decision, Accept) and staging.ticket:
                # The key waits in the control list until the commit is told.
                reply = lists["reply"]
                key = next(item for item in reply if item[0] == attrs.HANDOVER_KEY_SALTED)
                lists["reply"] = tuple(item for item in reply if item is not key)
                lists["config"] = (
                    (attrs.COMMIT_WAIT, ":=", staging.commit_wait()),
                    (attrs.STAGED_KEY, ":=", key[2]),
                )
            return rcode, lists
        return reply_for(decide(p, policy, replay, log), sealer(*salt_inputs))
    except ReplayStateUnavailable as exc:
        # Never an accept without a recorded timestamp: refused like a discard (no
        # HKResp), and the store connects again on the next request.
        _log(L_ERR, f"request discarded: {exc}")
        return RLM_MODULE_REJECT, {}
    except HKPError as exc:
        _log(L_ERR, f"request failed: {type(exc).__name__}: {exc}")
    except Exception as exc:
        _log(L_ERR, f"internal error: {type(exc).__name__}")
    return RLM_MODULE_FAIL, {}


__all__ = ["Discard", "authenticate", "detach", "instantiate"]
